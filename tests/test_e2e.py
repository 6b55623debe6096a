"""End to end, in a real browser: what an analyst does, against ``streamlit run app.py``.

Debian's Chromium (/usr/bin/chromium) driven by Playwright; the real packaged model, no
fakes. One server serves both tests, each test in its own workspace(s). Run only these
with ``pytest -m e2e``; .ci/run installs Chromium when it is missing.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import OUTPUT_COLUMNS
from pipeline.bench_browser import AppPage
from tests.browser import CHROMIUM, chromium_available, launch_chromium, streamlit_server

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect

pytestmark = pytest.mark.e2e

FORMULA = "=1+2"
SCRIPT = "<script>alert('xss')</script> the invoice was wrong"
MARKDOWN = "**bold** [click me](http://example.com) _refund_ please"
REQUIRED_COLUMNS = ["cluster_id", "cluster_label", "cluster_probability", "raw_cluster_id", "x", "y"]
CLUSTERING_S = 150  # first run loads the model and compiles UMAP: slow on a 2-core machine
STEP_S = 30
# records the transition of every element a rerun marks stale (dimmed until redrawn)
STALE_RECORDER_JS = """() => {
  window.__stale = [];
  new MutationObserver((changes) => {
    for (const c of changes) if (c.target.getAttribute('data-stale') === 'true')
      window.__stale.push(getComputedStyle(c.target).transitionDuration);
  }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-stale'] });
}"""
# a loaded 2-core machine can take longer than Playwright's 5 s default to draw a chart
expect.set_options(timeout=STEP_S * 1000)

THEMES = {
    "billing": (
        ["I was charged twice", "the refund never arrived", "my invoice shows the wrong price",
         "the subscription fee went up", "billing took money after I cancelled"],
        ["on my card", "this month", "for the yearly plan", "again", "without any notice"],
    ),
    "crash": (
        ["the app crashes", "the screen freezes", "it closes by itself", "the update broke it",
         "it keeps restarting"],
        ["when I open the camera", "after the latest update", "on my android phone",
         "every single time", "on startup"],
    ),
    "login": (
        ["I cannot log in", "the password reset email never comes", "my account is locked",
         "the two factor code is rejected", "sign in fails"],
        ["with my google account", "since yesterday", "on the website", "after changing my email",
         "no matter what I try"],
    ),
    "delivery": (
        ["my parcel is late", "the courier lost the package", "the delivery went to the wrong address",
         "tracking has not updated", "the box arrived damaged"],
        ["for two weeks", "again this month", "and nobody answers", "despite express shipping",
         "with items missing"],
    ),
    "praise": (
        ["I love this app", "great design and easy to use", "the best budgeting tool",
         "support was friendly and fast", "beautiful and simple"],
        ["thank you", "five stars", "keep it up", "would recommend to friends", "works perfectly"],
    ),
}  # fmt: skip


def feedback_csv(
    n_rows: int, themes: list[str], seed: int, specials: bool = True
) -> tuple[bytes, list[dict]]:
    """A feedback table: id, channel, comment (the text column), with clear themes.

    With ``specials``, row 2 is a formula, row 3 a script tag and row 4 Markdown, so they
    show in the preview (its first 50 rows)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_rows):
        theme = themes[i % len(themes)]
        starts, ends = THEMES[theme]
        comment = f"{rng.choice(starts)} {rng.choice(ends)}"
        rows.append(
            {"id": str(1000 + i), "channel": rng.choice(["email", "chat", "store"]), "comment": comment}
        )
    if specials:
        rows[1]["comment"] = FORMULA
        rows[2]["comment"] = SCRIPT
        rows[3]["comment"] = MARKDOWN
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["id", "channel", "comment"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8"), rows


def ensure_chromium() -> str | None:
    """The Chromium to drive; tries ``apt-get install chromium`` once when it is missing."""
    if not chromium_available() and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(
            "apt-get update -qq && apt-get install -y -qq chromium",
            shell=True,
            check=False,
            capture_output=True,
            timeout=600,
        )
    return CHROMIUM if chromium_available() else None


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if ensure_chromium() is None:
        pytest.skip(f"no Chromium at {CHROMIUM} and `apt-get install chromium` is not possible here")
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def app_url(browser, tmp_path_factory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("e2e")
    # as a user's server: the model loads at the first page view (conftest turns that off in here)
    with streamlit_server(
        root / "workspaces", root / "cache", env={"CLUSTERLAB_PRELOAD_MODEL": "true"}
    ) as url:
        yield url


class Session:
    """One browser tab on the app; fails the test if any dialog (e.g. an injected alert) opens."""

    def __init__(self, browser, url: str):
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        self.context.set_default_timeout(STEP_S * 1000)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.goto(url)
        expect(self.page.get_by_role("heading", name="Clusterlab")).to_be_visible()

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def upload(self, name: str, data: bytes) -> None:
        self.page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
            {"name": name, "mimeType": "text/csv", "buffer": data}
        )
        expect(self.page.get_by_role("heading", name="Preview")).to_be_visible()

    def cluster(self) -> None:
        self.page.get_by_role("button", name="Cluster the texts").click()

    def wait_clustered(self) -> str:
        done = self.page.get_by_text(re.compile(r"\d+ clusters in [\d,]+ rows"))
        expect(done).to_be_visible(timeout=CLUSTERING_S * 1000)
        return done.inner_text()

    def settle(self) -> None:
        """Wait until no script run is in progress (Streamlit's own end-to-end tests wait on this
        attribute): a click in the middle of a run's redraw can land on an element the run is
        replacing."""
        expect(self.page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")

    def open(self, title: str) -> None:
        self.page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()

    def assert_sidebar_lists_only(self, own: str, other: str) -> None:
        sidebar = self.page.get_by_test_id("stSidebarUserContent")
        expect(sidebar).to_contain_text(own)
        expect(sidebar).not_to_contain_text(other)
        datasets = sidebar.get_by_role("button", name=re.compile(r"rows$")).all_inner_texts()
        assert len(datasets) == 1 and own in datasets[0], datasets

    def assert_no_errors(self) -> None:
        assert self.page.get_by_test_id("stException").count() == 0
        assert self.page.get_by_test_id("stAlertContentError").count() == 0
        assert self.dialogs == [], f"a dialog opened: user text ran as script: {self.dialogs}"

    def close(self) -> None:
        self.context.close()


def test_upload_cluster_tune_and_download_in_a_browser(browser, app_url):
    data, rows = feedback_csv(300, list(THEMES), seed=1)
    user = Session(browser, app_url)
    try:
        page = user.page
        user.upload("feedback.csv", data)
        expect(page.get_by_text("feedback.csv: 300 rows, 3 columns")).to_be_visible()
        # user text is shown as text in the preview: the script tag is a cell, never markup
        grid = page.get_by_test_id("stDataFrame")
        expect(grid.get_by_role("gridcell", name=SCRIPT, exact=True, include_hidden=True)).to_have_count(1)
        expect(grid.get_by_role("gridcell", name=MARKDOWN, exact=True, include_hidden=True)).to_have_count(1)
        assert not page.evaluate("() => [...document.scripts].some(s => s.text.includes('xss'))")
        # the suggested text column is the one with the longest texts
        picker = page.get_by_test_id("stMultiSelect").filter(has_text="Columns with the texts")
        expect(picker).to_contain_text("comment")

        user.cluster()
        summary = user.wait_clustered()
        n_clusters = int(summary.split()[0])
        assert n_clusters >= 3, summary
        user.assert_no_errors()

        user.open("Explore")
        expect(page.get_by_role("heading", name=re.compile(r"^\d+ clusters$"))).to_be_visible()
        chart = page.locator(".st-key-map")  # pages/ui/scatter.py: plotly.js, kept mounted
        expect(chart.locator(".js-plotly-plot")).to_be_visible()
        assert chart.locator("canvas").count() > 0, "no WebGL canvas: the map's points are not drawn"
        # the clusters' names, written at their centres (scatter.js's drawNames: elements over the
        # plot, not plotly.js annotations), as text: no markup inside a name
        names = chart.locator(".clusterlab-names .clusterlab-name")
        expect(names.first).to_be_visible()
        assert names.count() >= 2
        assert chart.locator("g.annotation").count() == 0
        assert page.evaluate(
            "() => [...document.querySelectorAll('.clusterlab-name')].every(n => n.children.length === 0)"
        )
        expect(page.get_by_text("The map could not be drawn")).to_have_count(0)

        done = page.get_by_text(re.compile(r"^Done in [\d.]+ s: \d+ clusters"))
        expect(done).to_have_count(0)  # opening Explore shows the result it has, no re-run

        # a clustering slider re-runs clustering and labeling only: embedding comes from cache
        slider = page.get_by_role("slider", name="Min cluster size (0 = automatic)")
        slider.focus()
        for _ in range(8):
            slider.press("ArrowRight")
        expect(slider).to_have_value("8")
        expect(done).to_be_visible(timeout=CLUSTERING_S * 1000)
        expect(done).to_have_text(re.compile(r"\(preprocess, embed, reduce from cache\)$"))
        expect(page.get_by_role("heading", name=re.compile(r"^\d+ clusters$"))).to_be_visible()
        user.assert_no_errors()
        # one step more: the map is updated in place (Plotly.react), not drawn again as a new graph
        graph = ".st-key-map .js-plotly-plot"
        drawn = page.evaluate(
            f"() => {{ const g = document.querySelector('{graph}'); g.__seen = true; return g.dataset.revision; }}"
        )
        page.evaluate(STALE_RECORDER_JS)
        slider.press("ArrowRight")
        expect(slider).to_have_value("9")
        page.wait_for_function(f"() => document.querySelector('{graph}').dataset.revision !== '{drawn}'")
        # what the rerun had not redrawn yet was dimmed in one step, not faded over a second
        # (ui.PAGE_CSS: each frame of a fade repaints the page in a browser without a GPU)
        stale = page.evaluate("() => window.__stale")
        assert stale and set(stale) == {"0s"}, stale
        assert page.evaluate(f"() => document.querySelector('{graph}').__seen === true")
        # WebGL drawn at the screen's pixel ratio, not plotly.js's 2x for image export (4 times the
        # pixels at every redraw and every step of a box drag)
        ratio = page.evaluate(
            f"() => {{ const c = document.querySelector('{graph} canvas.gl-canvas-context');"
            " return [c.width / c.clientWidth, window.devicePixelRatio]; }"
        )
        assert ratio[0] == pytest.approx(max(1, ratio[1]), rel=0.02)

        # a box dragged over the map lists the texts under it, with their clusters
        picked = page.get_by_text(re.compile(r"^[\d,]+ texts selected \([\d,]+ rows\) in \d+ clusters?$"))
        for attempt in range(3):  # a drag that starts while the map is still being redrawn selects nothing
            expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
            area = chart.locator(".nsewdrag").first
            expect(area).to_be_visible()
            box = area.bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.05, box["y"] + box["height"] * 0.05)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6, steps=8)
            page.mouse.move(box["x"] + box["width"] * 0.95, box["y"] + box["height"] * 0.95, steps=8)
            page.mouse.up()
            try:
                expect(picked).to_be_visible(timeout=(STEP_S if attempt == 2 else 10) * 1000)
                break
            except AssertionError:
                if attempt == 2:
                    raise
        n_texts, n_rows = (int(n.replace(",", "")) for n in re.findall(r"[\d,]+", picked.inner_text())[:2])
        assert n_texts >= 100, picked.inner_text()
        with page.expect_download() as download_info:  # the selected rows, all of them
            page.get_by_role("button", name="Download the selected rows (CSV)").click()
        selected = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text("utf-8-sig"))))
        assert len(selected) == n_rows and {"comment", "cluster_id", "cluster_label"} <= set(selected[0])
        user.assert_no_errors()

        # search a word: counted, listed, and the rest of the map faded
        n_refund = sum("refund" in r["comment"].lower() for r in rows)
        search = page.get_by_role("textbox", name="Search")
        search.fill("refund")
        search.press("Enter")
        expect(page.get_by_text(re.compile(rf"^Search 'refund': {n_refund} matches"))).to_be_visible()
        plot = ".st-key-map .js-plotly-plot"
        page.wait_for_function(f"() => document.querySelector('{plot}')?.data?.length === 2")
        traces = page.evaluate(
            f"() => document.querySelector('{plot}').data.map(t => [t.name, t.text.length])"
        )
        assert traces[0][0] == "not matching the search" and 0 < traces[1][1] <= n_refund, traces

        # curate what the search found: move it to a new cluster, then tag it (both in the edit log)
        # opening the panel reruns the page: a form filled while that run redraws it loses the click,
        # so the page is let go idle first (the benchmark's own wait)
        AppPage(page).act(page.get_by_text("Move or tag the texts the search found", exact=True).click)
        panel = page.locator('[data-testid="stExpander"]', has_text="Move or tag the texts the search found")
        expect(panel.get_by_text(re.compile(rf"\({n_refund} rows\)"))).to_be_visible()
        panel.get_by_role("textbox", name="Name of the new cluster").fill("Refund requests")
        panel.get_by_role("button", name="Move", exact=True).click()
        moved = re.compile(rf"^Search 'refund': {n_refund} matches.*all in 'Refund requests'")
        expect(page.get_by_text(moved)).to_be_visible()
        panel.get_by_role("textbox", name="Tag").fill("follow up")
        panel.get_by_role("button", name="Add tag").click()
        expect(panel.get_by_text("Tags in use: follow up")).to_be_visible()
        user.assert_no_errors()
        page.get_by_role("button", name="Clear the search").click()
        expect(page.get_by_text(re.compile(r"^Search 'refund'"))).to_have_count(0)

        # filter by a column: the counts follow, one click removes it
        n_email = sum(r["channel"] == "email" for r in rows)
        page.get_by_role("button", name="Add a filter").click()
        page.get_by_role("combobox", name="Column").click()
        page.get_by_role("option", name="channel", exact=True).click()
        page.get_by_role("combobox", name="Keep rows whose channel is").click()
        page.get_by_role("option", name=re.compile(r"^email \(")).click()
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Apply the filter").click()
        expect(page.get_by_text(re.compile(rf"^Showing {n_email} of 300 rows"))).to_be_visible()
        page.get_by_role("button", name="channel: email").click()
        expect(page.get_by_text(re.compile(r"^Showing \d+ of 300 rows"))).to_have_count(0)
        # through the selection, the search, the move and the filter the map stayed the same graph:
        # nothing that comes and goes above it moved it to a new place (a new graph, new WebGL)
        assert page.evaluate(f"() => document.querySelector('{graph}').__seen === true")

        # a breakdown by that column: a heatmap of the three channels
        shown = page.locator(graph).element_handle()
        page.get_by_role("tab", name="Breakdown").click()
        # the map went with its tab (as with Explore for another page), and plotly.js let go of
        # it: its resize listener kept every graph it drew, WebGL and all, one more per visit
        page.wait_for_function(
            "g => !g.isConnected && g.data === undefined && g._context === undefined", arg=shown
        )
        page.get_by_role("combobox", name="By the column").click()
        page.get_by_role("option", name="channel", exact=True).click()
        chart = ".st-key-breakdown_chart .js-plotly-plot"
        page.wait_for_function(f"() => document.querySelector('{chart}')?.data?.[0]?.y?.includes('email')")
        values = page.evaluate(f"() => document.querySelector('{chart}').data[0].y")
        assert sorted(values) == ["chat", "email", "store"], values
        expect(page.get_by_text(re.compile(r"^What stands out"))).to_be_visible()
        user.assert_no_errors()

        # a codebook of two categories: every text is coded (threshold -1), the export says which
        page.get_by_text("Codebook: your own categories", exact=True).click()
        book = page.locator('[data-testid="stExpander"]', has_text="Codebook: your own categories")
        book.get_by_role("textbox", name="Categories").fill(
            "Money back: refund my money | I want a refund\nThe app: the app crashes | the screen freezes"
        )
        book.get_by_role("button", name="Use these categories").click()
        expect(book.get_by_text(re.compile(r"texts matched a category"))).to_be_visible()
        slider = book.get_by_role("slider", name="Similarity threshold")
        slider.focus()
        slider.press("Home")  # -1: every text gets its closest category
        expect(book.get_by_text(re.compile(r"^300 of 300 texts matched a category"))).to_be_visible()
        user.assert_no_errors()

        user.open("Export")
        button = page.get_by_role("button", name="Table as CSV")
        expect(button).to_be_visible()
        with page.expect_download() as download_info:
            button.click()
        download = download_info.value
        assert download.suggested_filename == "feedback_clusters.csv"
        raw = Path(download.path()).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf"), "the CSV is utf-8 with a BOM, for Excel"
        table = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))

        header = list(table[0])
        # every original column kept; the edits' tags and the codebook's columns at the end
        assert header == ["id", "channel", "comment", *OUTPUT_COLUMNS, "tags", "category", "category_score"]
        refunds = [r for r in table if "refund" in r["comment"].lower()]
        assert len(refunds) == n_refund
        assert {(r["cluster_label"], r["tags"]) for r in refunds} == {("Refund requests", "follow up")}
        assert {r["category"] for r in table} <= {"Money back", "The app"} and all(
            r["category"] for r in table
        )
        assert sum(r["category"] == "Money back" for r in refunds) > n_refund / 2
        assert [c for c in header if c in REQUIRED_COLUMNS] == REQUIRED_COLUMNS
        assert len(table) == 300
        assert [r["id"] for r in table] == [r["id"] for r in rows]  # every row, in order
        expected = [r["comment"] for r in rows]
        expected[1] = "'" + FORMULA  # spreadsheet-safe: a formula is neutralised
        assert [r["comment"] for r in table] == expected
        assert [r["channel"] for r in table] == [r["channel"] for r in rows]
        ids = {int(r["cluster_id"]) for r in table}
        assert len(ids - {-1}) >= 2
        for r in table:  # every row has a text here, so every row is placed and labelled
            assert r["cluster_label"], r
            assert 0.0 <= float(r["cluster_probability"]) <= 1.0, r
            assert int(r["raw_cluster_id"]) >= -1 and math.isfinite(float(r["x"]) + float(r["y"])), r
        user.assert_no_errors()
    finally:
        user.close()


