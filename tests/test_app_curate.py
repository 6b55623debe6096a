"""Curating in the app (issue 15): move and tag what a search finds, split a cluster, a codebook.

AppTest over the real pages with the fake word embedder (tests/conftest.py); what a user sees:
the clusters table, the edit log's lines, the errors, and the downloaded CSV's columns.
"""

from __future__ import annotations

import io
import re

import pandas as pd
from streamlit.testing.v1 import AppTest

from tests.test_app import (
    assert_healthy,
    cluster_table,
    errors,
    expander,
    merge,
    reading,
    run_clustering,
    survey_csv,
    texts,
    topic_csv,
    upload,
)


def explore_topics(app) -> AppTest:
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    return at.switch_page("pages/explore.py").run()


def found_form(at: AppTest, field: str):
    """A widget of the "Move or tag" forms under the search (keys end with a tag of the view)."""
    (widget,) = [
        w for w in at.get(field[0]) if (w.key or "").startswith("found:") and w.key.endswith(field[1])
    ]
    return widget


def press(at: AppTest, label: str, prefix: str) -> AppTest:
    (button,) = [b for b in at.button if b.label == label and (b.key or "").find(prefix) >= 0]
    return button.click().run()


def search(at: AppTest, word: str) -> int:
    at.text_input(key="search_text").input(word).run()
    (line,) = [t for t in texts(at) if t.startswith(f"Search '{word}'")]
    return int(re.search(r": ([\d,]+) match", line).group(1).replace(",", ""))


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    """The one table on the page with this column (AppTest does not give a dataframe its key)."""
    (found,) = [d.value for d in at.dataframe if column in d.value.columns]
    return found


def exported(app, at: AppTest) -> pd.DataFrame:
    at.switch_page("pages/export.py").run()
    assert_healthy(at)
    return pd.read_csv(io.BytesIO(app.downloaded(at, "dl_csv")), keep_default_na=False)


def test_moving_what_a_search_finds_to_a_new_cluster_and_tagging_it_are_edits_that_export(app):
    at = explore_topics(app)
    found = search(at, "refund")
    at.session_state["found_panel"] = True  # the user opens "Move or tag the texts the search found"
    at.run()
    found_form(at, ("selectbox", ":to")).set_value("new")
    found_form(at, ("text_input", ":new_name")).input("Refunds")
    at = press(at, "Move", "found:")
    assert_healthy(at)
    table = cluster_table(at).set_index("label")
    assert table.loc["Refunds", "size"] == found  # every row with "refund", no other
    assert any(t.startswith("✓") and "Refunds" in t for t in texts(at))

    # a tag with the export's separator is refused, and nothing is saved
    search(at, "refund")
    found_form(at, ("text_input", ":tag_name")).input("urgent; now")
    at = press(at, "Add tag", "found:")
    assert any("cannot contain ';'" in e for e in errors(at))
    # a tag that starts like a formula is kept as typed, and neutralised in the download
    found_form(at, ("text_input", ":tag_name")).input("=HYPERLINK(1)")
    at = press(at, "Add tag", "found:")
    assert_healthy(at)
    assert cluster_table(at).set_index("label").loc["Refunds", "tags"] == f"=HYPERLINK(1): {found}"
    rows = exported(app, at)
    tagged = rows[rows["tags"] != ""]
    assert len(tagged) == found and set(tagged["tags"]) == {"'=HYPERLINK(1)"}
    assert set(tagged["cluster_label"]) == {"Refunds"}

    # undo takes back the tag, then the move, one at a time
    at.switch_page("pages/explore.py").run()
    at.session_state["edit_log"] = True
    at.run()
    at.button(key="undo").click().run()
    assert "tags" not in cluster_table(at).columns
    at.button(key="undo").click().run()
    assert "Refunds" not in cluster_table(at)["label"].tolist()


def test_ticked_rows_move_to_another_cluster_and_a_gone_target_is_said(app):
    at = explore_topics(app)
    before = cluster_table(at).set_index("id")["size"]
    reading(at).set_value(0).run()
    (rows,) = [d for d in at.dataframe if (d.key or "").startswith("read_rows:")]
    at.session_state[rows.key] = {"selection": {"rows": [0, 1], "columns": []}}
    at.run()
    (to,) = [s for s in at.selectbox if (s.key or "").startswith("ticked:") and s.key.endswith(":to")]
    to.set_value(1)
    at = press(at, "Move", "ticked:")
    assert_healthy(at)
    after = cluster_table(at).set_index("id")["size"]
    assert after[0] == before[0] - 2 and after[1] == before[1] + 2


