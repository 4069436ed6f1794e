"""report.html works in real Chromium: its charts decode, hls.js loads, the title plays.

The title is the fixed-ladder 12 s run of the `published_title` fixture (or
LADDERFLOW_TEST_TITLE_DIR, as in tests/test_browser_playback.py), copied to a temporary
folder with a synthetic per-title `plan` added to its report.json, so that the page also
shows the hull chart. Served on localhost; the machine has no network, and any console
error, page error or failed request fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from media.report.html import HULL_SVG, REPORT_HTML, render_report
from tests.browser_support import TITLE_DIR_ENV, _TestSite
from tests.test_browser_playback import _wait_for
from tests.test_report_html import synthetic_plan

pytestmark = pytest.mark.browser

LOAD_TIMEOUT_S = 30
PLAY_PAST_S = 1.0


@pytest.fixture(scope="module")
def report_site(title_dir: Path, tmp_path_factory) -> Iterator[tuple[str, dict]]:
    """URL of report.html of a copy of the title with a per-title plan, and its report."""
    folder = tmp_path_factory.mktemp("report-site") / "title"
    shutil.copytree(title_dir, folder)
    report = json.loads((folder / "report.json").read_text())
    report["plan"] = synthetic_plan()
    for path, data in render_report(report).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    site = _TestSite({"title": folder})
    thread = threading.Thread(target=site.serve_forever, name="report-site", daemon=True)
    thread.start()
    host, port = site.server_address[:2]
    yield f"http://{host}:{port}/title/{REPORT_HTML}", report
    site.shutdown()
    site.server_close()
    thread.join()


def test_the_pipeline_publishes_report_html(title_dir):
    if os.environ.get(TITLE_DIR_ENV):
        pytest.skip(f"{TITLE_DIR_ENV} may name a title from before report.html")
    assert (title_dir / REPORT_HTML).is_file()
    assert (title_dir / "report" / "hls.min.js").is_file()


@pytest.mark.usefixtures("chromium")
def test_report_page_shows_its_charts_and_plays_the_title(report_site, player_page):
    url, report = report_site
    page, messages = player_page
    page.goto(url, wait_until="load")
    videos = [t for t in report["tracks"] if t["kind"] == "video"]

    images = page.evaluate("""() => Promise.all([...document.images].map(img =>
        img.decode().then(() => 'decoded', e => String(e)).then(decoded => ({
            src: img.getAttribute('src'), complete: img.complete,
            width: img.naturalWidth, decoded}))))""")
    assert [i["src"] for i in images] == [HULL_SVG, *(f"report/{t['id']}.svg" for t in videos)]
    assert all(i["complete"] and i["width"] > 0 and i["decoded"] == "decoded"
               for i in images), images
    assert page.evaluate("typeof Hls === 'function' && Hls.isSupported()")

    _wait_for(page, messages, "window.reportPlayer && reportPlayer.levels.length > 0",
              LOAD_TIMEOUT_S)
    levels = page.evaluate("reportPlayer.levels.map(l => l.height)")
    options = page.evaluate(
        "[...document.querySelectorAll('#rendition option')].map(o => o.value)")
    assert sorted(levels) == sorted(t["height"] for t in videos)
    assert options == ["-1", *(str(i) for i in range(len(levels)))]

    page.evaluate("() => { const v = document.getElementById('player'); v.muted = true;"
                  " return v.play(); }")
    _wait_for(page, messages, f"document.getElementById('player').currentTime > {PLAY_PAST_S}",
              LOAD_TIMEOUT_S)
    tallest = str(levels.index(max(levels)))
    page.select_option("#rendition", tallest)
    _wait_for(page, messages, f"reportPlayer.currentLevel === {tallest}", LOAD_TIMEOUT_S)

    errors = [m for m in messages if m.startswith(("console.error", "pageerror", "HTTP"))]
    assert errors == [], "\n".join(messages)