def test_two_workspaces_at_once_stay_apart(browser, app_url):
    alpha, _ = feedback_csv(90, ["billing", "crash", "login"], seed=2, specials=False)
    beta, _ = feedback_csv(80, ["delivery", "praise"], seed=3, specials=False)
    made_up = secrets.token_urlsafe(18)  # well-formed, but not issued by this server
    first = Session(browser, app_url)  # no token: the app makes a new workspace
    second = Session(browser, f"{app_url}/?ws={made_up}")
    try:
        first_token = re.search(r"[?&]ws=([\w-]+)", first.page.url).group(1)
        second_token = re.search(r"[?&]ws=([\w-]+)", second.page.url).group(1)
        assert len({first_token, second_token, made_up}) == 3
        expect(second.page.get_by_text("That workspace link is not valid")).to_be_visible()

        first.upload("alpha_survey.csv", alpha)
        second.upload("beta_tickets.csv", beta)
        first.cluster()
        second.cluster()  # both run at the same time on the one server
        assert "90 rows" in first.wait_clustered()
        assert "80 rows" in second.wait_clustered()

        for user, own, other in ((first, "alpha_survey.csv", "beta"), (second, "beta_tickets.csv", "alpha")):
            user.assert_sidebar_lists_only(own, other)
            user.page.reload()  # a new session on the same workspace lists what is on disk
            expect(user.page.get_by_role("heading", name="Clusterlab")).to_be_visible()
            user.assert_sidebar_lists_only(own, other)
            user.assert_no_errors()
    finally:
        first.close()
        second.close()


