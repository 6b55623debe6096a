"""The app's trust boundaries, attacked from outside (issue 10): a visitor typing a server URL,
made-up workspace links, concurrent saves, uploads parsed again and again, a full workspace.

The language-model tests use real HTTP servers on 127.0.0.1 that record every request's headers.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from streamlit.testing.v1 import AppTest

import pipeline
import pipeline.io
import pipeline.store
from pages.ui import runbox
from pipeline import StageError
from pipeline.netguard import UrlGuard
from pipeline.store import RUN_BYTES_PER_ROW, SECRET_FILE, Tokens, Workspace
from tests.conftest import FakeEmbedder, config_for, run_collect
from tests.test_app import (
    assert_healthy,
    cluster_table,
    errors,
    run_clustering,
    sidebar_datasets,
    topic_csv,
    upload,
    warnings,
)
from tests.test_llm_server import ChatServer, Reply, status

OPERATOR_KEY = "sk-operator-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
VISITOR_KEY = "sk-visitor-99887766554433221100"
ROOT = Path(__file__).resolve().parents[1]


def host_port(server: ChatServer) -> str:
    parts = urlsplit(server.url)
    return f"{parts.hostname}:{parts.port}"


def explore_with_llm(at: AppTest, url: str, key: str = "") -> AppTest:
    """What a visitor does: Explore, "Names from a language model", a URL, maybe a key, on."""
    at = upload(at, "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    at.text_input(key="set:label.llm.base_url").input(url)
    at.text_input(key="set:label.llm.model").input("test-model")
    if key:
        at.text_input(key="llm_key").input(key)
    return at.toggle(key="set:llm_on").set_value(True).run()


def name_with(at: AppTest, url: str) -> AppTest:
    at.text_input(key="set:label.llm.base_url").input(url)
    return at.run()


# ---------------------------------------------------------------------------- 1: the operator's key


@pytest.mark.parametrize("key_in", ["environment", "secrets.toml"])
def test_the_operators_key_never_reaches_a_url_a_visitor_types(app, monkeypatch, key_in):
    with ChatServer() as operator_server, ChatServer() as visitor_server:
        monkeypatch.setenv("CLUSTERLAB_LLM_BASE_URL", operator_server.url)
        # the visitor's server is allowed, so requests do arrive there: none may carry the key
        monkeypatch.setenv("CLUSTERLAB_LLM_ALLOWED_HOSTS", host_port(visitor_server))
        at = app.open()
        if key_in == "environment":
            monkeypatch.setenv("OPENAI_API_KEY", OPERATOR_KEY)
        else:
            monkeypatch.delenv("OPENAI_API_KEY", raising=False)
            at.secrets["OPENAI_API_KEY"] = OPERATOR_KEY
        at = explore_with_llm(at, visitor_server.url)
        assert_healthy(at)
        assert visitor_server.attempts == 4
        assert all(OPERATOR_KEY not in r.authorization for r in visitor_server.requests)
        assert operator_server.attempts == 0

        # the operator's own URL gets the operator's key
        at = name_with(at, operator_server.url)
        assert_healthy(at)
        assert operator_server.attempts == 4
        assert {r.authorization for r in operator_server.requests} == {f"Bearer {OPERATOR_KEY}"}

        # a key typed in the app goes with the URL typed in the app, and only there
        at.text_input(key="llm_key").input(VISITOR_KEY)
        at = name_with(at, visitor_server.url.replace("/v1", "/v1/"))
        assert visitor_server.attempts == 4  # same clusters, same URL: answers come from the cache
        assert all(OPERATOR_KEY not in r.authorization for r in visitor_server.requests)


def test_a_url_saved_with_a_datasets_settings_counts_as_typed(app, monkeypatch):
    """A bookmark reopens a dataset whose saved settings name the visitor's URL: still no key."""
    with ChatServer() as visitor_server:
        monkeypatch.setenv("OPENAI_API_KEY", OPERATOR_KEY)
        monkeypatch.setenv("CLUSTERLAB_LLM_ALLOWED_HOSTS", host_port(visitor_server))
        at = explore_with_llm(app.open(), visitor_server.url)
        assert visitor_server.attempts == 4
        token = at.query_params["ws"]
        app.embedder.calls.clear()
        later = app.open(token)  # a new session: settings (and the URL) come from state.json
        later.switch_page("pages/explore.py").run()
        assert_healthy(later)
        assert later.text_input(key="set:label.llm.base_url").value == visitor_server.url
        assert all(OPERATOR_KEY not in r.authorization for r in visitor_server.requests)


