"""``pipeline.recent.Recent``: the last few values a process keeps, shared by threads."""

from __future__ import annotations

import threading

import pytest

from pipeline.recent import Recent


def test_the_newest_are_kept_and_using_one_makes_it_the_newest():
    kept = Recent(2)
    kept.put("a", 1)
    kept.put("b", 2)
    assert kept.peek("a") == 1  # now the newest
    kept.put("c", 3)
    assert kept.keys() == ["a", "c"] and kept.peek("b") is None
    made = []
    assert kept.get("d", lambda: made.append("d") or 4) == 4 and kept.get("d", lambda: 5) == 4
    assert made == ["d"]
    kept.discard("d")
    assert kept.peek("d", "gone") == "gone"


def test_a_failed_make_keeps_nothing_and_threads_share_one_value():
    kept = Recent(3)
    with pytest.raises(ValueError):
        kept.get("x", lambda: (_ for _ in ()).throw(ValueError("broken")))
    assert kept.keys() == []
    values = []
    threads = [threading.Thread(target=lambda: values.append(kept.get("y", object))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kept.keys()) == 1 and kept.peek("y") in values