IDLE_PAGE = """<div data-testid="stApp" data-test-script-state="notRunning">
<p id="shown">drawn</p><canvas id="grid" width="40" height="20"><table><tr><td id="cell">a</td></tr></table></canvas>
<div style="position: absolute; width: 1px; height: 1px; overflow: hidden"><div id="said" aria-live="polite"></div></div>
<div id="toast" aria-live="polite" style="width: 200px"></div>
</div>"""


def test_the_benchmark_times_what_is_drawn_and_reports_fallback_content_apart(browser):
    """The benchmark's idle rule (bench_browser.INSTRUMENT_JS) in Chromium: a change inside a
    canvas (fallback content, never drawn: a data grid's cells for screen readers) waits for quiet
    but does not end the time; the canvas's own size does, like any change outside it."""

    page = browser.new_page()
    try:
        page.set_content(IDLE_PAGE)
        app = AppPage(page)
        later = "(js) => setTimeout(() => eval(js), 100)"
        fallback = app.timed(
            lambda: page.evaluate(
                later,
                "document.getElementById('shown').textContent = 'redrawn';"
                "setTimeout(() => { document.getElementById('cell').textContent = 'b'; }, 600)",
            ),
            expect_run=False,
        )
        assert 0.05 <= fallback.seconds < 0.5  # the visible change at 0.1 s ends it
        assert fallback.hidden_s >= 0.7  # the cell's change at 0.7 s is reported apart
        resized = app.timed(
            lambda: page.evaluate(
                later, "setTimeout(() => { document.getElementById('grid').width = 80; }, 600)"
            ),
            expect_run=False,
        )
        assert resized.seconds >= 0.7  # a canvas's size is drawn
        said = app.timed(
            lambda: page.evaluate(
                later,
                "document.getElementById('shown').textContent = 'again';"
                "setTimeout(() => { document.getElementById('said').textContent = '31 options'; }, 600)",
            ),
            expect_run=False,
        )
        assert said.seconds < 0.5 and said.hidden_s >= 0.7  # for screen readers only: apart
        toast = app.timed(
            lambda: page.evaluate(
                later, "setTimeout(() => { document.getElementById('toast').textContent = 'Saved'; }, 600)"
            ),
            expect_run=False,
        )
        assert toast.seconds >= 0.7  # a live region that is drawn counts
    finally:
        page.close()