def test_the_pipeline_sends_a_bound_key_only_to_its_own_url(
    topic_table, fake_embedder, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", OPERATOR_KEY)
    with ChatServer() as server:
        config = config_for(
            **{"stages.reduce": False, "label.method": "llm", "label.llm.base_url": server.url}
        )
        runtime = dict(llm_api_key=OPERATOR_KEY, llm_key_url="https://api.openai.com/v1", llm_env_key=False)
        run_collect(topic_table, config, tmp_path / "cache", fake_embedder, **runtime)
        assert server.attempts > 0
        assert {r.authorization for r in server.requests} == {"Bearer no-key"}


# ---------------------------------------------------------------------------- 2: request forgery


def test_a_typed_private_address_is_refused_before_anything_is_sent(app, monkeypatch):
    monkeypatch.delenv("CLUSTERLAB_LLM_ALLOWED_HOSTS", raising=False)
    with ChatServer(lambda r, n: status(400, message="INTERNAL-ONLY-DATA")) as internal:
        at = explore_with_llm(app.open(), internal.url, key=VISITOR_KEY)
        assert_healthy(at)
        assert internal.attempts == 0
        shown = " ".join(errors(at))
        assert "the server URL is refused" in shown and "loopback address" in shown
        assert "llm_allowed_hosts" in shown
        for url in [
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3:8080/v1",
            "http://[::1]:9/v1",
        ]:
            at = name_with(at, url)
            assert_healthy(at)
            assert "the server URL is refused" in " ".join(errors(at)), url


def test_a_typed_url_s_error_bodies_are_not_echoed(topic_table, fake_embedder, tmp_path):
    with ChatServer(lambda r, n: status(400, message="INTERNAL-ONLY-DATA")) as server:
        guard = UrlGuard(allowed_hosts=(host_port(server),))
        config = config_for(
            **{"stages.reduce": False, "label.method": "llm", "label.llm.base_url": server.url}
        )
        result, events = run_collect(topic_table, config, tmp_path / "cache", fake_embedder, llm_guard=guard)
        assert server.attempts > 0
        reasons = [f.reason for f in result.label_fallbacks]
        assert reasons and all("400" in r for r in reasons)
        assert "INTERNAL-ONLY-DATA" not in json.dumps(result.manifest(), default=str)
        assert all("INTERNAL-ONLY-DATA" not in e.message for e in events)


def test_a_redirect_from_an_allowed_server_to_a_refused_one_is_not_followed(
    topic_table, fake_embedder, tmp_path
):
    with ChatServer() as internal:
        moved = Reply(status=307, headers={"Location": internal.url + "/chat/completions"})
        with ChatServer(lambda r, n: moved) as allowed:
            guard = UrlGuard(allowed_hosts=(host_port(allowed),))
            config = config_for(
                **{"stages.reduce": False, "label.method": "llm", "label.llm.base_url": allowed.url}
            )
            with pytest.raises(StageError) as failure:
                run_collect(topic_table, config, tmp_path / "cache", fake_embedder, llm_guard=guard)
    assert allowed.attempts >= 1
    assert internal.attempts == 0
    assert "loopback address" in failure.value.message and "llm_allowed_hosts" in failure.value.hint


def test_loopback_is_allowed_when_the_app_itself_is_served_on_loopback_only(app, monkeypatch):
    monkeypatch.setattr(runbox, "served_on_loopback", lambda: True)  # `make run`: 127.0.0.1
    with ChatServer() as local_ollama:
        at = explore_with_llm(app.open(), local_ollama.url)
        assert_healthy(at)
        assert local_ollama.attempts == 4
    guard = UrlGuard(allow_loopback=True)
    with pytest.raises(OSError, match="link-local"):
        guard.check_url("http://169.254.169.254/")  # metadata stays refused even then
    with pytest.raises(OSError, match="private"):
        guard.check_url("http://192.168.1.10/v1")


def test_served_on_loopback_reads_the_servers_address():
    from streamlit import config as st_config

    before = st_config.get_option("server.address")
    try:
        for address, loopback in [
            ("127.0.0.1", True),
            ("localhost", True),
            ("0.0.0.0", False),
            (None, False),
        ]:
            st_config.set_option("server.address", address)
            assert runbox.served_on_loopback() is loopback, address
    finally:
        st_config.set_option("server.address", before)


# ---------------------------------------------------------------------------- 4: parse once, quota


def test_an_upload_is_parsed_once_and_reopened_from_the_parsed_copy(app, monkeypatch):
    parsed: list[str] = []
    real = pipeline.store.read_table

    def counting(*args, **kwargs):
        parsed.append(args[1] if len(args) > 1 else "")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline.store, "read_table", counting)
    at = upload(app.open(), "topics.csv", topic_csv())
    for _ in range(3):
        at.run()
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    assert_healthy(at)
    assert parsed == ["topics.csv"]
    folder = app.workspace_dir(at) / "datasets" / at.session_state["dataset_id"]
    assert (folder / "table.parquet").exists() and (folder / "source").read_bytes() == topic_csv()
    assert len(cluster_table(at)) >= 2


