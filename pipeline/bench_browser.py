"""``python -m pipeline.bench --browser``: the app's speed as a user meets it, in a real browser.

    make bench BENCH_ARGS=--browser                   # a fresh install (1,000 texts), 10,000, 100,000
    make bench BENCH_ARGS="--browser --rows 2000 --repeat 3 --json out.json"

For each size, the app starts as ``make run`` starts it (``clusterlab app``) on a free port of
127.0.0.1 with its own (fresh, temporary) workspaces and cache folders, and Debian's Chromium
(headless, driven by Playwright) uploads a CSV of that many short texts through the file chooser: banking77's texts
(``../shared/datasets/banking77.csv``) repeated with small variations (``bench.load_texts``),
written to a temporary folder, never into the project. Then, ``--repeat`` rounds, it times
the interactions of ``INTERACTIONS`` on Explore and prints the median, min and max against the
issue's goals. Min cluster size is first put at its automatic value for the corpus (0, the
default, is one step from 2 = thousands of clusters), then each round steps it once to the right:
a new value every time, so never a cached one. Merging is followed by Undo, timed and shown
apart, so the cluster count stays. What prepares an action (choosing the two clusters to merge,
opening the edit log, the map's box-select tool) is not timed.

A fresh install comes first (``--fresh-start``, 1,000 texts; 0 leaves it out): numba's on-disk
cache emptied as on a new machine, set-up's warm-up timed, then the first clustering in a new
server twice, clicked as soon as the upload shows and clicked once the server has warmed up (goal
``FRESH_GOAL_S``; see ``fresh_start``).

The first clustering. Below ``LARGE`` texts the app clusters cold (click "Cluster the texts" ->
results shown) and then ``python -m pipeline run`` clusters the same file in a fresh process
with a fresh cache; the ratio app / command line is printed (goal <= 1.2). From ``LARGE`` texts,
so that the run takes minutes, not tens of minutes, the command line builds the cache (timed)
in the uploaded dataset's own cache folder and the app's first clustering loads it; the output
says so. A built embedding model (onnx-int8's ONNX export) is a one-off per machine: both sides
start from the one in the default cache folder's ``models/`` (linked, as ``--scale`` does). With
a backend other than the default, the dataset's saved settings name it (``state.json``, as if
chosen in the sidebar on an earlier visit) before the upload.

When is the page idle? Streamlit writes its script state on the app's root element
(``[data-testid="stApp"]``, attribute ``data-test-script-state``: ``running`` /
``notRunning``; Streamlit's own end-to-end tests wait on it). Before each action the page is
instrumented (``INSTRUMENT_JS``): a MutationObserver logs every change of that attribute and
the time of the last change anywhere in the document, a PerformanceObserver the end of every
long task (> 50 ms of JavaScript, e.g. Plotly drawing the map), and a capturing listener the
first trusted key or mouse-button event of the action, which is the start of the clock. The
page is idle when the script state is ``notRunning`` and, for ``QUIET_S``, nothing changed:
no state change, no DOM mutation, no long task. The time reported is from the action's first
input event to the last of those changes, so the quiet wait itself is not counted, a second
script run (``st.rerun()`` after a merge) is, and so is the browser drawing what the run sent.
Changes that are never drawn wait for quiet but do not end the time: a change inside a
``<canvas>`` (fallback content; Streamlit's data grids keep their cells there for screen readers
and fill them in 0.1-0.3 s after drawing the grid) and one inside a live region for screen
readers that is at most 1 px wide or high (a select's "31 options available", cleared half a
second after the list changed). Their end is reported apart (the ``hidden`` column: to the last
change of any kind); a change of the canvas element itself (its size) counts.
A rerun too fast to be seen still leaves its transitions in the log (they are recorded in the
page, not polled); an action that reruns nothing (typing inside a form) ends when its own DOM
changes end, after a grace of ``GRACE_S`` for a run to start. ``QUIET_S`` is the one
heuristic: between the two runs of ``st.rerun()`` the state reads ``notRunning`` for a moment
(up to 0.8 s was seen on a busy 2-core machine), and a second run starting later than
``QUIET_S`` would be missed. So each interaction also checks that it happened (the slider shows
the next value, the picked cluster is shown, the cluster count drops after a merge, the map holds
a selection, the page's heading is there); one that did not is left out of the statistics and
listed as "not verified", with its time.

Selectors live in ``SELECTORS``, one table, so a page redesign changes them in one place; a
widget that is not found is reported as ``skipped: <interaction> (selector ... not found)``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Every element the benchmark touches, as Playwright selectors. Streamlit gives a keyed widget's
# container the class ``st-key-<key>`` (characters other than letters, digits, _ and - become -);
# a key with a changing suffix (``merge_ids:<names tag>``) is matched by its start, [class*=...].
SELECTORS = {
    "file_input": '[data-testid="stFileUploader"] input[type="file"]',
    "cluster_button": ".st-key-run button",
    "clustered_note": r"text=/\d+ clusters in [\d,]+ rows/",
    "run_status": r"text=/^Done in [\d.]+ s:/",
    "nav_explore": '[data-testid="stSidebarNav"] a[href$="/explore"]',
    "nav_export": '[data-testid="stSidebarNav"] a[href$="/export"]',
    "clusters_heading": r"h1 >> text=/^\d+ clusters$/",
    "export_heading": 'h1:has-text("Download")',
    "min_cluster_size": '.st-key-set-cluster-min_cluster_size input[type="range"]',
    "read_cluster": '[class*="st-key-inspect"] input[role="combobox"]',
    "option": '[role="listbox"] [role="option"]',  # of the open selectbox or multiselect
    "merge_name": '[class*="st-key-merge_name"] input',
    "merge_ids": '[class*="st-key-merge_ids"] input[role="combobox"]',
    "merge_ids_chosen": '[class*="st-key-merge_ids"] [data-tag]',
    "merge_ids_clear": '[class*="st-key-merge_ids"] button[aria-label="Clear all"]',
    "merge_button": '[class*="st-key-FormSubmitter-merge"] button',
    "edit_log": '[data-testid="stExpander"] summary:has-text("Edit log")',
    "undo": ".st-key-undo button >> nth=0",
    "map": ".st-key-map .js-plotly-plot",
    "map_box_select": '.st-key-map .modebar-btn[data-attr="dragmode"][data-val="select"]',
    "map_drag_area": ".st-key-map .nsewdrag >> nth=0",
    "error": '[data-testid="stException"], [data-testid="stAlertContentError"]',
}

# The goals, in seconds: "setting" = an interaction that changes a clustering setting,
# "other" = one that changes none, "page" = opening a page. 10,000's apply up to 10,000 texts.
GOALS = {
    10_000: {"setting": 1.5, "other": 0.5, "page": 1.5},
    100_000: {"setting": 3.0, "other": 1.0, "page": 1.0},
}
RATIO_GOAL = 1.2  # the app's first clustering / the command line's, same input
FRESH_ROWS = 1_000  # the first clustering after `make run` on a fresh machine: this many texts,
FRESH_GOAL_S = 10.0  # done in this many seconds
WARMED_LINE = re.compile(r"server warmed in (\d+\.\d) s")  # the app's log line (pages/ui/runbox.py)
LARGE = 50_000  # from here: embed.backend onnx-int8 and a prebuilt cache (unless told otherwise)
# nothing changed for this long: idle. Between the two runs of st.rerun() the script state reads
# notRunning for a moment: up to 0.8 s was seen on a busy 2-core machine
QUIET_S = 1.0
GRACE_S = 1.0  # an action that reruns nothing: how long a run may take to start
RUN_START_S = 15.0  # an action that should rerun: how long to wait for the run to start
STEP_TIMEOUT_S = 300.0  # an action's wait for idle
ACTION_TIMEOUT_S = 30.0  # Playwright's own wait for an element to take a click or a key
FIRST_RUN_TIMEOUT_S = 3600.0
LOOKUP_S = 5.0  # how long a selector may take to appear before its interaction is skipped


# --- the server and the browser (also used by tests/browser.py and docs/screenshot.py) --------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"streamlit did not answer on {url}/_stcore/health within {timeout_s:.0f} s")


def stop(process: subprocess.Popen) -> None:
    """Stop streamlit and anything it started (its own process group)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def streamlit_server(
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
) -> Iterator[str]:
    """Run the app as ``make run`` does; yield its base URL; always stop it. Folders default to
    fresh temporary ones.

    ``env`` adds to the server's environment. The server's output goes to ``log_path`` (default:
    a temporary file), whose tail is raised with any start-up failure."""
    with tempfile.TemporaryDirectory(prefix="clusterlab-e2e-") as tmp:
        workspaces = Path(data_dir) if data_dir else Path(tmp, "workspaces")
        cache = Path(cache_dir) if cache_dir else Path(tmp, "cache")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server_env = {
            **os.environ,
            "CLUSTERLAB_WORKSPACES_DIR": str(workspaces),
            "CLUSTERLAB_CACHE_DIR": str(cache),
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
            **(env or {}),
        }
        log_path = log_path or Path(tmp, "streamlit.log")
        # as make run starts it (clusterlab app: the settings checked, the server's warm-up begun
        # with the process, then streamlit run app.py)
        command = [
            sys.executable, "-m", "pipeline", "app",
            "--address", "127.0.0.1",
            "--port", str(port),
            "--server.headless", "true",
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=server_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            try:
                wait_healthy(url, process)
            except Exception as exc:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{exc}\n--- streamlit log ---\n{tail}") from exc
            yield url
        finally:
            stop(process)


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


def launch_chromium(playwright):
    """Debian's Chromium, headless (Playwright's own browser download does not work here)."""
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    return playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)


