"""Filters, breakdowns and trends over a labeled table (pipeline/facets.py), on tables built here."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline import InputError
from pipeline import facets as f


def labeled(columns: dict, ids: list, labels: dict[int, str] | None = None) -> pd.DataFrame:
    """A table like Result.table(): the given columns plus cluster_id (None: no text) and label."""
    labels = labels or {}
    frame = pd.DataFrame(columns)
    frame["cluster_id"] = pd.array(ids, dtype="Int64")
    frame["cluster_label"] = pd.array(
        [None if i is None else labels.get(i, "Unclustered" if i == -1 else f"c{i}") for i in ids],
        dtype="string",
    )
    return frame


def contingency(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """The residuals of the value x cluster table, computed the textbook way on a dense table."""
    rows = table[table["cluster_id"].notna()]
    observed = pd.crosstab(rows[column].fillna(f.MISSING), rows["cluster_id"]).astype(float)
    n = observed.to_numpy().sum()
    r = observed.sum(axis=1).to_numpy()[:, None]
    c = observed.sum(axis=0).to_numpy()[None, :]
    expected = r * c / n
    residual = (observed - expected) / np.sqrt(expected)  # Pearson's
    return residual.stack().rename("residual").reset_index().rename(columns={column: "value"})


# ----------------------------------------------------------------------------- hostile input first


def test_unknown_column_is_an_input_error_listing_the_columns():
    table = labeled({"channel": ["email", "app"]}, [0, 1])
    for call in (
        lambda: f.breakdown(table, "chanel"),
        lambda: f.trends(table, "chanel"),
        lambda: f.filter_mask(table, [f.CategoryFilter("chanel", ("email",))]),
    ):
        with pytest.raises(InputError) as caught:
            call()
        error = caught.value
        assert error.message.startswith("no column named 'chanel'; the table has: 'channel', 'cluster_id'")
        assert error.hint == "pick one of those columns (names are case-sensitive)"
    assert f.column_position(table, "channel") == 0


def test_a_range_that_holds_nothing_is_refused():
    with pytest.raises(InputError) as caught:
        f.NumberFilter("score", 5, 3)
    assert caught.value.stage == "filter"
    assert caught.value.message == "the range 5 to 3 of 'score' holds nothing: its start is after its end"
    assert caught.value.hint == "swap the two ends"
    with pytest.raises(InputError, match="2024-03-01 to 2024-01-01 of 'date' holds nothing"):
        f.DateFilter("date", "2024-03-01", dt.date(2024, 1, 1))
    with pytest.raises(InputError, match="'score' is not a number: 'lots'"):
        f.NumberFilter("score", "lots")
    with pytest.raises(InputError, match="not a date: 'soon'"):
        f.DateFilter("date", start="soon")
    with pytest.raises(InputError, match="has no value picked"):
        f.CategoryFilter("channel", ())


def test_a_range_filter_on_a_column_without_numbers_or_dates_says_so():
    table = labeled({"channel": ["email", "app", ""]}, [0, 1, 1])
    with pytest.raises(InputError) as caught:
        f.filter_mask(table, [f.NumberFilter("channel", 1, 2)])
    assert caught.value.message == "'channel' holds no numbers, so a range of numbers cannot filter it"
    with pytest.raises(InputError) as caught:
        f.filter_mask(table, [f.DateFilter("channel", start="2024-01-01")])
    assert caught.value.message == (
        "no value of 'channel' reads as a date (found e.g. 'email', 'app'), so a date range cannot filter it"
    )
    assert caught.value.stage == "filter"


def test_a_column_with_one_value_gives_a_trivial_breakdown_without_nan():
    table = labeled({"plan": ["pro"] * 6, "text": list("abcdef")}, [0, 0, 1, 1, -1, None])
    found = f.breakdown(table, "plan")
    assert list(found.frame.columns) == list(f.BREAKDOWN_COLUMNS)
    assert found.frame["lift"].tolist() == [1.0, 1.0, 1.0]
    assert found.frame["residual"].tolist() == [0.0, 0.0, 0.0]
    assert np.isfinite(found.frame[["share_of_value", "share_overall", "lift", "residual"]].to_numpy()).all()
    assert found.notes == (
        "'plan' has one value (pro) in the rows counted: there is nothing to compare (every lift is 1)",
    )
    assert f.over_represented(found.frame, "pro").empty
    assert f.describe_over_represented(found.frame, "pro") == "pro: no cluster stands out"
    assert f.column_kind(table["plan"]) == "category"
    assert f.describe_column(table, "plan").notes == ("'plan' has one value only",)


def test_one_cluster_gives_residuals_of_zero():
    table = labeled({"channel": ["email", "app", "app"]}, [0, 0, 0])
    frame = f.breakdown(table, "channel").frame
    assert frame["residual"].tolist() == [0.0, 0.0] and frame["lift"].tolist() == [1.0, 1.0]


def test_all_empty_dates_are_a_clear_error():
    table = labeled({"created": ["", None, "  "]}, [0, 1, 1])
    with pytest.raises(InputError) as caught:
        f.trends(table, "created")
    assert caught.value.stage == "trends"
    assert caught.value.message == "the column 'created' is empty: no row has a date"
    assert caught.value.hint == "pick a column that holds dates (e.g. 2024-01-31)"
    assert f.column_kind(table["created"]) == "empty"


def test_a_column_of_no_dates_names_what_it_found():
    table = labeled({"created": ["soon", "soon", "n/a", "May", "1.5"]}, [0, 1, 1, 0, 0])
    with pytest.raises(InputError) as caught:
        f.check_dates(table, "created", flag="--time-column")
    assert caught.value.message == "no value of 'created' reads as a date (found e.g. 'soon', 'n/a', 'May')"
    assert "2024-01-31, 31/01/2024 or Jan 31 2024" in caught.value.hint


def test_mixed_date_formats_are_read_and_ambiguity_said():
    series = pd.Series(
        [
            "2024-01-05",
            "05/01/2024",
            "Jan 5 2024",
            "5 January 2024",
            "2024-01-05T10:00:00+02:00",
            "2024-01-05T23:30:00-05:00",
            "13/01/2024",
            "",
            "soon",
        ],
        dtype="str",
    )
    dates = f.parse_dates(series, column="created")
    days = [None if np.isnat(v) else str(v)[:10] for v in dates.values]
    # 13/01/2024 can only be day first, so 05/01/2024 is too; a time with a zone is taken in UTC
    assert days == ["2024-01-05"] * 5 + ["2024-01-06", "2024-01-13", None, None]
    assert str(dates.values[4]) == "2024-01-05T08:00:00" and str(dates.values[5]) == "2024-01-06T04:30:00"
    assert (dates.missing, dates.unparsed, dates.examples, dates.dayfirst) == (1, 1, ("soon",), True)
    assert dates.notes == (
        "dates like '05/01/2024' in 'created' are read day first (5 January 2024): as '13/01/2024' in "
        "the same column can only be day first",
    )

    ambiguous = pd.Series(["05/01/2024", "2024-02-01", "06/01/2024"], dtype="str")
    dates = f.parse_dates(ambiguous, column="created")
    assert str(dates.values[0])[:10] == "2024-05-01" and not dates.dayfirst
    assert dates.notes == (
        "dates like '05/01/2024' in 'created' are read month first (1 May 2024): no date of the column "
        "says otherwise (as 13/01/2024 would)",
    )
    assert str(f.parse_dates(ambiguous, dayfirst=True).values[0])[:10] == "2024-01-05"

    both = pd.Series(["13/01/2024", "01/13/2024", "05/01/2024"], dtype="str")
    dates = f.parse_dates(both, column="created")
    assert [str(v)[:10] for v in dates.values] == ["2024-01-13", "2024-01-13", "2024-05-01"]
    assert dates.notes == (
        "'created' has dates that are day first ('13/01/2024') and dates that are month first "
        "('01/13/2024'); each of those is read as it can only be, and dates like '05/01/2024' month first",
    )


def test_implausible_dates_and_words_are_not_dates():
    series = pd.Series(["0001-01-01", "9999-12-31", "May", "Monday", "2024-03-01"], dtype="str")
    dates = f.parse_dates(series)
    assert np.isnat(dates.values[:4]).all() and str(dates.values[4])[:10] == "2024-03-01"
    assert dates.unparsed == 4


def test_dates_from_excel_and_parquet_types():
    naive = pd.Series(pd.to_datetime(["2024-01-05 10:00", None]))
    aware = pd.Series(pd.to_datetime(["2024-01-05 23:30"]).tz_localize("America/New_York"))
    assert str(f.parse_dates(naive).values[0]) == "2024-01-05T10:00:00" and f.parse_dates(naive).missing == 1
    assert str(f.parse_dates(aware).values[0]) == "2024-01-06T04:30:00"  # in UTC
    assert f.column_kind(naive) == "date"
    mixed = pd.Series([dt.datetime(2024, 1, 5), "2024-01-06", dt.date(2024, 1, 7)], dtype=object)
    assert [str(v)[:10] for v in f.parse_dates(mixed).values] == ["2024-01-05", "2024-01-06", "2024-01-07"]


def test_ten_thousand_categories_show_the_top_ones_and_count_the_rest():
    rng = np.random.default_rng(0)
    n = 30_000
    customers = np.array([f"C{i:05d}" for i in range(10_000)])[rng.integers(0, 10_000, n)]
    customers[:300] = "C-big"
    table = labeled({"customer": customers}, rng.integers(-1, 20, n).tolist())
    found = f.breakdown(table, "customer", top=30)
    assert found.values == len(set(customers)) and found.hidden == found.values - 30
    assert found.frame["value"].nunique() == 30 and "C-big" in set(found.frame["value"])
    assert found.notes[-1] == f"showing the 30 values with most rows; {found.hidden:,} more values are hidden"
    assert found.rows == n
    assert f.breakdown(table, "customer").frame["value"].nunique() == found.values  # all, for files
    values, hidden = f.top_values(table, "customer", top=5)
    assert values["value"].iloc[0] == "C-big" and values["rows"].iloc[0] >= 300
    assert hidden == found.values - 5
    assert f.column_kind(table["customer"]) == "category"


def test_missing_values_are_a_value_of_their_own():
    table = labeled({"channel": ["email", None, "", "  ", "app", "email"]}, [0, 0, 1, 1, 0, None])
    found = f.breakdown(table, "channel")
    assert found.frame["value"].tolist() == ["app", "email", f.MISSING, f.MISSING]
    assert found.missing == 3 and found.rows == 5
    assert found.notes == ("3 rows have no value in 'channel'; they are counted as '(missing)'",)
    keep = f.filter_mask(table, [f.CategoryFilter("channel", (f.MISSING, "app"))])
    assert keep.tolist() == [False, True, True, True, True, False]
    assert f.CategoryFilter("channel", ("",)).values == (f.MISSING,)


# ----------------------------------------------------------------------------- column kinds


@pytest.mark.parametrize(
    "values, kind",
    [
        (["1", "2.5", "1,234", "-3", ""], "number"),
        (["1", "2", "3", "4", "n/a"], "number"),  # 80% are numbers
        (["2024-01-05", "05/01/2024", "Jan 5 2024", "2024-02-01", "2024-02-02"], "date"),
        (["email", "app", "email", "phone", ""], "category"),
        (["True", "False"], "category"),
        (["The app crashes every time I open the settings page, please fix it"] * 3, "text"),
        ([f"T-{i:03d}" for i in range(60)], "text"),  # ids: a value per row
        (["", "  ", None], "empty"),
        (["Monday", "Tuesday", "May"], "category"),  # words are not dates
    ],
)
def test_column_kinds(values, kind):
    assert f.column_kind(pd.Series(values, dtype="str")) == kind


def test_column_kinds_of_typed_columns():
    assert f.column_kind(pd.Series([1.5, 2.0, None])) == "number"
    assert f.column_kind(pd.Series([True, False])) == "category"
    assert f.column_kind(pd.Series([], dtype="str")) == "empty"
    assert f.column_kind(pd.Series([None, None], dtype=object)) == "empty"


def test_describe_columns_skips_the_cluster_columns_and_the_text():
    table = labeled(
        {
            "comment": ["refund please", "app crashed", "love it"],
            "score": ["1", "5", ""],
            "created": ["2024-01-05", "2024-03-01", "soon"],
            "channel": ["email", "app", "email"],
        },
        [0, 1, 1],
    )
    infos = {i.name: i for i in f.describe_columns(table, exclude=["comment"])}
    assert list(infos) == ["score", "created", "channel"]
    assert (infos["score"].kind, infos["score"].low, infos["score"].high, infos["score"].missing) == (
        "number",
        1.0,
        5.0,
        1,
    )
    assert infos["created"].kind == "category"  # 2 dates of 3 values: not most
    assert (infos["channel"].kind, infos["channel"].distinct, infos["channel"].rows) == ("category", 2, 3)
    table.loc[2, "created"] = "2024-02-10"
    created = f.describe_column(table, "created")
    assert (created.kind, created.low, created.high) == ("date", dt.date(2024, 1, 5), dt.date(2024, 3, 1))


# ----------------------------------------------------------------------------- filters


def test_filters_keep_rows_and_describe_themselves():
    table = labeled(
        {
            "channel": ["email", "app", "email", "phone", None],
            "score": ["1", "3", "5", "", "4.5"],
            "created": ["2024-01-01", "2024-03-31 23:59", "2024-04-01", "2024-02-10", ""],
        },
        [0, 1, 0, -1, None],
    )
    before = table.copy()
    channel = f.CategoryFilter("channel", ("email", "app"))
    score = f.NumberFilter("score", 3, 5)
    created = f.DateFilter("created", dt.date(2024, 1, 1), "2024-03-31")
    assert f.filter_mask(table, [channel]).tolist() == [True, True, True, False, False]
    assert f.filter_mask(table, [score]).tolist() == [False, True, True, False, True]  # ends kept, blank not
    assert f.filter_mask(table, [created]).tolist() == [True, True, False, True, False]  # the end day whole
    assert f.filter_mask(table, [channel, score, created]).tolist() == [False, True, False, False, False]
    assert f.filter_mask(table, []).all()
    assert f.apply_filters(table, [channel, score]).index.tolist() == [1, 2]
    pd.testing.assert_frame_equal(table, before)  # nothing changed in place
    assert channel.describe() == "channel: email, app"
    assert f.CategoryFilter("channel", ("a", "b", "c", "d", "e")).describe() == "channel: a, b, c and 2 more"
    assert score.describe() == "score: 3 to 5"
    assert f.NumberFilter("score", low=2.5).describe() == "score: at least 2.5"
    assert f.NumberFilter("amount", high=1_500_000).describe() == "amount: at most 1,500,000"
    assert created.describe() == "created: 2024-01-01 to 2024-03-31"
    assert f.DateFilter("created", end="2024-03-31").describe() == "created: until 2024-03-31"


def test_category_values_compare_as_the_cell_text():
    table = labeled({"plan": [" pro", "pro ", 3.0, "3", 2.5]}, [0, 0, 0, 0, 0])
    assert f.filter_mask(table, [f.CategoryFilter("plan", ("pro",))]).tolist() == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert f.filter_mask(table, [f.CategoryFilter("plan", (3,))]).tolist() == [
        False,
        False,
        True,
        True,
        False,
    ]


def test_filtered_clusters_recount_sizes_and_shares():
    table = labeled({"channel": ["email", "email", "app", "app", "app", "email"]}, [0, 1, 1, -1, 1, None])
    mask = f.filter_mask(table, [f.CategoryFilter("channel", ("email",))])
    clusters = f.filtered_clusters(table, mask)
    assert list(clusters.columns) == ["id", "label", "rows", "share", "rows_all", "share_all"]
    assert clusters["id"].tolist() == [0, 1, -1]  # as Result.clusters(): the unclustered last
    assert clusters["label"].tolist() == ["c0", "c1", "Unclustered"]
    assert clusters["rows"].tolist() == [1, 1, 0]  # the row without a text is in no cluster
    assert clusters["share"].tolist() == [0.5, 0.5, 0.0]
    assert clusters["rows_all"].tolist() == [1, 3, 1] and clusters["share_all"].tolist() == [0.2, 0.6, 0.2]
    assert f.filtered_clusters(table)["rows"].tolist() == [1, 3, 1]


# ----------------------------------------------------------------------------- breakdowns


def over_represented_table() -> pd.DataFrame:
    """Email users write about refunds (cluster 0) three times as often as everyone does."""
    channel = ["email"] * 100 + ["app"] * 200 + ["phone"] * 100
    ids = [0] * 45 + [1] * 55 + [0] * 10 + [1] * 190 + [0] * 5 + [1] * 95
    return labeled({"channel": channel}, ids, {0: "refund", 1: "crash"})


def test_breakdown_finds_the_over_represented_cluster():
    table = over_represented_table()
    found = f.breakdown(table, "channel")
    frame = found.frame
    assert list(frame.columns) == list(f.BREAKDOWN_COLUMNS)
    email = frame[frame["value"] == "email"].set_index("cluster_id")
    assert email.loc[0, "rows"] == 45 and email.loc[0, "share_of_value"] == 0.45
    assert email.loc[0, "share_overall"] == 0.15 and email.loc[0, "lift"] == pytest.approx(3.0)
    assert email.loc[0, "residual"] > 2 and email.loc[1, "residual"] < -2
    expected = contingency(table, "channel").set_index(["value", "cluster_id"])["residual"]
    got = frame.set_index(["value", "cluster_id"])["residual"]
    assert np.allclose(got.sort_index(), expected.loc[got.sort_index().index], atol=1e-4)
    top = f.over_represented(frame, "email")
    assert top["cluster_label"].tolist() == ["refund"]
    assert f.describe_over_represented(frame, "email") == "email: 'refund' (3.0x)"
    assert (
        f.describe_over_represented(frame, "app") == "app: no cluster stands out"
    )  # Pearson residual 1.5: within chance
    # phone: 95 crash reports of 100 against 85% overall, a Pearson residual of 1.1: within chance
    assert found.over_represented("phone")["cluster_id"].tolist() == []


def test_breakdown_without_association_has_small_residuals():
    channel = ["email"] * 100 + ["app"] * 100
    ids = ([0] * 30 + [1] * 70) * 2
    frame = f.breakdown(labeled({"channel": channel}, ids), "channel").frame
    assert frame["lift"].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert (frame["residual"].abs() < 1e-9).all()
    assert f.over_represented(frame, "email").empty


def test_breakdown_sorts_by_value_then_lift():
    table = labeled(
        {"stars": ["10", "2", "2", "2", "10", "10", "", "2"]},
        [0, 0, 1, 1, 0, 1, -1, -1],
    )
    frame = f.breakdown(table, "stars").frame
    assert frame["value"].tolist() == ["2"] * 3 + ["10"] * 2 + [f.MISSING]  # numbers sort as numbers
    for _, rows in frame.groupby("value", sort=False):
        assert rows["lift"].tolist() == sorted(rows["lift"], reverse=True)
    words = f.breakdown(labeled({"c": ["b", "a", "B"]}, [0, 1, 0]), "c").frame
    assert words["value"].tolist() == ["B", "a", "b"]


def test_breakdown_counts_the_unclustered_and_skips_rows_without_text():
    table = labeled({"channel": ["email", "email", "app", "app"]}, [-1, 0, 0, None])
    found = f.breakdown(table, "channel")
    assert found.rows == 3
    assert set(found.frame["cluster_id"]) == {-1, 0}
    assert found.frame.loc[found.frame["cluster_id"] == -1, "cluster_label"].tolist() == ["Unclustered"]


def test_breakdown_of_filtered_rows_and_of_none():
    table = over_represented_table()
    mask = f.filter_mask(table, [f.CategoryFilter("channel", ("email", "phone"))])
    found = f.breakdown(table, "channel", mask=mask)
    assert found.rows == 200 and set(found.frame["value"]) == {"email", "phone"}
    empty = f.breakdown(table, "channel", mask=np.zeros(len(table), dtype=bool))
    assert empty.frame.empty and list(empty.frame.columns) == list(f.BREAKDOWN_COLUMNS)
    assert empty.notes == ("no rows to count: no row with a text is kept by the filters",)


# ----------------------------------------------------------------------------- trends


def test_trends_list_every_period_and_cluster_with_zeros():
    created = ["2024-03-04", "2024-03-06", "2024-03-20", "2024-05-15", "2024-05-16", "later", ""]
    table = labeled({"created": created}, [0, 1, 0, 1, 1, 0, 1])
    found = f.trends(table, "created")
    assert found.period == "week"
    frame = found.frame
    assert list(frame.columns) == list(f.TRENDS_COLUMNS)
    weeks = sorted(set(frame["period"]))
    assert weeks[0] == "2024-03-04" and weeks[-1] == "2024-05-13"
    assert all(dt.date.fromisoformat(w).weekday() == 0 for w in weeks)  # Mondays
    assert len(weeks) == 11 and len(frame) == 22  # every week, both clusters
    assert frame[["period", "cluster_id"]].values.tolist() == sorted(
        frame[["period", "cluster_id"]].values.tolist()
    )
    first = frame[frame["period"] == "2024-03-04"].set_index("cluster_id")["rows"]
    assert first.to_dict() == {0: 1, 1: 1}
    assert frame["rows"].sum() == 5 and (frame["rows"] == 0).sum() == 22 - 4
    assert (found.rows, found.without_date) == (5, 2)
    assert found.notes == ("2 rows have no date in 'created' (e.g. 'later'); they are left out",)
    assert (found.first, found.last) == (dt.date(2024, 3, 4), dt.date(2024, 5, 16))


@pytest.mark.parametrize(
    "last, period",
    [
        ("2024-01-31", "day"),
        ("2024-03-01", "day"),
        ("2024-09-01", "week"),
        ("2026-12-31", "month"),
        ("2050-01-01", "year"),
    ],
)
def test_period_is_chosen_from_the_span(last, period):
    table = labeled({"created": ["2024-01-01", last]}, [0, 0])
    found = f.trends(table, "created")
    assert found.period == period
    assert found.frame["period"].iloc[0] == "2024-01-01"


def test_periods_start_on_their_first_day():
    values = np.array(["2024-02-29T13:00", "2024-03-03", "2024-03-04"], dtype="datetime64[s]")
    assert [str(d) for d in f.period_starts(values, "week")] == ["2024-02-26", "2024-02-26", "2024-03-04"]
    assert [str(d) for d in f.period_starts(values, "month")] == ["2024-02-01", "2024-03-01", "2024-03-01"]
    table = labeled({"created": ["2024-01-31", "2024-03-02"]}, [0, 0])
    found = f.trends(table, "created", period="month")
    assert found.frame["period"].tolist() == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert found.frame["rows"].tolist() == [1, 0, 1]
    with pytest.raises(InputError, match="unknown period 'fortnight'"):
        f.trends(table, "created", period="fortnight")


def test_trends_in_one_period_say_there_is_nothing_to_compare():
    table = labeled({"created": ["2024-01-05", "2024-01-05 10:00"]}, [0, 1])
    found = f.trends(table, "created")
    assert found.frame["period"].tolist() == ["2024-01-05", "2024-01-05"]
    assert found.notes == ("every date falls in one day (2024-01-05): nothing to compare over time",)
    assert f.movers(found.frame).empty


def test_movers_rank_growth_with_a_minimum_count():
    rows = []
    for cid, first, last in [(0, 20, 50), (1, 40, 10), (2, 0, 15), (3, 1, 4), (4, 12, 0), (5, 30, 30)]:
        rows += [
            ("2024-01-01", cid, f"c{cid}", first),
            ("2024-01-08", cid, f"c{cid}", 7),
            ("2024-01-15", cid, f"c{cid}", last),
        ]
    frame = pd.DataFrame(rows, columns=list(f.TRENDS_COLUMNS))
    moved = f.movers(frame, min_rows=10)
    assert list(moved.columns) == list(f.MOVERS_COLUMNS)
    assert moved["cluster_id"].tolist() == [0, 2, 1, 4]  # grew most first, then shrank most; 3 is tiny
    by_id = moved.set_index("cluster_id")
    assert by_id.loc[0, ["first_rows", "last_rows", "change"]].tolist() == [20, 50, 30]
    assert by_id.loc[0, "relative_change"] == 1.5 and by_id.loc[0, "direction"] == "grew"
    assert np.isnan(by_id.loc[2, "relative_change"]) and by_id.loc[2, "note"] == "new"
    assert by_id.loc[4, "note"] == "gone" and by_id.loc[1, "direction"] == "shrank"
    assert f.movers(frame, min_rows=10, by="relative")["cluster_id"].tolist() == [2, 0, 4, 1]
    assert f.movers(frame, min_rows=1, top=1)["cluster_id"].tolist() == [0, 1]
    assert (f.change_text(20, 50), f.change_text(0, 15), f.change_text(12, 0)) == (
        "+30 (+150%)",
        "+15 (new)",
        "-12 (gone)",
    )


def test_odd_cells_are_values_too():
    lists = labeled({"tags": [["a", "b"], ["a", "b"], None]}, [0, 1, 1])
    assert f.breakdown(lists, "tags").frame["value"].tolist() == ["['a', 'b']", "['a', 'b']", f.MISSING]
    long = labeled({"when": ["x" * 100, "soon"]}, [0, 0])
    with pytest.raises(InputError) as caught:
        f.trends(long, "when")
    assert f"'{'x' * 37}...'" in caught.value.message  # examples are cut short


def test_the_benchmark_runs_on_a_small_table():
    from pipeline import bench_facets

    rows = bench_facets.bench_facets(rows=3000, repeats=1)
    assert [r["step"] for r in rows][:3] == [
        "describe columns (kinds, ranges)",
        "category filter + cluster table",
        "number range filter",
    ]
    assert all(r["goal_met"] for r in rows)
    assert bench_facets.markdown(rows).startswith("| step (3,000 rows) | median s |")


def test_movers_that_only_grew_list_no_empty_row():
    frame = pd.DataFrame(
        {
            "period": ["2024-01-01"] * 2 + ["2024-01-08"] * 2,
            "cluster_id": [0, 1, 0, 1],
            "cluster_label": ["a", "b", "a", "b"],
            "rows": [0, 5, 20, 5],
        }
    )
    moved = f.movers(frame, min_rows=10)
    assert moved["cluster_id"].tolist() == [0] and moved["note"].tolist() == ["new"]