def test_a_full_workspace_refuses_an_upload_before_writing_anything(app, monkeypatch):
    data = topic_csv()
    monkeypatch.setenv("CLUSTERLAB_WORKSPACE_QUOTA_GB", str(len(data) * 1.5 / 1e9))
    at = upload(app.open(), "topics.csv", data)
    assert_healthy(at)
    (message,) = errors(at)
    assert "needs about" in message and "this workspace already uses" in message
    assert "Delete the open dataset" in message
    assert not (app.workspace_dir(at) / "datasets").exists()
    assert sidebar_datasets(at) == []


def test_a_run_that_would_pass_the_quota_is_refused_and_says_how_much_is_used(app, monkeypatch):
    data = topic_csv()
    # room for the upload and its parsed copy, not for the run's cached results
    monkeypatch.setenv(
        "CLUSTERLAB_WORKSPACE_QUOTA_GB", str((3 * len(data) + 120 * RUN_BYTES_PER_ROW / 2) / 1e9)
    )
    at = upload(app.open(), "topics.csv", data)
    assert sidebar_datasets(at) == ["topics\\.csv · 120 rows"]
    at.button(key="run").click().run()
    assert_healthy(at)
    (message,) = errors(at)
    assert message.startswith("clustering this dataset needs about")
    assert app.calls == []  # nothing computed
    caption = [c.value for c in at.sidebar.caption if "This workspace uses" in c.value]
    assert caption and " of " in caption[0]


def test_the_sidebar_measures_the_workspace_again_when_its_datasets_change_not_on_every_rerun(
    app, monkeypatch
):
    monkeypatch.setenv("CLUSTERLAB_WORKSPACE_QUOTA_GB", "1")
    walks = []
    real = Workspace.usage_bytes
    monkeypatch.setattr(Workspace, "usage_bytes", lambda self: walks.append(1) or real(self))
    at = upload(app.open(), "topics.csv", topic_csv())

    def shown():
        return [c.value for c in at.sidebar.caption if "This workspace uses" in c.value]

    first, before = shown(), len(walks)
    at.run()
    at.run()
    assert shown() == first and len(walks) == before  # a rerun shows the figure it had
    upload(at, "more.csv", topic_csv(seed=1))
    assert len(walks) > before and shown() != first  # a new dataset: measured again