def test_a_split_gives_named_pieces_and_survives_a_rerun(app):
    at = explore_topics(app)
    before = len(cluster_table(at)[cluster_table(at)["id"] >= 0])
    merge(at, [0, 1], "Two topics")
    assert len(cluster_table(at)[cluster_table(at)["id"] >= 0]) == before - 1
    reading(at).set_value(0).run()
    (how,) = [r for r in at.radio if (r.key or "").startswith("split:")]
    how.set_value("n")
    (pieces,) = [n for n in at.number_input if (n.key or "").startswith("split:") and n.key.endswith(":n")]
    pieces.set_value(2)
    at = press(at, "Split", "split:")
    assert_healthy(at)
    table = cluster_table(at)
    assert len(table[table["id"] >= 0]) == before
    assert "Two topics" not in table["label"].tolist()  # each piece has its own keyword label
    assert any(t.startswith("✓") and "split" in t.lower() for t in texts(at))


CODEBOOK = (
    "Billing: money matters | refund charged invoice | payment subscription price\n"
    "Crashes | crash freeze bug | screen restart closes\n"
    "Login | login password reset | account locked code\n"
)


def test_a_codebook_codes_the_texts_with_a_live_threshold_and_exports_its_columns(app):
    at = explore_topics(app)
    at.session_state["codebook_panel"] = True
    at.run()
    (box,) = [t for t in at.text_area if (t.key or "").startswith("codebook_text:")]
    box.input("Billing\nbilling")  # the same name twice: refused, nothing saved
    at.button(key="codebook_use").click().run()
    assert any("more than once: 'Billing' (line 1) and 'billing' (line 2)" in e for e in errors(at))
    assert not [d for d in at.dataframe if "category" in d.value.columns]

    (box,) = [t for t in at.text_area if (t.key or "").startswith("codebook_text:")]
    box.input(CODEBOOK)
    at.button(key="codebook_use").click().run()
    assert_healthy(at)
    assert expander(at, "Codebook: your own categories").proto.expanded
    preview = table_with(at, "category")
    assert preview["category"].tolist() == ["Billing", "Crashes", "Login", "no category"]
    assert any(re.search(r"texts matched a category \(threshold -?[\d.]+, automatic\)", t) for t in texts(at))
    assert preview["rows"].sum() == 120 and preview["rows"].iloc[:3].min() > 0
    # the praise texts have no category of their own: their cluster is what the codebook misses
    missed = table_with(at, "share_of_cluster")
    assert missed["rows"].iloc[0] >= 20

    (slider,) = [s for s in at.slider if (s.key or "").startswith("codebook_threshold:")]
    slider.set_value(1.0).run()
    preview = table_with(at, "category")
    assert preview["rows"].iloc[-1] == 120  # nothing reaches a cosine of 1
    assert any("texts matched a category (threshold 1.00, set)" in t for t in texts(at))

    slider = [s for s in at.slider if (s.key or "").startswith("codebook_threshold:")][0]
    slider.set_value(-1.0).run()  # every text gets its closest category
    rows = exported(app, at)
    assert list(rows.columns[-2:]) == ["category", "category_score"]
    assert set(rows["category"]) == {"Billing", "Crashes", "Login"}
    assert rows["category_score"].between(-1, 1).all()


def test_reading_a_cluster_shows_how_telling_its_keywords_are(app):
    at = explore_topics(app)
    reading(at).set_value(0).run()
    shares = table_with(at, "in this cluster")
    assert len(shares) >= 2 and shares["in this cluster"].iloc[0] > shares["in the other clusters"].iloc[0]
    assert shares[["in this cluster", "in the other clusters"]].stack().between(0, 1).all()


def test_rows_ticked_before_a_filter_are_not_moved_after_it(app):
    """Ticks are positions in the listed rows: once a filter lists other rows, the ticks (and
    the form acting on them) go, so a move never takes texts the user did not tick."""
    at = upload(app.open(), "survey.csv", survey_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    reading(at).set_value(0).run()
    (rows,) = [d for d in at.dataframe if (d.key or "").startswith("read_rows:")]
    at.session_state[rows.key] = {"selection": {"rows": [0, 1], "columns": []}}
    at.run()
    assert [s for s in at.selectbox if (s.key or "").startswith("ticked:")]
    at.selectbox(key="filter_column").set_value("channel").run()
    at.multiselect(key="filter_values:channel").set_value(["app"]).run()
    at.button(key="filter_apply").click().run()
    assert_healthy(at)
    assert not [s for s in at.selectbox if (s.key or "").startswith("ticked:")]