def test_the_browser_composes_the_map_as_python_does(browser):
    """scatter.js's compose (the app's map) and plots.compose (the command line's figure, and
    the fallback chart) give the same figure from the same base and paint: hover texts with their
    cluster's name, colours, the faded trace of a search, hostile text still escaped."""
    import json

    import numpy as np
    import pandas as pd

    from pipeline import plots
    from pipeline.bench_browser import ROOT

    frame = pd.DataFrame(
        {
            "x": [0.5, 1.25, -2.0, 3.0, 0.0],
            "y": [1.0, -1.5, 2.25, 0.0, 4.0],
            "cluster_id": [1, -1, 0, 1, 0],
            "cluster_label": ["refunds", "", "<b>login</b>", "refunds", "<b>login</b>"],
            "text": ["charged twice", "<img src=x onerror=alert(1)>", "reset my password", "refund", "2FA"],
            "rows": [3, 1, 2, 1, 5],
            "trace": [1, -1, plots.FADED, 1, 0],
        },
        index=[7, 2, 9, 4, 0],
    )
    base, paint = plots.map_layers((frame, 6))
    as_json = [json.loads(pages_json(part)) for part in (base, paint)]
    expected = json.loads(pages_json(plots.compose(*as_json)))
    page = browser.new_page()
    try:
        source = (ROOT / "pages" / "ui" / "scatter.js").read_text(encoding="utf-8")
        got = page.evaluate(
            "async ([source, base, paint]) => {"
            "  const module = await import('data:text/javascript,' + encodeURIComponent(source));"
            "  return module.compose(base, paint); }",
            [source, *as_json],
        )
    finally:
        page.close()
    assert got == expected
    texts = [t for trace in got["data"] for t in trace["text"]]
    assert "<b>-1: </b>" not in "".join(texts) and "&lt;img src=x onerror=alert(1)&gt;" in "".join(texts)
    assert np.isclose(got["data"][0]["x"][0], -2.0)  # the faded trace comes first, under the rest