def test_the_usage_line_is_measured_after_the_page_and_shows_what_the_page_wrote(app, monkeypatch):
    """The walk comes after the page's elements (before them, it held back every full rerun by its
    20-30 ms), and what the page wrote (here: a dataset uploaded) is in the figure."""
    from streamlit.navigation.page import Page

    import pages.ui

    monkeypatch.setenv("CLUSTERLAB_WORKSPACE_QUOTA_GB", "1")
    events = []  # "run" (the sidebar: a run's start), "page" (its end), "walk" (outside the page)
    walk, run, sidebar = Workspace.usage_bytes, Page.run, pages.ui.sidebar
    inside = []

    def walked(self):
        if not inside:  # the upload's own quota check walks inside the page
            events.append("walk")
        return walk(self)

    def page_run(self):
        inside.append(1)
        try:
            return run(self)
        finally:
            inside.pop()
            events.append("page")

    monkeypatch.setattr(Workspace, "usage_bytes", walked)
    monkeypatch.setattr(Page, "run", page_run)
    monkeypatch.setattr(pages.ui, "sidebar", lambda ws: events.append("run") or sidebar(ws))
    at = upload(app.open(), "topics.csv", topic_csv())

    def shown():
        return [c.value for c in at.sidebar.caption if "This workspace uses" in c.value]

    first = shown()
    upload(at, "more.csv", topic_csv(seed=1, n_per_topic=60))
    walks = [i for i, event in enumerate(events) if event == "walk"]
    # each after its run's page
    assert walks and all(i > 0 and events[i - 1] == "page" for i in walks), events
    assert shown() != first and len(shown()) == 1  # the new dataset's bytes, in the same place


def test_run_bytes_per_row_covers_what_a_run_keeps(topic_table, tmp_path):
    """The quota's estimate against a real run (384-dim vectors, as the default model's)."""
    cache = tmp_path / "cache"
    run_collect(topic_table, config_for(), cache, FakeEmbedder(dim=384))
    kept = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    per_row = kept / len(topic_table.frame)
    # small tables carry fixed costs (file headers, the keyword model); the estimate must not be
    # far below the real cost per row
    assert RUN_BYTES_PER_ROW >= 0.5 * (per_row - 20_000 / len(topic_table.frame))


# ---------------------------------------------------------------------------- 11: concurrent saves


def test_600_concurrent_state_saves_never_fail_and_the_file_is_always_valid_json(tmp_path):
    tokens = Tokens(b"x" * 32)
    ws = Workspace(tokens.new(), tmp_path, tokens=tokens)
    info, _ = ws.add(topic_csv(), "topics.csv")
    path = ws.path / "datasets" / info.id / "state.json"
    ws.save_state(info.id, {"n": -1})
    stop = threading.Event()
    bad: list[str] = []

    def read_constantly() -> None:
        while not stop.is_set():
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, OSError) as exc:
                bad.append(repr(exc))

    reader = threading.Thread(target=read_constantly)
    reader.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: ws.save_state(info.id, {"n": n, "edits": ["x" * 2000] * 5}), range(600)))
    finally:
        stop.set()
        reader.join()
    assert bad == []
    assert 0 <= ws.state(info.id)["n"] < 600
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


# ---------------------------------------------------------------------------- 12: tokens


def test_a_made_up_workspace_token_gets_a_fresh_workspace(app):
    made_up = "a" * 22
    at = app.open(made_up)
    assert_healthy(at)
    assert warnings(at) == ["That workspace link is not valid; a new, empty workspace was started."]
    assert at.query_params["ws"] != made_up
    assert not (app.root / made_up).exists()
    # a link the server issued works, tomorrow too
    issued = at.query_params["ws"]
    upload(at, "topics.csv", topic_csv())
    later = app.open(issued)
    assert not later.warning and sidebar_datasets(later) == ["topics\\.csv · 120 rows"]


def test_workspaces_made_before_signed_tokens_keep_working(app):
    legacy = "L" * 24  # a folder that exists: its bookmark must keep working
    (app.root / legacy / "datasets").mkdir(parents=True)
    at = app.open(legacy)
    assert_healthy(at)
    assert not at.warning and at.query_params["ws"] == legacy


def test_the_token_secret_is_kept_owner_only_outside_the_workspaces(tmp_path, monkeypatch):
    root = tmp_path / "data" / "workspaces"
    first = Tokens.for_root(root)
    secret = tmp_path / "data" / SECRET_FILE
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    token = first.new()
    assert Tokens.for_root(root).issued(token)  # a restart keeps recognising its links
    assert not Tokens.for_root(root, configured="another operator secret!").issued(token)
    assert not first.issued(token[:-1] + ("A" if token[-1] != "A" else "B"))


# ---------------------------------------------------------------------------- 13: file watcher


def test_the_servers_file_watcher_is_off_for_users():
    code = (
        "from streamlit import config;"
        "print(config.get_option('server.fileWatcherType'), config.get_option('server.runOnSave'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.split() == ["none", "False"]
    assert "--server.fileWatcherType auto" in (ROOT / "Makefile").read_text()
