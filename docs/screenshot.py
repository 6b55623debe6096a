"""Take docs/explore.png, docs/search.png, docs/breakdown.png, docs/curate.png and
docs/codebook.png: the Explore page after clustering the bundled sample, a word search on it, its
clusters broken down by channel, what a search found moved to a new cluster and tagged, and a
codebook of four categories with what it misses.

    .venv/bin/python docs/screenshot.py [--out docs/explore.png]

Starts the app with fresh workspace and cache folders (tests/browser.py, as the end-to-end
tests do), clicks "Try the sample", clusters it, opens Explore and saves the whole page at
1400 px wide. Needs Chromium at /usr/bin/chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.browser import launch_chromium, streamlit_server  # noqa: E402

WIDTH = 1400
CODEBOOK = (
    "Billing: charges, refunds and prices | I was charged twice | the price went up\n"
    "Crashes and freezes: the app stops working | it crashes when I open it\n"
    "Sync: data not syncing between devices | my phone and laptop show different numbers\n"
    "Support: contacting the support team | nobody answered my ticket"
)


def explore_screenshot(out: Path) -> None:
    with streamlit_server() as url, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(url)
            page.get_by_role("button", name="Try the sample").click()
            page.get_by_role("button", name="Cluster the texts").click()
            expect(page.get_by_text("Open Explore to see and edit them")).to_be_visible(timeout=180_000)
            page.get_by_test_id("stSidebarNav").get_by_role("link", name="Explore", exact=True).click()
            expect(page.get_by_test_id("stPlotlyChart").first.locator("canvas").first).to_be_attached()
            # Streamlit scrolls inside its main pane: grow the window to the page's height
            # so the screenshot holds the whole page, then let the charts re-lay out.
            height = page.evaluate(
                "() => Math.max(...['stMain', 'stSidebarContent'].map("
                "id => document.querySelector(`[data-testid=${id}]`)?.scrollHeight || 0))"
            )
            page.set_viewport_size({"width": WIDTH, "height": int(height) + 40})
            page.wait_for_timeout(1500)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
            idle = page.get_by_test_id("stApp")
            # a word search: counted per cluster, the rest of the map faded
            search = page.get_by_role("textbox", name="Search")
            search.fill("crash")
            search.press("Enter")
            expect(page.get_by_text("Search 'crash'")).to_be_visible()
            expect(idle).to_have_attribute("data-test-script-state", "notRunning")
            page.wait_for_timeout(1500)
            page.get_by_test_id("stMain").screenshot(path=str(out.with_name("search.png")))
            page.get_by_role("button", name="Clear the search").click()
            # the clusters by channel
            page.get_by_role("tab", name="Breakdown").click()
            page.get_by_role("combobox", name="By the column").click()
            page.get_by_role("option", name="channel", exact=True).click()
            expect(page.get_by_text("What stands out", exact=False).first).to_be_visible()
            expect(idle).to_have_attribute("data-test-script-state", "notRunning")
            page.wait_for_timeout(1500)
            page.get_by_test_id("stMain").screenshot(path=str(out.with_name("breakdown.png")))
            page.get_by_role("tab", name="Map").click()
            # curating: what a search finds, moved to a new cluster and tagged
            search.fill("charged")
            search.press("Enter")
            expect(page.get_by_text("Search 'charged'")).to_be_visible()
            page.get_by_text("Move or tag the texts the search found", exact=True).click()
            found = page.locator(
                '[data-testid="stExpander"]', has_text="Move or tag the texts the search found"
            )
            found.get_by_role("textbox", name="Name of the new cluster").fill("Charged wrongly")
            found.get_by_role("button", name="Move", exact=True).click()
            expect(page.get_by_text("all in 'Charged wrongly'", exact=False)).to_be_visible()
            found.get_by_role("textbox", name="Tag").fill("billing review")
            found.get_by_role("button", name="Add tag").click()
            expect(found.get_by_text("Tags in use: billing review")).to_be_visible()
            expect(idle).to_have_attribute("data-test-script-state", "notRunning")
            page.wait_for_timeout(1000)
            # from the search's answer ("13 matches, all in 'Charged wrongly'") to the forms
            line = page.get_by_text("all in 'Charged wrongly'", exact=False).bounding_box()
            panel = found.bounding_box()
            top = min(line["y"], panel["y"]) - 8
            bottom = panel["y"] + panel["height"] + 8
            page.screenshot(
                path=str(out.with_name("curate.png")),
                clip={"x": panel["x"] - 8, "y": top, "width": panel["width"] + 16, "height": bottom - top},
            )
            page.get_by_role("button", name="Clear the search").click()
            # a codebook of the analyst's own categories, with what it misses
            page.get_by_text("Codebook: your own categories", exact=True).click()
            book = page.locator('[data-testid="stExpander"]', has_text="Codebook: your own categories")
            book.get_by_role("textbox", name="Categories").fill(CODEBOOK)
            book.get_by_role("button", name="Use these categories").click()
            expect(book.get_by_text("texts matched a category", exact=False)).to_be_visible()
            expect(idle).to_have_attribute("data-test-script-state", "notRunning")
            page.wait_for_timeout(1500)
            book.screenshot(path=str(out.with_name("codebook.png")))
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "explore.png")
    args = parser.parse_args()
    explore_screenshot(args.out)
    others = ", ".join(
        str(args.out.with_name(n)) for n in ("search.png", "breakdown.png", "curate.png", "codebook.png")
    )
    print(f"wrote {args.out}, {others}")


if __name__ == "__main__":
    main()