def pages_json(part: dict) -> str:
    from pages.ui.scatter import figure_json

    return figure_json(part)


MAP_DRIVER_JS = """async ([source, base, paint]) => {
  const module = await import('data:text/javascript,' + encodeURIComponent(source));
  const parent = document.createElement('div');
  parent.style.width = '900px';
  document.body.appendChild(parent);
  window.__reports = []; window.__selecting = 0;
  const component = {
    data: {revision: 'r1', paint, base_revision: 'b1', base, script: ''},
    parentElement: parent,
    setStateValue: (name, value) => window.__reports.push([name, value]),
    setTriggerValue: () => {},
  };
  module.default(component);
  const graph = parent.querySelector('.clusterlab-map');
  for (let i = 0; i < 100 && graph.dataset.revision !== 'r1'; i++) await new Promise(r => setTimeout(r, 50));
  graph.on('plotly_selecting', () => { window.__selecting += 1; });
  return graph.dataset.revision;
}"""


def test_the_maps_names_are_text_over_their_clusters_and_follow_a_zoom(browser):
    """scatter.js writes the clusters' names as elements over the plot (plotly.js's annotations
    were redrawn and measured on every update): each at its cluster's centre, a hostile name as
    its literal text (no element made from it), hidden when a zoom leaves its centre outside the
    plot and back when the zoom is reset."""
    import pandas as pd
    import plotly

    from pipeline import plots
    from pipeline.bench_browser import ROOT

    hostile = "<img src=x onerror=1> & co"  # within the 28 characters a name keeps
    frame = pd.DataFrame(
        {
            "x": [0.0, 0.2, 0.1, 9.0, 9.2, 9.1],
            "y": [0.0, 0.1, 0.2, 9.0, 9.1, 9.2],
            "cluster_id": [0, 0, 0, 1, 1, 1],
            "cluster_label": ["refunds"] * 3 + [hostile] * 3,
            "text": [f"text {i}" for i in range(6)],
            "rows": [1] * 6,
            "trace": [0] * 6,
        }
    )
    base, paint = (pages_json(part) for part in plots.map_layers((frame, 6)))
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    try:
        page.add_script_tag(path=str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js"))
        source = (ROOT / "pages" / "ui" / "scatter.js").read_text(encoding="utf-8")
        assert page.evaluate(MAP_DRIVER_JS, [source, base, paint]) == "r1"
        names_js = """() => {
          const graph = document.querySelector('.clusterlab-map'), l = graph._fullLayout;
          return [...graph.querySelectorAll('.clusterlab-name')].map(n => ({
            text: n.textContent, children: n.children.length, shown: n.style.display !== 'none',
            left: parseFloat(n.style.left), top: parseFloat(n.style.top),
            x: l.xaxis._offset + l.xaxis.d2p(0.1), y: l.yaxis._offset + l.yaxis.d2p(0.1)}));
        }"""
        names = {n["text"]: n for n in page.evaluate(names_js)}
        assert set(names) == {"refunds", hostile}
        assert all(n["children"] == 0 and n["shown"] for n in names.values())
        assert page.locator("img[src=x]").count() == 0 and page.locator("g.annotation").count() == 0
        refunds = names["refunds"]
        assert abs(refunds["left"] - refunds["x"]) < 40 and abs(refunds["top"] - refunds["y"]) < 10
        relayout = "(change) => Plotly.relayout(document.querySelector('.clusterlab-map'), change)"
        page.evaluate(relayout, {"xaxis.range": [5, 10]})
        page.wait_for_function(
            "() => [...document.querySelectorAll('.clusterlab-name')]"
            ".filter(n => n.style.display === 'none').map(n => n.textContent).join() === 'refunds'"
        )
        page.evaluate(relayout, {"xaxis.autorange": True})
        page.wait_for_function(
            "() => [...document.querySelectorAll('.clusterlab-name')].every(n => n.style.display !== 'none')"
        )
    finally:
        page.close()


def test_a_box_dragged_over_the_map_selects_the_points_inside_once(browser):
    """The map's box selection (scatter.js): a drag moves an outline only (plotly.js's own box
    selected and recoloured every point at each mouse move, a WebGL redraw per move), and the
    release selects exactly the points inside the box, once; shift adds a second box; a double
    click clears the selection."""
    import numpy as np
    import pandas as pd
    import plotly

    from pipeline import plots
    from pipeline.bench_browser import ROOT

    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame(
        {
            "x": rng.uniform(0, 10, n),
            "y": rng.uniform(0, 10, n),
            "cluster_id": rng.integers(-1, 3, n),
            "text": [f"text {i}" for i in range(n)],
            "rows": np.ones(n, dtype=int),
        }
    )
    frame["cluster_label"] = frame["cluster_id"].map({-1: "", 0: "a", 1: "b", 2: "c"})
    frame["trace"] = np.where(frame["cluster_id"] == 2, plots.FADED, 0)  # a search's faded trace too
    base, paint = (pages_json(part) for part in plots.map_layers((frame, n)))  # as Python sends them
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    try:
        page.add_script_tag(path=str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js"))
        source = (ROOT / "pages" / "ui" / "scatter.js").read_text(encoding="utf-8")
        assert page.evaluate(MAP_DRIVER_JS, [source, base, paint]) == "r1"
        area = page.locator(".clusterlab-map .nsewdrag").first.bounding_box()

        def drag(x0: float, y0: float, x1: float, y1: float, shift: bool = False) -> None:
            before = reports()
            page.mouse.move(area["x"] + area["width"] * x0, area["y"] + area["height"] * y0)
            if shift:
                page.keyboard.down("Shift")
            page.mouse.down()
            page.mouse.move(area["x"] + area["width"] * x1, area["y"] + area["height"] * y1, steps=10)
            page.mouse.up()
            if shift:
                page.keyboard.up("Shift")
            page.wait_for_function("(n) => window.__reports.length > n", arg=before)

        def reports() -> int:
            return page.evaluate("() => window.__reports.length")

        def inside(boxes: list[dict]) -> set[tuple[int, int]]:
            """The (trace, index) points of the drawn figure inside any of ``boxes``."""
            data = page.evaluate("() => document.querySelector('.clusterlab-map').data.map(t => [t.x, t.y])")
            return {
                (c, i)
                for c, (xs, ys) in enumerate(data)
                for i, (x, y) in enumerate(zip(xs, ys, strict=True))
                if any(b["x0"] <= x <= b["x1"] and b["y0"] <= y <= b["y1"] for b in boxes)
            }

        members = plots.trace_members(frame)
        layout = frame[["x", "y"]].to_numpy()

        def last() -> tuple[set, list[dict]]:
            """The texts Python reads from the last report (every text in its areas), beside the
            boxes plotly.js keeps; the areas reported are those boxes, and no points with them."""
            name, value = page.evaluate("() => window.__reports[window.__reports.length - 1]")
            assert name == "selection" and value["revision"] == "r1" and value["points"] == []
            boxes = page.evaluate("() => document.querySelector('.clusterlab-map').layout.selections || []")
            assert value["regions"] == [{"box": [b["x0"], b["x1"], b["y0"], b["y1"]]} for b in boxes]
            regions = plots.selection_regions(value["regions"])
            return set(plots.texts_in_regions(layout, np.arange(n), regions).tolist()), boxes

        def drawn_inside(boxes: list[dict]) -> set[int]:
            return {int(members[c][i]) for c, i in inside(boxes)}

        drag(0.2, 0.2, 0.6, 0.7)
        assert page.evaluate("() => window.__selecting") == 0  # nothing selected while dragging
        assert reports() == 1
        points, boxes = last()
        assert len(boxes) == 1 and points == drawn_inside(boxes) and 40 < len(points) < n
        # the box is where the mouse went: its corners, back in pixels, are the drag's
        corners = page.evaluate(
            "(b) => { const l = document.querySelector('.clusterlab-map')._fullLayout;"
            " return [l.xaxis.d2p(b.x0), l.xaxis.d2p(b.x1), l.yaxis.d2p(b.y1), l.yaxis.d2p(b.y0)]; }",
            boxes[0],
        )
        wanted = [area["width"] * 0.2, area["width"] * 0.6, area["height"] * 0.2, area["height"] * 0.7]
        assert np.allclose(corners, wanted, atol=2), (corners, wanted)

        drag(0.7, 0.1, 0.9, 0.3, shift=True)  # shift: a second box, added to the first
        added, boxes = last()
        assert len(boxes) == 2 and added == drawn_inside(boxes) and added > points

        drag(0.1, 0.5, 0.3, 0.9)  # without shift: a new selection
        fresh, boxes = last()
        assert len(boxes) == 1 and fresh == drawn_inside(boxes) and not fresh & (points - drawn_inside(boxes))

        # a lasso (plotly.js keeps it as an SVG path): its corners, and every text inside
        before = reports()
        page.evaluate(
            "() => Plotly.relayout(document.querySelector('.clusterlab-map'),"
            " { selections: [{ type: 'path', xref: 'x', yref: 'y', path: 'M1,1L9,1L9,9Z' }] })"
        )
        page.wait_for_function("(n) => window.__reports.length > n", arg=before)
        name, value = page.evaluate("() => window.__reports[window.__reports.length - 1]")
        assert value["regions"] == [{"lasso": [[1, 1], [9, 1], [9, 9]]}]
        under = {i for i, (x, y) in enumerate(layout) if 1 < x < 9 and 1 < y < x}  # the triangle
        assert (
            set(plots.texts_in_regions(layout, np.arange(n), plots.selection_regions(value["regions"])))
            == under
        )

        page.mouse.dblclick(area["x"] + area["width"] * 0.5, area["y"] + area["height"] * 0.5)
        page.wait_for_function("() => window.__reports[window.__reports.length - 1][1].regions.length === 0")
        assert (
            page.evaluate("() => (document.querySelector('.clusterlab-map').layout.selections || []).length")
            == 0
        )
    finally:
        page.close()
