"""cluster.near_duplicates: each group of near-identical texts counted once in the clustering,
the group's other texts given its representative's cluster; hostile cases first.

The fake embedder sums the vectors of the lower-cased words, so spellings of one text ("Card
declined", "CARD DECLINED") are distinct texts with one vector: a near-duplicate group."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import pipeline.duplicates as duplicates
import pipeline.stages.cluster as cluster_stage
from pipeline import ConfigError, PipelineConfig, StageError, Table
from pipeline.cache import chain_key
from pipeline.runner import stage_keys
from tests.conftest import FakeEmbedder, config_for, count_calls, run_collect, runtime_for, topic_texts

SPELLINGS = ["Card declined", "card declined", "CARD DECLINED", "Card Declined"]


def spelled_table(repeat: int = 1) -> Table:
    """The topic texts, plus each of 12 texts spelled three more ways (upper, lower, title case)."""
    texts, _ = topic_texts()
    variants = [v for t in texts[:12] for v in (t.upper(), t.title(), t.capitalize())]
    return Table.from_frame(pd.DataFrame({"comment": texts * repeat + variants}), name="spelled.csv")


# --- hostile cases -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-0.1, 0.5, 0.79, 1.01, 2, math.nan])
def test_a_threshold_out_of_range_names_the_setting_and_the_range(value):
    with pytest.raises(ConfigError) as info:
        PipelineConfig().with_values({"cluster.near_duplicates": value})
    message = info.value.user_message()
    assert "cluster.near_duplicates" in message and "0 (off) or a cosine similarity 0.8..1" in message


def test_every_text_a_near_duplicate_of_one_is_one_cluster_with_a_warning(tmp_path):
    table = Table.from_frame(pd.DataFrame({"comment": SPELLINGS * 5 + ["card  DECLINED"]}))
    result, events = run_collect(
        table, config_for(**{"cluster.near_duplicates": 0.95}), tmp_path, FakeEmbedder()
    )
    assert result.corpus.n_texts == 5 and result.clustering.labels.tolist() == [0] * 5
    assert result.readouts["near_duplicate_groups"] == 1
    assert result.readouts["near_duplicate_texts_folded"] == 4
    assert any("every text is a near-duplicate of one text" in w for w in result.warnings)
    assert result.labels.clusters["size"].tolist() == [21]


def test_one_row_is_one_cluster(tmp_path):
    table = Table.from_frame(pd.DataFrame({"comment": ["only one"]}))
    result, _ = run_collect(table, config_for(**{"cluster.near_duplicates": 0.95}), tmp_path, FakeEmbedder())
    assert result.clustering.labels.tolist() == [0] and "near_duplicate_groups" not in result.readouts


def test_more_clusters_than_texts_left_after_folding_says_why(tmp_path):
    table = Table.from_frame(pd.DataFrame({"comment": [*SPELLINGS, "refund please", "login broken"]}))
    config = config_for(
        **{"cluster.near_duplicates": 0.95, "cluster.algorithm": "kmeans", "cluster.n_clusters": 4}
    )
    with pytest.raises(StageError) as info:
        run_collect(table, config, tmp_path, FakeEmbedder())
    message = info.value.user_message()
    assert "more clusters than the 3 distinct texts" in message
    assert "after 3 near-duplicate texts folded into 1 group; cluster.near_duplicates = 0.95" in message


def test_too_many_texts_to_search_are_clustered_unfolded_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(duplicates, "MAX_TEXTS", 50)
    result, _ = run_collect(
        spelled_table(), config_for(**{"cluster.near_duplicates": 0.95}), tmp_path, FakeEmbedder()
    )
    assert "near_duplicate_groups" not in result.readouts
    assert any("near-duplicates were not folded" in w and "at most 50" in w for w in result.warnings)


# --- what folding does -------------------------------------------------------------------------


def test_each_group_is_clustered_once_and_its_texts_share_the_representatives_cluster(tmp_path):
    table = spelled_table()
    config = config_for(**{"cluster.near_duplicates": 0.95})
    result, events = run_collect(table, config, tmp_path, FakeEmbedder())
    corpus, labels = result.corpus, result.clustering.labels
    assert corpus.n_texts == 120 + 36
    for text in corpus.texts[:12]:
        members = [i for i, t in enumerate(corpus.texts) if t.lower() == text.lower()]
        assert len(members) == 4 and len({int(labels[i]) for i in members}) == 1
    readouts = result.readouts
    assert readouts["near_duplicate_groups"] == 12 and readouts["near_duplicate_texts_folded"] == 36
    assert result.clustering.resolved["n_texts_clustered"] == 120
    assert result.labels.clusters["size"].sum() == corpus.n_rows  # sizes stay in rows
    finished = [e.message for e in events if e.stage == "cluster" and e.kind == "finished"]
    assert "36 near-duplicate texts counted once, in 12 groups" in finished[0]
    manifest = json.loads(json.dumps(result.manifest(), default=str))
    assert manifest["quality"]["near_duplicate_groups"] == 12
    assert manifest["config"]["cluster"]["near_duplicates"] == 0.95


def test_the_setting_is_in_the_cluster_key_and_off_keeps_the_key_from_before(topic_table):
    runtime = runtime_for(FakeEmbedder())
    off = stage_keys(topic_table, config_for(), runtime)
    on = stage_keys(topic_table, config_for(**{"cluster.near_duplicates": 0.95}), runtime)
    looser = stage_keys(topic_table, config_for(**{"cluster.near_duplicates": 0.9}), runtime)
    assert off["projection"] == on["projection"]  # embedding and reduction are reused
    assert len({off["clustering"], on["clustering"], looser["clustering"]}) == 3
    params = {k: v for k, v in vars(PipelineConfig().cluster).items() if k != "near_duplicates"}
    before = chain_key(
        "cluster",
        cluster_stage.VERSION,
        {"__type__": "ClusterParams", **params},
        [off["projection"], off["corpus"], off["embeddings"]],
    )
    assert off["clustering"] == before  # results cached before the setting existed stay valid


def test_the_groups_are_a_cached_piece_a_slider_move_reuses(tmp_path, monkeypatch):
    calls = count_calls(monkeypatch, duplicates, "near_duplicate_groups")
    embedder = FakeEmbedder()
    table = spelled_table()
    run_collect(table, config_for(**{"cluster.near_duplicates": 0.95}), tmp_path, embedder)
    moved, _ = run_collect(
        table,
        config_for(**{"cluster.near_duplicates": 0.95, "cluster.min_cluster_size": 6}),
        tmp_path,
        embedder,
    )
    assert len(calls) == 1 and moved.readouts["near_duplicate_groups"] == 12
    # the app's panel finds the same piece
    groups, cached = duplicates.cached_groups(moved.corpus, moved.embeddings, 0.95, tmp_path)
    assert cached and groups.n_groups == 12 and len(calls) == 1


def test_the_group_table_lists_the_biggest_groups_first_and_can_stop_early():
    vectors = np.zeros((6, 4), dtype=np.float32)
    vectors[[0, 1]] = [1, 0, 0, 0]
    vectors[[2, 3, 4]] = [0, 1, 0, 0]
    vectors[5] = [0, 0, 1, 0]
    groups = duplicates.near_duplicate_groups(vectors, np.array([1, 1, 1, 2, 1, 1]))
    texts = np.array(list("abcdef"), dtype=object)
    table = groups.table(texts, shown=1)
    assert table.to_dict("records") == [
        {"group": 0, "representative": "d", "texts": 3, "rows": 4, "examples": "c"},
        {"group": 1, "representative": "a", "texts": 2, "rows": 2, "examples": "b"},
    ]
    assert groups.table(texts, limit=1)["representative"].tolist() == ["d"]


def test_the_command_line_takes_the_setting_and_the_manifest_says_what_was_folded(
    tmp_path, monkeypatch, capsys
):
    import pipeline.__main__ as cli
    from pipeline import Runtime

    embedder = FakeEmbedder()
    monkeypatch.setattr(cli, "Runtime", lambda **kw: Runtime(embedder=embedder, heartbeat_s=0.5, **kw))
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    spelled_table().frame.to_csv(source, index=False)
    args = ["run", source, "--text-column", "comment", "--out", out, "--cache-dir", tmp_path / "c", "--quiet"]
    code = cli.main([str(a) for a in [*args, "--set", "cluster.near_duplicates=0.95"]])
    assert code == 0, capsys.readouterr().err
    quality = json.loads((tmp_path / "out.manifest.json").read_text())["quality"]
    assert quality["near_duplicate_groups"] == 12 and quality["near_duplicate_texts_folded"] == 36
    code = cli.main([str(a) for a in [*args, "--set", "cluster.near_duplicates=1.5"]])
    assert code == 2
    assert "error: [config] cluster.near_duplicates = 1.5 is not allowed" in capsys.readouterr().err


# --- the app -----------------------------------------------------------------------------------


def panel(result, values: dict, cache_dir) -> None:
    from pages.ui.duplicates import near_duplicates_section

    near_duplicates_section(result, values, cache_dir)


def test_the_panel_lists_the_groups_and_says_whether_the_clustering_counts_them_once(tmp_path):
    from streamlit.testing.v1 import AppTest

    off, _ = run_collect(spelled_table(), config_for(), tmp_path, FakeEmbedder())
    at = AppTest.from_function(panel, args=(off, {"near_duplicates_at": 0.95}, tmp_path), default_timeout=30)
    at.run()
    assert not at.exception
    assert at.text[0].value == (
        "12 groups of near-duplicates at a similarity of at least 0.95: 48 distinct texts on 48 rows. "
        "Counting each group once clusters 120 texts instead of 156."
    )
    assert "counts every text on its own" in at.caption[0].value
    shown = at.dataframe[0].value
    assert list(shown.columns) == ["representative", "texts", "rows", "examples"] and len(shown) == 12
    assert shown["texts"].tolist() == [4] * 12 and shown["examples"].str.count(r" \| ").eq(2).all()

    on, _ = run_collect(
        spelled_table(), config_for(**{"cluster.near_duplicates": 0.95}), tmp_path, FakeEmbedder()
    )
    at = AppTest.from_function(panel, args=(on, {}, tmp_path), default_timeout=30).run()
    said = at.caption[0].value.replace("\\", "")  # Markdown-escaped
    assert (
        said
        == "The clustering counts each group once at a similarity of 0.95: 36 texts joined their group's cluster."
    )


def test_the_sidebar_toggle_counts_each_group_once_and_is_saved(app):
    from pipeline.store import Workspace

    at = app.open()
    frame = spelled_table().frame
    at.file_uploader(key="upload").set_value(("s.csv", frame.to_csv(index=False).encode(), "text/csv")).run()
    at.button(key="run").click().run()
    at.switch_page("pages/explore.py").run()
    assert not at.exception and at.session_state["result"].config.cluster.near_duplicates == 0
    at.toggle(key="set:near_duplicates_on").set_value(True).run()
    assert not at.exception
    result = at.session_state["result"]
    assert result.config.cluster.near_duplicates == 0.95 and result.readouts["near_duplicate_groups"] == 12
    at.slider(key="set:near_duplicates_at").set_value(0.99).run()
    assert at.session_state["result"].config.cluster.near_duplicates == 0.99
    ws = Workspace.at(app.workspace_dir(at))
    saved = ws.dataset_state(at.session_state["dataset_id"]).settings
    assert saved["near_duplicates_on"] is True and saved["near_duplicates_at"] == 0.99
