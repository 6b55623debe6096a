"""LLM cluster labels against a real chat-completions server on 127.0.0.1 (tests/test_llm_server.py).

What a user would see: labels and descriptions from the model, the SDK's retries (and none
where retrying is pointless), finished labels kept through failures and never asked twice,
keyword labels where a call failed (and why), and the key nowhere but in the request header.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
import random
import time
import traceback

import openai
import pandas as pd
import pytest

import pipeline
import pipeline.__main__ as cli
from pipeline import ConfigError, PipelineConfig, Runtime, Secret, StageError, Table
from pipeline import llm as llm_mod
from pipeline.config import load_settings
from tests.conftest import FakeEmbedder, computed_stages, config_for, runtime_for, topic_texts
from tests.test_llm_server import ChatServer, Reply, Seen, answer, status, topic_answer

KEY = "sk-test-7f3a9c1e5b2d4f60a8e1c3b5d7f9e2a4"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    # The SDK waits 0.5 s, 1 s, ... between retries; a server's Retry-After still counts in full.
    monkeypatch.setattr(openai._base_client, "INITIAL_RETRY_DELAY", 0.01)
    monkeypatch.delenv(llm_mod.ENV_API_KEY, raising=False)


@pytest.fixture
def chat():
    with ChatServer() as server:
        yield server


def llm_config(server: ChatServer, **values) -> PipelineConfig:
    return config_for(
        **{
            "stages.reduce": False,  # fast: cluster the fake embeddings directly
            "label.method": "llm",
            "label.llm.base_url": server.url,
            "label.llm.model": "test",
            **values,
        }
    )


def llm_runtime(embedder, **kwargs) -> Runtime:
    kwargs.setdefault("llm_api_key", KEY)
    kwargs.setdefault("llm_timeout_s", 2.0)
    kwargs.setdefault("llm_max_retries", 2)
    return runtime_for(embedder, **kwargs)


def run_llm(table, config, cache_dir, embedder, events=None, **runtime_kwargs):
    events = [] if events is None else events
    result = pipeline.run(
        table,
        config,
        cache_dir=cache_dir,
        runtime=llm_runtime(embedder, **runtime_kwargs),
        on_event=events.append,
    )
    return result, events


def cluster_progress(events) -> list[pipeline.Event]:
    return [
        e for e in events if e.stage == "label" and e.kind == "progress" and e.message.startswith("cluster ")
    ]


def keyword_labels(table, cache_dir, embedder) -> dict[int, str]:
    result = pipeline.run(
        table, config_for(**{"stages.reduce": False}), cache_dir=cache_dir, runtime=runtime_for(embedder)
    )
    return result.labels.label_of()


def cluster_with(result, word: str) -> int:
    frame = result.labels.clusters
    return int(next(cid for cid, kws in zip(frame["id"], frame["keywords"], strict=True) if word in kws))


def assert_no_key(*things) -> None:
    """The key is in none of these: texts, events, paths (every file under them, as bytes)."""
    for thing in things:
        if hasattr(thing, "rglob"):
            for path in thing.rglob("*"):
                if path.is_file():
                    assert KEY.encode() not in path.read_bytes(), f"the key is in {path}"
        elif isinstance(thing, pipeline.Event):
            assert KEY not in thing.to_json()
        elif isinstance(thing, BaseException):
            assert KEY not in "".join(traceback.format_exception(thing))
            assert KEY not in repr(thing)
        else:
            assert KEY not in str(thing)


# --- it works --------------------------------------------------------------------------------


def test_the_model_labels_and_describes_every_cluster(topic_table, cache_dir, fake_embedder, chat):
    result, events = run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder)
    assert chat.attempts == 4
    assert all(r.authorization == f"Bearer {KEY}" and r.path == "/v1/chat/completions" for r in chat.requests)
    assert all(r.body["model"] == "test" for r in chat.requests)
    clusters = result.clusters()
    assert list(clusters.columns) == [
        "id",
        "label",
        "size",
        "share",
        "keywords",
        "representative_texts",
        "parent_id",
        "description",
    ]
    expected = {f"Topic {kws[0]}" for kws in result.labels.clusters["keywords"]}
    assert set(clusters["label"]) == expected
    assert clusters["description"].str.startswith("Texts about topic ").all()
    assert (result.labels.clusters["source"] == "llm").all()
    assert set(result.table()["cluster_label"]) == expected
    assert result.label_fallbacks == ()
    # one progress event per labeled cluster, under the label stage, rising
    progress = cluster_progress(events)
    assert len(progress) == 4
    assert [e.fraction for e in progress] == sorted(e.fraction for e in progress)
    labels = result.manifest()["labels"]
    assert labels["method"] == "llm" and labels["model"] == "test" and labels["base_url"] == chat.url
    assert (labels["calls"], labels["from_cache"], labels["fallbacks"]) == (4, 0, [])


def test_each_prompt_holds_its_clusters_keywords_and_texts(topic_table, cache_dir, fake_embedder, chat):
    result, _ = run_llm(topic_table, llm_config(chat, **{"label.llm.examples": 5}), cache_dir, fake_embedder)
    frame = result.labels.clusters
    for request in chat.requests:
        cid = cluster_with(result, request.keywords[0])
        row = frame[frame["id"] == cid].iloc[0]
        assert request.keywords == list(row["keywords"])
        sent = [line[2:] for line in request.first_prompt.splitlines() if line.startswith("- ")]
        assert len(sent) == 5
        members = set(result.corpus.texts[result.clustering.labels == cid])
        assert set(sent) <= members


def test_a_second_run_asks_nothing(topic_table, cache_dir, fake_embedder, chat):
    first, _ = run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder)
    second, events = run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder)
    assert chat.attempts == 4
    assert computed_stages(events) == []
    pd.testing.assert_frame_equal(first.clusters(), second.clusters())


def test_noise_is_never_sent(cache_dir, fake_embedder, chat):
    texts, _ = topic_texts()
    rng = random.Random(3)
    noise = [" ".join(f"w{rng.randint(0, 10**6)}x" for _ in range(4)) for _ in range(10)]
    table = Table.from_frame(pd.DataFrame({"comment": texts + noise}))
    # HDBSCAN's own selection (epsilon 0) leaves the random strings as noise
    config = llm_config(chat, **{"cluster.min_cluster_size": 5, "cluster.epsilon": 0.0})
    result, _ = run_llm(table, config, cache_dir, fake_embedder)
    unclustered = set(result.corpus.texts[result.clustering.labels == -1])
    assert unclustered, "the test needs some noise"
    assert chat.attempts == result.n_clusters
    assert not any(text in r.first_prompt for r in chat.requests for text in unclustered)
    assert result.labels.label_of()[-1] == "Unclustered"


# --- retries: the SDK's, exactly one layer ----------------------------------------------------


@pytest.mark.parametrize(
    "code, advice",
    [
        (401, "check the key"),
        (403, "the key has no access to this model"),
        (404, "check label.llm.model and label.llm.base_url"),
    ],
)
def test_auth_and_not_found_fail_fast_without_retry(
    code, advice, topic_table, cache_dir, fake_embedder, chat
):
    # the server echoes the Authorization header in its error, as some do: it must be scrubbed
    chat.handler = lambda r, n: status(code, message=f"rejected {r.authorization}")
    events = []
    with pytest.raises(StageError) as info:
        run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder, events, llm_concurrency=1)
    assert chat.attempts == 1
    message = info.value.user_message()
    phrase = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}[code]
    assert message.startswith(
        f"label: the API returned {code} {phrase} for model 'test' at {chat.url}; {advice}"
    )
    assert "; the server said: rejected Bearer ***" in message
    assert info.value.stage == "label"
    assert [e.stage for e in events if e.kind == "failed"] == ["label"]
    assert_no_key(info.value, *events, cache_dir)


def test_fatal_status_with_parallel_calls_never_retries(topic_table, cache_dir, fake_embedder, chat):
    chat.handler = lambda r, n: status(401)
    with pytest.raises(StageError):
        run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder, llm_concurrency=4)
    prompts = [r.first_prompt for r in chat.requests]
    assert 1 <= len(prompts) <= 4 and len(set(prompts)) == len(prompts)  # no prompt twice


def test_429_waits_for_retry_after_then_succeeds(topic_table, cache_dir, fake_embedder, chat):
    def handler(request: Seen, attempt: int) -> Reply:
        if request.mentions("refund") and attempt == 0:
            return status(429, {"Retry-After": "1"})
        return topic_answer(request, attempt)

    chat.handler = handler
    result, _ = run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder)
    tries = [r.at for r in chat.requests if r.mentions("refund")]
    assert len(tries) == 2
    assert tries[1] - tries[0] >= 0.9  # the backoff alone is 0.01 s here: this is Retry-After
    assert chat.attempts == 5
    assert result.label_fallbacks == ()


def test_500_twice_then_success_takes_three_attempts(topic_table, cache_dir, fake_embedder, chat):
    chat.handler = lambda r, n: status(500) if r.mentions("crash") and n < 2 else topic_answer(r, n)
    result, _ = run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder)
    assert chat.attempts_for("crash") == 3
    assert chat.attempts == 6
    assert result.label_fallbacks == ()
    assert result.labels.label_of()[cluster_with(result, "crash")].startswith("Topic ")


def test_a_hanging_reply_times_out_and_the_retry_succeeds(topic_table, cache_dir, fake_embedder, chat):
    def handler(request: Seen, attempt: int) -> Reply:
        if request.mentions("login") and attempt == 0:
            return Reply(delay=5.0, body=answer("Too late").body)
        return topic_answer(request, attempt)

    chat.handler = handler
    started = time.monotonic()
    result, _ = run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder, llm_timeout_s=0.5)
    assert time.monotonic() - started < 5.0
    assert chat.attempts_for("login") == 2
    assert result.label_fallbacks == ()
    assert "Too late" not in result.labels.label_of().values()


def test_retries_run_out_and_the_cluster_keeps_its_keyword_label(topic_table, cache_dir, fake_embedder, chat):
    chat.handler = lambda r, n: status(503) if r.mentions("love") else topic_answer(r, n)
    result, events = run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder, llm_max_retries=2)
    assert chat.attempts_for("love") == 3
    (fallback,) = result.label_fallbacks
    assert fallback.cluster == cluster_with(result, "love") and fallback.kind == "failed"
    assert fallback.reason == "the API returned 503 Service Unavailable (retried up to 2 times)"
    assert (
        result.labels.label_of()[fallback.cluster]
        == keyword_labels(topic_table, cache_dir, fake_embedder)[fallback.cluster]
    )
    assert any(
        e.kind == "warning" and e.stage == "label" and "1 of 4 clusters kept keyword labels" in e.message
        for e in events
    )
    assert result.manifest()["labels"]["fallbacks"] == [
        {"cluster": fallback.cluster, "kind": "failed", "reason": fallback.reason}
    ]


def test_400_is_not_retried(topic_table, cache_dir, fake_embedder, chat):
    chat.handler = lambda r, n: (
        status(400, message="prompt too long") if r.mentions("refund") else topic_answer(r, n)
    )
    result, _ = run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder)
    assert chat.attempts_for("refund") == 1
    (fallback,) = result.label_fallbacks
    assert (
        fallback.reason == "the API rejected the request (400 Bad Request); the server said: prompt too long"
    )


# --- answers that are not labels -------------------------------------------------------------


EMPTY_CHOICES = Reply(
    body={"id": "x", "object": "chat.completion", "created": 0, "model": "test", "choices": []}
)


@pytest.mark.parametrize(
    "reply, reason",
    [
        (Reply(body=b'{"id": "x", "choices": [{'), "the reply was not valid JSON"),
        (EMPTY_CHOICES, "the reply had no choices"),
        (answer("", content=""), "the reply had no text"),
        (
            Reply(body=b"<html>gateway</html>", headers={"Content-Type": "text/html"}),
            "the reply was not a chat completion",
        ),
        (answer("", content='{"summary": "nothing"}'), "the reply held no usable label"),
    ],
)
def test_a_reply_that_is_not_a_label_falls_back(reply, reason, topic_table, cache_dir, fake_embedder, chat):
    chat.handler = lambda r, n: reply if r.mentions("refund") else topic_answer(r, n)
    result, _ = run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder)
    assert chat.attempts_for("refund") == 1  # a 200 with a bad body is not retried
    (fallback,) = result.label_fallbacks
    assert fallback.reason.startswith(reason)
    assert result.labels.clusters.set_index("id").at[fallback.cluster, "source"] == "keywords"
    assert result.clusters().set_index("id").at[fallback.cluster, "description"] == ""


# --- nothing finished is lost, nothing is asked twice -----------------------------------------


def test_finished_labels_survive_a_failure_and_only_the_missing_one_is_asked_again(
    topic_table, cache_dir, fake_embedder, chat
):
    chat.handler = lambda r, n: Reply(body=b"{broken") if r.mentions("refund") else topic_answer(r, n)
    config = llm_config(chat)
    first, _ = run_llm(topic_table, config, cache_dir, fake_embedder)
    assert len(first.label_fallbacks) == 1 and chat.attempts == 4
    # an incomplete label stage is not cached: the plan says so, and what is missing
    runtime = llm_runtime(fake_embedder)
    step = pipeline.plan(topic_table, config, cache_dir=cache_dir, runtime=runtime)[-1]
    assert (step.stage, step.action) == ("label", "compute")
    assert step.detail == f"labels from test at {chat.url}: 3 of 4 cluster labels cached, 1 API calls"

    chat.handler = topic_answer
    second, events = run_llm(topic_table, config, cache_dir, fake_embedder)
    assert chat.attempts == 5 and chat.requests[-1].mentions("refund")
    assert second.label_fallbacks == ()
    assert computed_stages(events) == ["label"]
    assert second.manifest()["labels"]["calls"] == 1 and second.manifest()["labels"]["from_cache"] == 3
    assert sum("(from cache)" in e.message for e in cluster_progress(events)) == 3

    third, events = run_llm(topic_table, config, cache_dir, fake_embedder)
    assert chat.attempts == 5 and computed_stages(events) == []
    assert (third.manifest()["labels"]["calls"], third.manifest()["labels"]["from_cache"]) == (0, 4)
    assert pipeline.plan(topic_table, config, cache_dir=cache_dir, runtime=runtime)[-1].action == "load"


def test_without_allow_partial_a_failed_cluster_fails_the_stage(topic_table, cache_dir, fake_embedder, chat):
    chat.handler = lambda r, n: status(500) if r.mentions("crash") else topic_answer(r, n)
    config = llm_config(chat, **{"label.llm.allow_partial": False})
    with pytest.raises(StageError) as info:
        run_llm(topic_table, config, cache_dir, fake_embedder, llm_max_retries=0)
    message = info.value.user_message()
    assert message.startswith(f"label: 1 of 4 clusters got no label from test at {chat.url}: cluster ")
    assert "the API returned 500 Internal Server Error" in message
    assert "the 3 finished labels are cached: run again to retry only these clusters" in message
    chat.handler = topic_answer
    result, _ = run_llm(topic_table, config, cache_dir, fake_embedder)
    assert chat.attempts == 5 and chat.requests[-1].mentions("crash")
    assert result.label_fallbacks == ()


def test_a_cluster_whose_members_did_not_change_is_not_asked_again(cache_dir, fake_embedder, chat):
    texts, _ = topic_texts()
    rng = random.Random(1)
    weather = [
        " ".join(rng.sample(["weather", "rain", "sunny", "cloud", "storm", "wind"], 4)) for _ in range(8)
    ]
    table = Table.from_frame(pd.DataFrame({"comment": texts + weather}))
    values = {"stages.reduce": True, "cluster.epsilon": 0.4}  # HDBSCAN's own selection: 5 clusters
    small, _ = run_llm(
        table, llm_config(chat, **values, **{"cluster.min_cluster_size": 5}), cache_dir, fake_embedder
    )
    assert chat.attempts == small.n_clusters == 5
    big, events = run_llm(
        table, llm_config(chat, **values, **{"cluster.min_cluster_size": 15}), cache_dir, fake_embedder
    )
    assert computed_stages(events) == ["cluster", "label"]

    def member_sets(result):
        return {
            frozenset(result.corpus.texts[result.clustering.labels == cid])
            for cid in range(result.n_clusters)
        }

    unchanged = member_sets(small) & member_sets(big)
    assert len(unchanged) >= 2, "the test needs clusters that keep their members"
    assert chat.attempts == 5 + big.n_clusters - len(unchanged)
    assert big.manifest()["labels"]["from_cache"] == len(unchanged)
    # another model is another question: every cluster is asked again
    run_llm(
        table,
        llm_config(chat, **values, **{"cluster.min_cluster_size": 15, "label.llm.model": "other"}),
        cache_dir,
        fake_embedder,
    )
    assert chat.attempts == 5 + big.n_clusters - len(unchanged) + big.n_clusters


def test_keyword_labels_ignore_the_model_settings(topic_table, cache_dir, fake_embedder):
    base = {"stages.reduce": False}
    pipeline.run(topic_table, config_for(**base), cache_dir=cache_dir, runtime=runtime_for(fake_embedder))
    events = []
    result = pipeline.run(
        topic_table,
        config_for(**base, **{"label.llm.model": "other", "label.llm.max_clusters": 2}),
        cache_dir=cache_dir,
        runtime=runtime_for(fake_embedder),
        on_event=events.append,
    )
    assert computed_stages(events) == []
    assert "description" not in result.clusters().columns
    assert result.manifest()["labels"] == {"method": "keywords"}


# --- duplicates, cap, estimate, concurrency ----------------------------------------------------


def test_a_duplicate_label_is_asked_again_once(topic_table, cache_dir, fake_embedder, chat):
    chat.handler = lambda r, n: topic_answer(r, n) if r.is_ask_again else answer("Account problems")
    result, _ = run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder)
    labels = result.labels.label_of()
    assert labels[0] == "Account problems"  # the largest cluster keeps it
    assert len(set(labels.values())) == len(labels)
    assert chat.attempts == 4 + 3
    assert all(
        'already has the label "Account problems"' in r.prompt for r in chat.requests if r.is_ask_again
    )
    run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder)
    assert chat.attempts == 7  # the second answers are cached too


def test_a_label_still_duplicated_after_asking_again_is_numbered(topic_table, cache_dir, fake_embedder, chat):
    chat.handler = lambda r, n: answer("**Account problems.**")
    result, _ = run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder)
    assert sorted(result.labels.label_of().values()) == [
        "Account problems",
        "Account problems (2)",
        "Account problems (3)",
        "Account problems (4)",
    ]
    assert chat.attempts == 7


def test_the_cap_labels_the_largest_clusters_and_the_estimate_says_so(
    topic_table, cache_dir, fake_embedder, chat
):
    keyword_result = pipeline.run(
        topic_table,
        config_for(**{"stages.reduce": False}),
        cache_dir=cache_dir,
        runtime=runtime_for(fake_embedder),
    )
    config = llm_config(chat, **{"label.llm.max_clusters": 2})
    before = pipeline.estimate_llm_labels(keyword_result, config, cache_dir=cache_dir)
    assert (before.clusters, before.capped, before.cached, before.calls) == (2, 2, 0, 2)
    assert before.prompt_tokens > 100 and before.completion_tokens == 2 * llm_mod.COMPLETION_TOKENS
    assert str(before).startswith("2 API calls for 2 clusters (0 cached), about ")
    assert chat.attempts == 0  # estimating calls nothing

    result, _ = run_llm(topic_table, config, cache_dir, fake_embedder)
    sizes = result.labels.clusters.set_index("id")["size"]
    asked = {cluster_with(result, r.keywords[0]) for r in chat.requests}
    assert chat.attempts == 2 and asked == set(sizes.nlargest(2).index)
    assert [(f.kind, f.reason) for f in result.label_fallbacks] == [
        ("capped", "not sent: beyond label.llm.max_clusters = 2")
    ] * 2
    assert result.labels.complete  # a cap is a choice, not a failure: the stage is cached
    after = pipeline.estimate_llm_labels(result, cache_dir=cache_dir)
    assert (after.cached, after.calls, after.prompt_tokens) == (2, 0, 0)
    # from the keyword run's own summary (no second word count): the same requests the run made
    again = pipeline.estimate_llm_labels(keyword_result, config, cache_dir=cache_dir)
    assert (again.clusters, again.cached, again.calls) == (2, 2, 0)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_calls_run_in_a_bounded_pool(concurrency, topic_table, cache_dir, fake_embedder, chat):
    chat.handler = lambda r, n: Reply(delay=0.2, body=topic_answer(r, n).body)
    run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder, llm_concurrency=concurrency)
    assert chat.max_in_flight == concurrency


def test_after_failures_in_a_row_the_rest_is_not_sent(
    topic_table, cache_dir, fake_embedder, chat, monkeypatch
):
    monkeypatch.setattr(llm_mod, "STOP_AFTER_FAILURES", 2)
    chat.handler = lambda r, n: status(502)
    result, _ = run_llm(
        topic_table, llm_config(chat), cache_dir, fake_embedder, llm_concurrency=1, llm_max_retries=0
    )
    assert chat.attempts == 2
    reasons = [f.reason for f in result.label_fallbacks]
    assert len(reasons) == 4
    assert (
        sum(r.startswith("not sent: 2 calls in a row failed (last: the API returned 502") for r in reasons)
        == 2
    )
    assert result.manifest()["labels"]["calls"] == 2


# --- the key ----------------------------------------------------------------------------------


def test_the_key_is_nowhere_but_in_the_request_header(topic_table, cache_dir, fake_embedder, chat, caplog):
    caplog.set_level(logging.DEBUG)

    def handler(request: Seen, attempt: int) -> Reply:
        if request.mentions("refund"):
            return status(400, message=f"bad request from {request.authorization}")
        if request.mentions("crash") and attempt == 0:
            return status(500, message=f"oops {request.authorization}")
        if request.mentions("love"):
            return Reply(body=b"{broken " + request.authorization.encode())
        return topic_answer(request, attempt)

    chat.handler = handler
    result, events = run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder)
    assert all(r.authorization == f"Bearer {KEY}" for r in chat.requests)
    reasons = {f.reason for f in result.label_fallbacks}
    assert (
        "the API rejected the request (400 Bad Request); the server said: bad request from Bearer ***"
        in reasons
    )
    assert_no_key(
        caplog.text,
        *events,
        json.dumps(result.manifest()),
        result.warnings,
        result.label_fallbacks,
        result.clusters().to_csv(),
        result.config.to_toml(llm_runtime(fake_embedder)),
        llm_runtime(fake_embedder),
        cache_dir,
    )
    chat.handler = lambda r, n: status(401, message=f"invalid key {r.authorization}")
    with pytest.raises(StageError) as info:
        run_llm(topic_table, llm_config(chat, **{"label.llm.model": "other"}), cache_dir, fake_embedder)
    assert_no_key(info.value, caplog.text, cache_dir)


def test_the_key_can_come_from_the_environment(topic_table, cache_dir, fake_embedder, chat, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder, llm_api_key=None)
    assert {r.authorization for r in chat.requests} == {f"Bearer {KEY}"}


def test_a_local_server_needs_no_key(topic_table, cache_dir, fake_embedder, chat):
    result, _ = run_llm(topic_table, llm_config(chat), cache_dir, fake_embedder, llm_api_key="  ")
    assert {r.authorization for r in chat.requests} == {f"Bearer {llm_mod.NO_KEY}"}
    assert result.label_fallbacks == ()


def test_openai_without_a_key_fails_before_calling(topic_table, cache_dir, fake_embedder):
    config = config_for(**{"stages.reduce": False, "label.method": "llm"})
    with pytest.raises(StageError) as info:
        run_llm(topic_table, config, cache_dir, fake_embedder, llm_api_key=None)
    assert info.value.user_message().startswith(
        "label: no API key for https://api.openai.com/v1; expected one in OPENAI_API_KEY"
    )


def test_a_fully_cached_run_needs_neither_key_nor_server(topic_table, cache_dir, fake_embedder, chat):
    config = llm_config(chat)
    run_llm(topic_table, config, cache_dir, fake_embedder)
    chat.handler = lambda r, n: status(401)
    # the label stage recomputes (another cluster setting keeps the members), the answers load
    result, _ = run_llm(
        topic_table,
        dataclasses.replace(config, label=dataclasses.replace(config.label, n_representatives=2)),
        cache_dir,
        fake_embedder,
        llm_api_key=None,
    )
    assert chat.attempts == 4 and result.label_fallbacks == ()


def test_runtime_and_secret_never_show_the_key():
    runtime = Runtime(llm_api_key=KEY)
    assert isinstance(runtime.llm_api_key, Secret) and runtime.llm_api_key.reveal() == KEY
    assert_no_key(repr(runtime), str(runtime), dataclasses.asdict(runtime), repr(runtime.llm_api_key))
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(runtime.llm_api_key)
    assert Runtime(llm_api_key="").llm_api_key is None
    assert Runtime(llm_api_key=KEY) == runtime


# --- settings -----------------------------------------------------------------------------------


def test_llm_settings_from_set_and_toml(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        '[label]\nmethod = "llm"\n\n[label.llm]\nbase_url = "http://127.0.0.1:11434/v1"\n'
        'model = "llama3.2"\nmax_clusters = 20\nconcurrency = 8\ntimeout_s = 30\n',
        encoding="utf-8",
    )
    config, runtime_values = load_settings(path, ["label.llm.model=qwen3", "label.llm.max_retries=5"])
    assert config.label.method == "llm"
    assert (config.label.llm.model, config.label.llm.max_clusters) == ("qwen3", 20)
    assert config.label.llm.base_url == "http://127.0.0.1:11434/v1"
    runtime = Runtime().with_values(runtime_values)
    assert (runtime.llm_concurrency, runtime.llm_timeout_s, runtime.llm_max_retries) == (8, 30.0, 5)
    # PipelineConfig.from_toml keeps the settings; the run-time keys are for load_settings
    assert PipelineConfig.from_toml(path).label.llm.model == "llama3.2"
    # to_toml writes [label.llm], with the run-time values when given a Runtime
    again = tmp_path / "again.toml"
    again.write_text(config.to_toml(runtime), encoding="utf-8")
    assert "[label.llm]" in again.read_text()
    loaded, loaded_runtime = load_settings(again)
    assert loaded == config and Runtime().with_values(loaded_runtime) == runtime
    assert config.flat()["label.llm.model"] == "qwen3"


def test_run_time_settings_are_not_pipeline_settings():
    with pytest.raises(ConfigError) as info:
        PipelineConfig().with_values({"label.llm.concurrency": 8})
    assert "label.llm.concurrency is a run-time setting" in info.value.user_message()
    assert "Runtime(llm_concurrency=...)" in info.value.user_message()
    with pytest.raises(ConfigError) as info:
        Runtime().with_values({"label.llm.concurrency": "0"})
    assert "label.llm.concurrency = 0 is not allowed; expected 1..64" in info.value.user_message()
    with pytest.raises(ConfigError) as info:
        Runtime().with_values({"label.llm.timeout_s": "soon"})
    assert "label.llm.timeout_s = 'soon' is not a valid float" in info.value.user_message()


@pytest.mark.parametrize(
    "assignment, expected",
    [
        ("label.method=gpt", "label.method = 'gpt' is not allowed; expected 'keywords' or 'llm'"),
        ("label.llm.base_url=localhost:11434", "expected an http:// or https:// URL"),
        ("label.llm.model= ", "label.llm.model = '' is not allowed; expected a model name"),
        ("label.llm.max_clusters=-1", "expected 0 (all) or a positive integer"),
        (
            "label.llm=llama",
            "label.llm is a section (base_url, model, max_clusters, examples, allow_partial)",
        ),
        ("label.llm.temperature=0", "unknown setting 'label.llm.temperature'; label.llm has base_url"),
    ],
)
def test_bad_llm_settings_say_what_is_expected(assignment, expected):
    with pytest.raises(ConfigError) as info:
        PipelineConfig().with_overrides([assignment])
    assert expected in info.value.user_message()


def test_a_url_with_credentials_is_refused_without_repeating_them():
    with pytest.raises(ConfigError) as info:
        PipelineConfig().with_overrides([f"label.llm.base_url=https://user:{KEY}@example.test/v1"])
    assert "holds a user name or password" in info.value.user_message()
    assert_no_key(info.value)


# --- what the model says, cleaned -------------------------------------------------------------


@pytest.mark.parametrize(
    "content, label, description",
    [
        (
            '{"label": "Refund delays", "description": "People wait for refunds."}',
            "Refund delays",
            "People wait for refunds.",
        ),
        (
            '```json\n{"label": "Login trouble", "description": "Cannot sign in. Also codes."}\n```',
            "Login trouble",
            "Cannot sign in.",
        ),
        ('<think>hmm, billing?</think>{"label": "\\"Billing\\"", "description": ""}', "Billing", ""),
        ("**Label:** *App crashes*\nThe app closes on start.", "App crashes", "The app closes on start."),
        ('# "Praise for the design."', "Praise for the design", ""),
        (
            '{"label": "a very long label that goes on and on", "description": "x"}',
            "a very long label that goes",
            "x",
        ),
        ("Label: Can't log in!", "Can't log in", ""),
    ],
)
def test_replies_become_short_plain_labels(content, label, description):
    assert llm_mod.parse_reply(content) == {"label": label, "description": description}


@pytest.mark.parametrize("content", ["", "   ", "```\n```", '{"label": "***"}'])
def test_replies_without_a_label_are_failures(content):
    with pytest.raises(llm_mod.CallFailed):
        llm_mod.parse_reply(content)


# --- the command line --------------------------------------------------------------------------


def test_command_line_labels_with_the_model(tmp_path, monkeypatch, capsys, chat):
    embedder = FakeEmbedder()
    monkeypatch.setattr(cli, "Runtime", lambda **kw: Runtime(embedder=embedder, heartbeat_s=0.5, **kw))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    chat.handler = lambda r, n: (
        status(500, message=f"down {r.authorization}") if r.mentions("refund") else topic_answer(r, n)
    )
    texts, _ = topic_texts()
    source = tmp_path / "feedback.csv"
    pd.DataFrame({"comment": texts}).to_csv(source, index=False)
    out, cache, events = tmp_path / "out.csv", tmp_path / "cache", tmp_path / "events.jsonl"
    args = [
        "run", source, "--text-column", "comment", "--out", out, "--cache-dir", cache, "--events", events,
        "--set", "stages.reduce=false", "--set", "label.method=llm",
        "--set", f"label.llm.base_url={chat.url}", "--set", "label.llm.model=test",
        "--set", "label.llm.max_retries=1", "--set", "label.llm.concurrency=2", "--set", "label.llm.timeout_s=2",
    ]  # fmt: skip
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert chat.attempts == 3 + 2 and chat.attempts_for("refund") == 2  # max_retries=1 reached the SDK
    assert chat.max_in_flight <= 2
    clusters = pd.read_csv(tmp_path / "out.clusters.csv", encoding="utf-8-sig", keep_default_na=False)
    assert list(clusters.columns)[-1] == "description"
    assert (clusters["label"].str.startswith("Topic ")).sum() == 3
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning: [label] cluster ")]
    assert len(warnings) == 1
    assert (
        "kept its keyword label" in warnings[0]
        and "500 Internal Server Error (retried up to 1 time)" in warnings[0]
    )
    assert "hint: run the same command again to ask only for the missing labels" in captured.err
    manifest = (tmp_path / "out.manifest.json").read_text()
    assert json.loads(manifest)["labels"]["fallbacks"][0]["kind"] == "failed"
    assert_no_key(
        captured.out, captured.err, manifest, events.read_text(), cache, out.read_text(encoding="utf-8-sig")
    )

    chat.handler = topic_answer
    assert cli.main([str(a) for a in args]) == 0
    assert chat.attempts == 6  # only the missing label
    assert "warning: [label]" not in capsys.readouterr().err


def test_command_line_rejects_bad_run_time_values(tmp_path, monkeypatch, capsys):
    source = tmp_path / "feedback.csv"
    source.write_text("comment\nhello\n", encoding="utf-8")
    code = cli.main(
        ["run", str(source), "--text-column", "comment", "--out", str(tmp_path / "o.csv"),
         "--cache-dir", str(tmp_path / "cache"), "--set", "label.llm.concurrency=0"]
    )  # fmt: skip
    assert code == 2
    assert (
        "error: [config] label.llm.concurrency = 0 is not allowed; expected 1..64" in capsys.readouterr().err
    )