# --- when is the page idle (see the module docstring) ------------------------------------------

INSTRUMENT_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return false;
  if (window.__bench && window.__bench.app === app) return true;
  const s = window.__bench = {app, log: [], lastMutation: 0, lastHidden: 0, lastLongEnd: 0,
                              firstInput: null, armed: performance.now()};
  const state = () => app.getAttribute('data-test-script-state');
  s.log.push([performance.now(), state()]);
  new MutationObserver(() => {
    const value = state();
    if (value !== s.log[s.log.length - 1][1]) s.log.push([performance.now(), value]);
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  // never drawn, so timed apart (as `hidden`): what is inside a <canvas>, fallback content (a data
  // grid keeps its cells there for screen readers, updated a while after it has drawn them), and
  // what is inside a screen-reader-only live region (1 px wide: a select's "31 options available")
  const hidden = (r) => {
    const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
    if (!el) return false;
    if (el.tagName === 'CANVAS') return r.type === 'childList';  // its own size is drawn
    if (el.closest('canvas') !== null) return true;
    const live = el.closest('[aria-live]');
    if (live === null) return false;
    const box = live.getBoundingClientRect();
    return box.width <= 1 || box.height <= 1;
  };
  new MutationObserver((records) => {
    const now = performance.now();
    if (records.some(r => !hidden(r))) s.lastMutation = now; else s.lastHidden = now;
  }).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
  try {
    new PerformanceObserver(list => {
      for (const e of list.getEntries()) s.lastLongEnd = Math.max(s.lastLongEnd, e.startTime + e.duration);
    }).observe({type: 'longtask'});
  } catch (e) { /* no long-task timing in this browser: DOM changes and the script state only */ }
  for (const type of ['pointerdown', 'mousedown', 'keydown', 'click']) {
    window.addEventListener(type, e => {
      if (e.isTrusted && s.firstInput === null) s.firstInput = e.timeStamp;
    }, true);
  }
  return true;
}"""

ARM_JS = """() => {
  const s = window.__bench, now = performance.now();
  s.log = [[now, s.app.getAttribute('data-test-script-state')]];
  s.firstInput = null; s.armed = now; s.lastMutation = 0; s.lastHidden = 0; s.lastLongEnd = 0;
  return now;
}"""

# true once idle; q = {quiet, grace, runStart, expectRun} in milliseconds
IDLE_JS = """(q) => {
  const s = window.__bench;
  if (!s || !s.app.isConnected) return true;  // the page was replaced: reported by READ_JS
  const now = performance.now(), start = s.firstInput ?? s.armed;
  if (s.app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const ran = s.log.length > 1;
  if (!ran && now - start < (q.expectRun ? q.runStart : q.grace)) return false;
  const last = Math.max(start, s.log[s.log.length - 1][0], s.lastMutation, s.lastHidden, s.lastLongEnd);
  return now - last >= q.quiet;
}"""

READ_JS = """() => {
  const s = window.__bench;
  if (!s || !s.app.isConnected) return null;
  const start = s.firstInput ?? s.armed;
  const last = Math.max(start, s.log[s.log.length - 1][0], s.lastMutation, s.lastLongEnd);
  const ran = s.log.length > 1;
  return {seconds: (last - start) / 1000, runs: s.log.filter(e => e[1] === 'running').length,
          script: ran ? (s.log[s.log.length - 1][0] - start) / 1000 : null,
          hidden: (Math.max(last, s.lastHidden) - start) / 1000};
}"""


class NotThisRound(Exception):
    """An interaction that cannot be measured this round (its reason is reported)."""


class Missing(Exception):
    """A widget the benchmark needs is not on the page (``SELECTORS`` names it)."""

    def __init__(self, name: str):
        super().__init__(f"selector {name} = {SELECTORS[name]!r} not found")
        self.name = name


@dataclass
class Step:
    """One timed action: seconds from its first input event to idle, to the end of the last
    script run (None: no run) and to the last change of content never drawn (``hidden_s``: inside
    a canvas or a screen-reader-only live region), and how many script runs it took."""

    seconds: float
    runs: int
    script_s: float | None = None
    hidden_s: float | None = None


class AppPage:
    """A browser tab on the app, with the idle measurement of the module docstring."""

    def __init__(self, page):
        self.page = page
        self.merged = False  # the last merge happened: there is one to undo

    def find(self, name: str, timeout_s: float = LOOKUP_S):
        """The element ``SELECTORS[name]``, once attached; ``Missing`` when it never is."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        locator = self.page.locator(SELECTORS[name]).first
        try:
            locator.wait_for(state="attached", timeout=timeout_s * 1000)
        except PlaywrightTimeout:
            raise Missing(name) from None
        return locator

    def present(self, name: str) -> bool:
        return self.page.locator(SELECTORS[name]).count() > 0

    def timed(
        self,
        action: Callable[[], object],
        expect_run: bool = True,
        timeout_s: float = STEP_TIMEOUT_S,
        grace_s: float = GRACE_S,
    ) -> Step:
        """Run ``action`` (Playwright calls) and wait until the page is idle again."""
        if not self.page.evaluate(INSTRUMENT_JS):
            raise RuntimeError("the page has no Streamlit app on it")
        self.page.evaluate(ARM_JS)
        action()
        quiet = {
            "quiet": QUIET_S * 1000,
            "grace": grace_s * 1000,
            "runStart": RUN_START_S * 1000,
            "expectRun": expect_run,
        }
        self.page.wait_for_function(IDLE_JS, arg=quiet, polling=50, timeout=timeout_s * 1000)
        read = self.page.evaluate(READ_JS)
        if read is None:
            raise RuntimeError("the page reloaded during the measurement")
        return Step(
            seconds=float(read["seconds"]),
            runs=int(read["runs"]),
            script_s=read["script"],
            hidden_s=float(read["hidden"]),
        )

    def settle(self, timeout_s: float = STEP_TIMEOUT_S) -> None:
        """Untimed: wait until the page is idle."""
        self.timed(lambda: None, expect_run=False, timeout_s=timeout_s, grace_s=0.2)

    def act(self, action: Callable[[], object]) -> None:
        """Untimed: a setup action (it may rerun the app or not), then wait until idle. The
        next action must not meet a run still starting: a click then can go unheard."""
        self.timed(action, expect_run=False)

    def cluster_count(self) -> int | None:
        texts = self.page.locator(SELECTORS["clusters_heading"]).all_inner_texts()
        return int(texts[0].split()[0]) if texts else None

    def errors(self) -> list[str]:
        return [t.strip()[:200] for t in self.page.locator(SELECTORS["error"]).all_inner_texts()]


# --- the interactions --------------------------------------------------------------------------


@dataclass
class Outcome:
    step: Step
    ok: bool
    note: str = ""


def step_slider(app: AppPage, rep: int) -> Outcome:
    """One step right on the Min cluster size slider: a new setting each time, never cached."""
    slider = app.find("min_cluster_size")
    before = slider.get_attribute("aria-valuetext")
    slider.focus()
    step = app.timed(lambda: slider.press("ArrowRight"))
    after = app.find("min_cluster_size").get_attribute("aria-valuetext")
    ok = _int(after) == _int(before) + 1 and step.runs > 0
    return Outcome(step, ok, f"min cluster size {before} -> {after}")


def pick_cluster(app: AppPage, rep: int) -> Outcome:
    """Pick another cluster in "Read a cluster"'s selectbox. Opening its list is untimed: the
    clock starts at the click on the option (finding that option among the list's texts is the
    benchmark's own work, 0.1-0.15 s here, and opening the list runs no script)."""
    box = app.find("read_cluster")
    before = box.input_value().strip()
    texts = open_options(app, box)
    others = [t for t in texts if t != before]
    target = others[rep % len(others)] if others else texts[0]
    step = app.timed(lambda: click_option(app, target))
    after = app.find("read_cluster").input_value().strip()
    return Outcome(step, after == target and step.runs > 0, f"{before} -> {after}")


def type_merge_name(app: AppPage, rep: int) -> Outcome:
    """Type a name into the merge form (inside a form: no rerun is expected)."""
    field_ = app.find("merge_name")
    field_.fill("")
    app.settle()
    name = f"Merged {rep + 1}"
    step = app.timed(lambda: field_.press_sequentially(name), expect_run=False)
    value = app.find("merge_name").input_value()
    return Outcome(step, value == name, f"typed {value!r}")


def merge_two(app: AppPage, rep: int) -> Outcome:
    """Choose two clusters in the merge form (untimed), then time the Merge button."""
    _choose_two_to_merge(app)
    before = app.cluster_count()
    step = app.timed(lambda: app.find("merge_button").click())
    after = app.cluster_count()
    app.merged = before is not None and after == before - 1
    return Outcome(step, app.merged, f"{before} -> {after} clusters")


def undo_merge(app: AppPage, rep: int) -> Outcome:
    """Undo the last edit (the merge), from the edit log (opened untimed)."""
    if not app.merged:
        raise NotThisRound("the merge before it did not happen")
    summary = app.find("edit_log")
    if not summary.evaluate("s => s.parentElement.open"):
        app.act(summary.click)
    undo = app.find("undo")
    if undo.is_disabled():
        raise NotThisRound("Undo is disabled: the app shows no edit to undo")
    before = app.cluster_count()
    step = app.timed(lambda: click_and_leave(app, undo))
    after = app.cluster_count()
    ok = before is not None and after == before + 1
    return Outcome(step, ok, f"{before} -> {after} clusters")


def box_select(app: AppPage, rep: int) -> Outcome:
    """Drag a box over the map in box-select mode (the mode is chosen untimed, on the modebar)."""
    chart = app.find("map")
    chart.scroll_into_view_if_needed()
    if chart.evaluate("g => g._fullLayout && g._fullLayout.dragmode") != "select":
        chart.hover()
        app.act(app.find("map_box_select").click)
    box = app.find("map_drag_area").bounding_box()
    if box is None:
        raise Missing("map_drag_area")
    shift = 0.04 * (rep % 5)  # a different box each time, so each one is a new selection
    x0, y0 = box["x"] + box["width"] * (0.25 + shift), box["y"] + box["height"] * (0.25 + shift)
    x1, y1 = x0 + box["width"] * 0.3, y0 + box["height"] * 0.3
    mouse = app.page.mouse

    def action() -> None:
        mouse.move(x0, y0)
        mouse.down()
        for i in range(1, 6):
            mouse.move(x0 + (x1 - x0) * i / 5, y0 + (y1 - y0) * i / 5)
        mouse.up()

    step = app.timed(action)
    chart = app.find("map")
    selections = chart.evaluate("g => (g.layout && g.layout.selections || []).length")
    return Outcome(step, step.runs > 0 and selections > 0, f"{selections} selection box(es) on the map")


def open_export(app: AppPage, rep: int) -> Outcome:
    step = app.timed(lambda: app.find("nav_export").click())
    return Outcome(step, app.present("export_heading"), "")


def open_explore(app: AppPage, rep: int) -> Outcome:
    step = app.timed(lambda: app.find("nav_explore").click())
    return Outcome(step, app.cluster_count() is not None, f"{app.cluster_count()} clusters")


@dataclass(frozen=True)
class Interaction:
    name: str
    kind: str  # a key of GOALS[...]; "" for one shown apart, without a goal of its own
    run: Callable[[AppPage, int], Outcome]
    extra: bool = False  # shown apart: not one of the interactions


INTERACTIONS = (
    Interaction("clustering slider step", "setting", step_slider),
    Interaction("pick a cluster to read", "other", pick_cluster),
    Interaction("type a merge name", "other", type_merge_name),
    Interaction("merge two clusters", "other", merge_two),
    Interaction("undo the merge", "other", undo_merge, extra=True),
    Interaction("box selection on the map", "other", box_select),
    Interaction("open Export", "page", open_export),
    Interaction("open Explore", "page", open_explore),
)


def _choose_two_to_merge(app: AppPage) -> None:
    if app.present("merge_ids_clear"):
        app.act(app.find("merge_ids_clear").click)
    combo = app.find("merge_ids")
    picked: list[str] = []
    for _ in range(2):
        texts = open_options(app, combo)
        text = next((t for t in texts if t not in picked), None)
        if text is None:
            raise NotThisRound(f"the merge form offered {len(texts)} clusters to choose from")
        picked.append(text)
        click_option(app, picked[-1])
    app.act(lambda: app.page.keyboard.press("Escape"))
    chosen = app.page.locator(SELECTORS["merge_ids_chosen"]).count()
    if chosen != 2:
        raise RuntimeError(f"the merge form holds {chosen} clusters, not 2")


CLUSTER_OPTION = re.compile(r"^-?\d+: ")  # "3: refund, card"; not a multiselect's "Select all"


def open_options(app: AppPage, combo, tries: int = 3) -> list[str]:
    """Open a selectbox's or multiselect's list; the clusters it offers. The keyboard opens it
    (ArrowDown): a click on the input right after a rerun sometimes only focuses it."""
    options = app.page.locator(SELECTORS["option"])
    for _ in range(tries):
        if combo.get_attribute("aria-expanded") != "true":
            combo.focus()
            combo.press("ArrowDown")
        with contextlib.suppress(Exception):  # a list that closed again as the widget redrew
            options.first.wait_for(timeout=LOOKUP_S * 1000)
            texts = [t.strip() for t in options.all_inner_texts()]
            return [t for t in texts if CLUSTER_OPTION.match(t)]
    raise Missing("option")


def click_and_leave(app: AppPage, button) -> None:
    """Click ``button`` and move the pointer off it, as a person does: left on a button with help
    text it can open the tooltip, a change of the page that is no one's wait."""
    button.click()
    size = app.page.viewport_size or {"width": 1400, "height": 1000}
    # to the main column's right margin: the top left corner is the sidebar, which shows its
    # collapse button under the pointer
    app.page.mouse.move(size["width"] - 4, size["height"] // 2)


def click_option(app: AppPage, text: str) -> None:
    exact = re.compile(f"^{re.escape(text)}$")
    app.page.locator(SELECTORS["option"]).filter(has_text=exact).first.click()


def _int(text: str | None) -> int:
    try:
        return int(str(text).replace(",", ""))
    except ValueError:
        return -10


# --- statistics and the report (pure: tests/test_bench_browser.py) -------------------------------


def goals_for(rows: int) -> tuple[int, dict[str, float]]:
    """The issue's goals that apply at ``rows`` texts: 10,000's up to 10,000, else 100,000's."""
    size = min((s for s in GOALS if rows <= s), default=max(GOALS))
    return size, GOALS[size]


def summarize(seconds: list[float]) -> dict[str, float | int]:
    return {
        "median": statistics.median(seconds),
        "min": min(seconds),
        "max": max(seconds),
        "n": len(seconds),
    }


@dataclass
class SizeResult:
    """Everything measured at one size; ``format_size`` prints it."""

    rows: int
    backend: str
    first_run: str  # "cold" or "prebuilt"
    samples: dict[str, list[float]] = field(default_factory=dict)
    script_samples: dict[str, list[float]] = field(default_factory=dict)  # action -> script's end
    hidden_samples: dict[str, list[float]] = field(default_factory=dict)  # -> the last change at all
    unverified: dict[str, list[str]] = field(default_factory=dict)
    not_measured: dict[str, list[str]] = field(default_factory=dict)  # round by round, why
    skipped: list[str] = field(default_factory=list)
    upload_s: float | None = None
    app_first_s: float | None = None
    app_status: str = ""
    cli_s: float | None = None
    first_explore_s: float | None = None  # opening Explore right after the first clustering
    minutes: float | None = None
    clusters: int | None = None
    errors: list[str] = field(default_factory=list)


def table_rows(result: SizeResult) -> list[dict]:
    """One row per interaction measured: median/min/max/n, the goal and whether it is met, and
    the median time to the end of the script run (None: it ran none)."""
    _, goals = goals_for(result.rows)
    rows = []
    for interaction in INTERACTIONS:
        seconds = result.samples.get(interaction.name)
        if not seconds:
            continue
        goal = goals.get(interaction.kind)
        script = result.script_samples.get(interaction.name)
        row = {"interaction": interaction.name, **summarize(seconds), "goal": goal}
        row["met"] = None if goal is None else row["median"] <= goal
        row["script_median"] = statistics.median(script) if script else None
        hidden = result.hidden_samples.get(interaction.name)
        row["hidden_median"] = statistics.median(hidden) if hidden else None
        row["extra"] = interaction.extra
        rows.append(row)
    return rows


def format_size(result: SizeResult) -> str:
    goal_size, _ = goals_for(result.rows)
    lines = [
        f"{result.rows:,} texts, embed.backend = {result.backend}; the goals for {goal_size:,} texts. "
        "Seconds from the action's first input event to the page being idle; 'script' = to the end "
        "of the app's script run (the rest is the browser drawing); 'hidden' = to the last change "
        "of any kind, a data grid's never-drawn cells for screen readers included"
    ]
    columns = (
        f"{'median':>6} {'min':>6} {'max':>6} {'n':>3} {'goal':>5}  {'met':<4}{'script':>6} {'hidden':>6}"
    )
    lines.append(f"  {'interaction':<30} {columns}")
    for row in table_rows(result):
        name = row["interaction"] + (" (extra)" if row["extra"] else "")
        goal = "-" if row["goal"] is None else f"{row['goal']:.1f}"
        met = "-" if row["met"] is None else ("yes" if row["met"] else "no")
        script = "-" if row["script_median"] is None else f"{row['script_median']:.2f}"
        hidden = "-" if row["hidden_median"] is None else f"{row['hidden_median']:.2f}"
        lines.append(
            f"  {name:<30} {row['median']:>6.2f} {row['min']:>6.2f} {row['max']:>6.2f} {row['n']:>3} "
            f"{goal:>5}  {met:<4}{script:>6} {hidden:>6}"
        )
    for name, notes in result.unverified.items():
        lines.append(f"  not verified (left out): {name}, {len(notes)} time(s): {'; '.join(notes[:3])}")
    for name, notes in result.not_measured.items():
        lines.append(f"  not measured: {name}, {'; '.join(notes[:3])}")
    lines.extend(f"  skipped: {line}" for line in result.skipped)
    lines.extend(f"  error on the page: {line}" for line in result.errors[:5])
    lines.extend(first_run_lines(result))
    if result.first_explore_s is not None:
        lines.append(f"  opening Explore right after the first clustering: {result.first_explore_s:.1f} s")
    if result.minutes is not None:
        lines.append(f"  this size took {result.minutes:.1f} min in all")
    return "\n".join(lines)


def first_run_lines(result: SizeResult) -> list[str]:
    lines = []
    if result.upload_s is not None:
        lines.append(f"  upload through the file chooser, to the preview: {result.upload_s:.1f} s")
    if result.app_first_s is None:
        return lines
    status = f" [{result.app_status}]" if result.app_status else ""
    if result.first_run == "prebuilt":
        cli = "" if result.cli_s is None else f"{result.cli_s:.1f} s"
        lines.append(
            f"  first clustering: a cache prebuilt by the command line (python -m pipeline run, fresh "
            f"process, into the dataset's cache folder: {cli}); the app then loaded it in "
            f"{result.app_first_s:.1f} s{status}; no app/command-line ratio at this size"
        )
        return lines
    lines.append(
        f"  first clustering in the app (click 'Cluster the texts' -> results shown, idle): "
        f"{result.app_first_s:.1f} s{status}"
    )
    if result.cli_s is not None:
        ratio = result.app_first_s / result.cli_s
        met = "met" if ratio <= RATIO_GOAL else "not met"
        lines.append(
            f"  the command line on the same file (python -m pipeline run, fresh process, fresh cache): "
            f"{result.cli_s:.1f} s; ratio app / command line {ratio:.2f}x (goal <= {RATIO_GOAL}x): {met}"
        )
    return lines


# --- one size ------------------------------------------------------------------------------------


def default_backend(rows: int) -> str:
    return "onnx-int8" if rows >= LARGE else "torch"


def write_input(rows: int, data: str | None, folder: Path) -> Path:
    import pandas as pd

    from .bench import load_texts

    texts = load_texts(Path(data) if data else None, rows)
    path = folder / f"texts_{rows}.csv"
    pd.DataFrame({"id": range(rows), "text": texts}).to_csv(path, index=False)
    return path


def link_models(cache_dir: Path) -> None:
    """``<cache_dir>/models`` -> the default cache's built models (built once per machine)."""
    from .cache import default_cache_dir

    models = default_cache_dir() / "models"
    models.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        (cache_dir / "models").symlink_to(models.resolve(), target_is_directory=True)


def run_cli(source: Path, backend: str, cache_dir: Path, out_dir: Path) -> float:
    """``python -m pipeline run`` on ``source`` in a fresh process: its wall time."""
    link_models(cache_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pipeline", "run", str(source), "--text-column", "text"]
    command += ["--out", str(out_dir / "out.csv"), "--cache-dir", str(cache_dir), "--quiet"]
    command += ["--set", f"embed.backend={backend}"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"python -m pipeline run failed:\n{done.stderr[-3000:]}")
    return seconds


def prepare_dataset(workspaces: Path, url: str, source: Path, backend: str) -> Path:
    """The folder the app will keep ``source`` in once uploaded (``Workspace`` names it by the
    workspace token in the URL and the bytes' sha256), with its cache's models linked and, for a
    backend other than the default, saved settings naming it."""
    from .config import PipelineConfig
    from .dataset_state import DatasetState

    token = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["ws"][0]
    dataset_id = hashlib.sha256(source.read_bytes()).hexdigest()
    folder = workspaces / token / "datasets" / dataset_id
    link_models(folder / "cache")
    if backend != PipelineConfig().embed.backend:
        state = DatasetState(text_columns=("text",), settings={"embed.backend": backend})
        (folder / "state.json").write_text(json.dumps(state.to_dict()), encoding="utf-8")
    return folder


def open_app(browser, url: str) -> AppPage:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(ACTION_TIMEOUT_S * 1000)
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    page.wait_for_url(re.compile(r"[?&]ws="))
    app = AppPage(page)
    app.settle()
    return app


def first_clustering(app: AppPage, result: SizeResult, source: Path, tmp: Path, folder: Path) -> None:
    """Upload, then the first clustering: cold against the command line, or from a prebuilt cache."""
    if result.first_run == "prebuilt":
        print(f"  prebuilding the cache with the command line ({result.rows:,} texts)...", flush=True)
        result.cli_s = run_cli(source, result.backend, folder / "cache", tmp / "cli-out")
    upload = app.timed(lambda: app.find("file_input").set_input_files(str(source)))
    result.upload_s = upload.seconds
    print(f"  uploaded in {upload.seconds:.1f} s; clustering in the app...", flush=True)
    first = app.timed(lambda: app.find("cluster_button").click(), timeout_s=FIRST_RUN_TIMEOUT_S)
    if not app.present("clustered_note"):
        raise RuntimeError(f"the first clustering did not finish: {app.errors() or 'no result shown'}")
    result.app_first_s = first.seconds
    status = app.page.locator(SELECTORS["run_status"]).all_inner_texts()
    result.app_status = status[0].strip() if status else ""
    if result.first_run == "cold":
        print(f"  app: {first.seconds:.1f} s; the command line on the same file...", flush=True)
        result.cli_s = run_cli(source, result.backend, tmp / "cli-cache", tmp / "cli-out")


def start_slider(app: AppPage, rows: int) -> None:
    """Untimed: put Min cluster size at the automatic value for ``rows`` (0 = automatic is the
    start, and one step from it, 2, would make thousands of clusters)."""
    from .clustering.hdbscan import auto_min_cluster_size

    slider = app.find("min_cluster_size")
    target = auto_min_cluster_size(rows)
    # the slider's positions are 0, 2, 3, ...: value v sits at position v - 1. Moving the thumb
    # without a key press does not send the value; the one ArrowRight after it does.
    slider.fill(str(target - 2))
    app.timed(lambda: slider.press("ArrowRight"), timeout_s=STEP_TIMEOUT_S)
    value = app.find("min_cluster_size").get_attribute("aria-valuetext")
    if _int(value) != target:
        print(f"  note: the slider starts at {value}, not {target}", flush=True)


def bench_size(browser, rows: int, args: argparse.Namespace) -> SizeResult:
    backend = args.backend if args.backend != "auto" else default_backend(rows)
    mode = args.first_run if args.first_run != "auto" else ("prebuilt" if rows >= LARGE else "cold")
    result = SizeResult(rows=rows, backend=backend, first_run=mode)
    with tempfile.TemporaryDirectory(prefix="clusterlab-browser-bench-") as tmp_name:
        tmp = Path(tmp_name)
        source = write_input(rows, args.data, tmp)
        workspaces = tmp / "workspaces"
        with streamlit_server(workspaces, tmp / "cache") as url:
            app = open_app(browser, url)
            try:
                folder = prepare_dataset(workspaces, app.page.url, source, backend)
                first_clustering(app, result, source, tmp, folder)
                result.clusters = app.cluster_count()
                first_open = app.timed(lambda: app.find("nav_explore").click(), timeout_s=FIRST_RUN_TIMEOUT_S)
                result.first_explore_s = first_open.seconds
                start_slider(app, rows)
                interact(app, result, args.repeat)
                result.errors = app.errors()
            finally:
                app.page.close()
    return result


def interact(app: AppPage, result: SizeResult, repeat: int) -> None:
    """``repeat`` rounds of ``INTERACTIONS``; a widget not found skips its interaction from then on."""
    skipped: set[str] = set()
    for rep in range(repeat):
        shown = []
        for interaction in INTERACTIONS:
            if interaction.name not in skipped:
                shown.append(f"{interaction.name} {measure_one(app, result, interaction, rep, skipped)}")
        print(f"  round {rep + 1}/{repeat}: {', '.join(shown)}", flush=True)


def measure_one(
    app: AppPage, result: SizeResult, interaction: Interaction, rep: int, skipped: set[str]
) -> str:
    """Run one interaction and file its outcome in ``result``; what the round's line shows."""
    from playwright.sync_api import Error as PlaywrightError

    name = interaction.name
    try:
        outcome = interaction.run(app, rep)
    except NotThisRound as exc:
        result.not_measured.setdefault(name, []).append(f"round {rep + 1}: {exc}")
        return "-"
    except Missing as exc:
        skipped.add(name)
        result.skipped.append(f"{name} ({exc})" + page_errors(app, "; the page shows: "))
        return "skipped"
    except (PlaywrightError, RuntimeError) as exc:
        with contextlib.suppress(PlaywrightError):
            app.page.keyboard.press("Escape")  # e.g. a list left open
        skipped.add(name)
        result.skipped.append(f"{name} (failed: {str(exc).strip().splitlines()[0][:200]})")
        return "failed"
    if not outcome.ok:  # left out of the statistics: its time may not be the action's
        note = f"{outcome.step.seconds:.2f} s, {outcome.note}" + page_errors(app, " (the page shows: ", ")")
        result.unverified.setdefault(name, []).append(note)
        return f"{outcome.step.seconds:.2f} (not verified)"
    result.samples.setdefault(name, []).append(outcome.step.seconds)
    if outcome.step.script_s is not None:
        result.script_samples.setdefault(name, []).append(outcome.step.script_s)
    if outcome.step.hidden_s is not None:
        result.hidden_samples.setdefault(name, []).append(outcome.step.hidden_s)
    return f"{outcome.step.seconds:.2f}"


def page_errors(app: AppPage, before: str, after: str = "") -> str:
    shown = "; ".join(app.errors()[:2])
    return f"{before}{shown}{after}" if shown else ""


# --- a fresh install -----------------------------------------------------------------------------


@dataclass
class FreshStart:
    """The first clustering after ``make run`` on a fresh machine (``fresh_start``)."""

    rows: int
    warmup_s: float | None = None  # python -m pipeline.warmup on an empty numba cache
    warmup_said: str = ""  # what it said it did to numba's cache
    click_after_s: float | None = None  # the prompt click: seconds after the page opened
    at_once_s: float | None = None  # the first clustering, clicked as soon as the upload showed
    at_once_status: str = ""
    server_warm_s: float | None = None  # the server's own warm-up, as its log says
    after_warm_s: float | None = None  # the first clustering, clicked once the server had warmed
    after_warm_status: str = ""


def fresh_start(browser, rows: int, data: str | None) -> FreshStart:
    """A new machine as ``make run`` leaves it: numba's on-disk cache empty (``NUMBA_CACHE_DIR``
    a new folder) until set-up's ``python -m pipeline.warmup`` (timed), then a new server process
    (the model not loaded), a new workspace, ``rows`` texts uploaded and "Cluster the texts"
    clicked as soon as the upload shows, while the server is still warming up (it starts with
    the process): the unlucky case. Then once more in another new server, clicked once that server
    says it has warmed up (``WARMED_LINE`` in its log), as after a person's few seconds with the
    file chooser. What stays warm from a machine's earlier use: the operating system's file
    cache (torch's libraries, the model's weights)."""
    result = FreshStart(rows=rows)
    with tempfile.TemporaryDirectory(prefix="clusterlab-fresh-start-") as tmp_name:
        tmp = Path(tmp_name)
        source = write_input(rows, data, tmp)
        env = {"NUMBA_CACHE_DIR": str(tmp / "numba-cache")}
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.warmup"],
            cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
        )  # fmt: skip
        result.warmup_s = time.perf_counter() - began
        said = [
            line.removeprefix("warm-up: ") for line in done.stderr.splitlines() if "numba's cache" in line
        ]
        result.warmup_said = said[-1] if said else done.stderr[-300:]
        print(f"  set-up's warm-up: {result.warmup_s:.1f} s ({result.warmup_said})", flush=True)
        for wait in (False, True):
            log = tmp / f"server-{int(wait)}.log"
            with streamlit_server(tmp / f"ws-{int(wait)}", tmp / f"cache-{int(wait)}", env, log) as url:
                seconds, shown, clicked = fresh_clustering(browser, url, source, log if wait else None)
            if wait:
                result.after_warm_s, result.after_warm_status, result.server_warm_s = seconds, shown, clicked
            else:
                result.at_once_s, result.at_once_status, result.click_after_s = seconds, shown, clicked
            print(f"  first clustering {'once warm' if wait else 'at once'}: {seconds:.1f} s", flush=True)
    return result


def fresh_clustering(browser, url: str, source: Path, warmed_log: Path | None) -> tuple[float, str, float]:
    """Open the app, upload ``source`` and time the first clustering; with ``warmed_log``, click
    only once the server's log says it has warmed up. Returns the seconds, the status line, and
    the seconds the click came after the page opened (or, with ``warmed_log``, the server's
    warm-up as it reported it)."""
    app = open_app(browser, url)
    opened = time.perf_counter()
    try:
        warm_s = server_warmed(warmed_log) if warmed_log else None
        app.timed(lambda: app.find("file_input").set_input_files(str(source)))
        clicked = time.perf_counter() - opened
        first = app.timed(lambda: app.find("cluster_button").click(), timeout_s=FIRST_RUN_TIMEOUT_S)
        if not app.present("clustered_note"):
            raise RuntimeError(f"the first clustering did not finish: {app.errors() or 'no result shown'}")
        status = app.page.locator(SELECTORS["run_status"]).all_inner_texts()
        return first.seconds, status[0].strip() if status else "", clicked if warm_s is None else warm_s
    finally:
        app.page.close()


def server_warmed(log: Path, timeout_s: float = 600.0) -> float:
    """The seconds the server's warm-up took, once its log says it is done."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = WARMED_LINE.search(log.read_text(errors="replace"))
        if found:
            return float(found.group(1))
        time.sleep(0.2)
    raise RuntimeError(f"the server did not say it had warmed up within {timeout_s:.0f} s")


def format_fresh(result: FreshStart) -> str:
    def met(seconds: float | None) -> str:
        if seconds is None:
            return "not measured"
        return f"{seconds:.1f} s (goal <= {FRESH_GOAL_S:.0f} s: {'met' if seconds <= FRESH_GOAL_S else 'not met'})"

    lines = [f"a fresh install, {result.rows:,} texts (numba's on-disk cache empty, as on a new machine):"]
    if result.warmup_s is not None:
        lines.append(
            f"  set-up's warm-up (python -m pipeline.warmup, which make run does once): "
            f"{result.warmup_s:.1f} s; it said: {result.warmup_said}"
        )
    clicked = "" if result.click_after_s is None else f", {result.click_after_s:.1f} s after the page opened"
    status = f" [{result.at_once_status}]" if result.at_once_status else ""
    lines.append(
        f"  first clustering in a new server, clicked as soon as the upload showed{clicked} "
        f"(the server still warming up): {met(result.at_once_s)}{status}"
    )
    warm = "" if result.server_warm_s is None else f" (its warm-up took {result.server_warm_s:.1f} s)"
    status = f" [{result.after_warm_status}]" if result.after_warm_status else ""
    lines.append(
        f"  first clustering in a new server, clicked once it had warmed up{warm}: "
        f"{met(result.after_warm_s)}{status}"
    )
    return "\n".join(lines)


# --- the command ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from .bench import DEFAULT_DATA

    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench --browser",
        description="Time the app's interactions in Chromium against streamlit run app.py.",
    )
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[10_000, 100_000], help="texts per run (default 10000 100000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="times each interaction is measured (median; default 5)"
    )
    parser.add_argument(
        "--backend",
        default="auto",
        help=f"embed.backend (default: torch below {LARGE:,} texts, onnx-int8 from there)",
    )
    parser.add_argument(
        "--first-run",
        choices=["auto", "cold", "prebuilt"],
        default="auto",
        help=f"the app's first clustering: cold and compared with the command line, or from a cache "
        f"the command line prebuilt (default: cold below {LARGE:,} texts)",
    )
    parser.add_argument(
        "--data",
        default=str(DEFAULT_DATA) if DEFAULT_DATA.exists() else None,
        help="CSV of short texts (default: ../shared/datasets/banking77.csv, else the sample)",
    )
    parser.add_argument(
        "--fresh-start",
        type=int,
        default=FRESH_ROWS,
        metavar="ROWS",
        help=f"first time the first clustering of ROWS texts on a fresh install: an empty numba "
        f"cache, set-up's warm-up, a new server (default {FRESH_ROWS:,}; 0 = leave it out)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1 or any(r < 100 for r in args.rows):
        parser.error("--repeat must be 1 or more and --rows 100 or more")
    if args.fresh_start and args.fresh_start < 100:
        parser.error("--fresh-start must be 0 (left out) or 100 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not chromium_available():
        raise SystemExit(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    from importlib.metadata import version

    from playwright.sync_api import sync_playwright

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    source = args.data if args.data and Path(args.data).exists() else "the bundled sample (repeated)"
    results = []
    fresh = None
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            print(
                f"browser benchmark: {os.cpu_count()} CPUs, load average {load} (numbers on a busy "
                f"machine are noisy); Chromium {browser.version}, Streamlit {version('streamlit')}; "
                f"data: {source}; {args.repeat} repeats",
                flush=True,
            )
            if args.fresh_start:
                print(f"a fresh install, {args.fresh_start:,} texts:", flush=True)
                try:
                    fresh = fresh_start(browser, args.fresh_start, args.data)
                except Exception as exc:  # the sizes may still run
                    print(f"  failed: {type(exc).__name__}: {exc}"[:2000], flush=True)
                else:
                    print(format_fresh(fresh), flush=True)
            for rows in args.rows:
                print(f"{rows:,} texts:", flush=True)
                started = time.perf_counter()
                try:
                    results.append(bench_size(browser, rows, args))
                except Exception as exc:  # the next size may still run
                    print(f"  failed at {rows:,} texts: {type(exc).__name__}: {exc}"[:2000], flush=True)
                    continue
                results[-1].minutes = (time.perf_counter() - started) / 60
                print(format_size(results[-1]), flush=True)
        finally:
            browser.close()
    print("load average after: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    if args.json:
        Path(args.json).write_text(json.dumps(report_json(results, fresh), indent=1))
    return 0


def report_json(results: list[SizeResult], fresh: FreshStart | None = None) -> dict:
    return {
        "cpus": os.cpu_count(),
        "goals": {str(k): v for k, v in GOALS.items()},
        "ratio_goal": RATIO_GOAL,
        "fresh_start_goal_s": FRESH_GOAL_S,
        "fresh_start": None if fresh is None else asdict(fresh),
        "sizes": [asdict(r) | {"table": table_rows(r)} for r in results],
    }


if __name__ == "__main__":
    sys.exit(main())
