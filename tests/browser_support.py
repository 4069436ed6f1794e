"""Browser-test support shared by every test that drives Chromium.

The fixtures live here, once, and tests/conftest.py makes them visible to all tests:
one Playwright instance and one Chromium for the whole session (two sync Playwright
instances cannot run in one thread).
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

BROWSER_DIR = Path(__file__).parent / "browser"
# What player.js loads; kept in step with its LIBRARIES table.
PLAYER_LIBRARIES = (
    "node_modules/hls.js/dist/hls.min.js",
    "node_modules/dashjs/dist/dash.all.min.js",
)
TITLE_DIR_ENV = "LADDERFLOW_TEST_TITLE_DIR"
HLS_MANIFEST = "master.m3u8"
DASH_MANIFEST = "manifest.mpd"

# The network is closed: without the background-networking flags Chromium keeps
# trying to reach Google services; --no-sandbox because the tests may run as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
MIME_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/mp4",
    ".mp4": "video/mp4",
    ".js": "text/javascript",
    ".html": "text/html",
}


def _require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"browser playback tests need `{program}` on PATH")
    return path


class _TestSiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves /player/... from tests/browser and /title/... from the title folder."""

    server: _TestSite
    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        **MIME_TYPES,
    }

    def translate_path(self, path: str) -> str:
        prefix, _, rest = path.lstrip("/").partition("/")
        root = self.server.roots.get(prefix)
        if root is None:
            return ""  # open("") fails, so the base class answers 404
        # The base class drops the query, unquotes and discards ".." against directory.
        self.directory = str(root)
        return super().translate_path("/" + rest)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a failed request shows up as a browser console error instead


class _TestSite(http.server.ThreadingHTTPServer):
    def __init__(self, roots: dict[str, Path]) -> None:
        super().__init__(("127.0.0.1", 0), _TestSiteHandler)
        self.roots = roots


@pytest.fixture(scope="session")
def browser_players() -> Path:
    """tests/browser with hls.js and dash.js installed from its package-lock.json."""
    if not all((BROWSER_DIR / library).is_file() for library in PLAYER_LIBRARIES):
        argv = [_require("npm"), "ci", "--no-audit", "--no-fund"]
        result = subprocess.run(
            argv, cwd=BROWSER_DIR, capture_output=True, text=True, timeout=300, check=False
        )
        if result.returncode != 0:
            pytest.fail(
                f"{' '.join(argv)} in {BROWSER_DIR} failed with {result.returncode}; it "
                f"needs the npm registry once per clone:\n{result.stderr[-2000:]}"
            )
    return BROWSER_DIR


@pytest.fixture(scope="session")
def title_dir(request: pytest.FixtureRequest) -> Path:
    """A title folder holding master.m3u8 and manifest.mpd and their segments."""
    override = os.environ.get(TITLE_DIR_ENV)
    path = Path(override) if override else request.getfixturevalue("published_title")
    missing = [name for name in (HLS_MANIFEST, DASH_MANIFEST) if not (path / name).is_file()]
    if missing:
        source = TITLE_DIR_ENV if override else "the published_title fixture"
        pytest.fail(f"{path} (from {source}) has no {' or '.join(missing)}")
    return path


@pytest.fixture(scope="session")
def site_url(browser_players: Path, title_dir: Path) -> Iterator[str]:
    """Base URL of a localhost server of /player/ (tests/browser) and /title/."""
    site = _TestSite({"player": browser_players, "title": title_dir})
    thread = threading.Thread(target=site.serve_forever, name="test-site", daemon=True)
    thread.start()
    host, port = site.server_address[:2]
    yield f"http://{host}:{port}"
    site.shutdown()
    site.server_close()
    thread.join()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    executable = _require("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def player_page(chromium: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A fresh page, and the console messages and page errors it has logged."""
    context = chromium.new_context()
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"console.{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    # Chromium's console line for a 404 does not name the URL.
    page.on("response", lambda r: r.ok or messages.append(f"HTTP {r.status}: {r.url}"))
    yield page, messages
    context.close()


# What conformance.js loads besides PLAYER_LIBRARIES (tests/test_player_conformance.py).
SHAKA_LIBRARY = "node_modules/shaka-player/dist/shaka-player.compiled.js"


@pytest.fixture(scope="session")
def conformance_players(browser_players: Path) -> Path:
    """tests/browser with hls.js, dash.js and shaka-player, from its package-lock.json.

    browser_players installs only when hls.js or dash.js is missing; a clone installed
    before shaka-player joined package.json installs again here.
    """
    if not (BROWSER_DIR / SHAKA_LIBRARY).is_file():
        argv = [_require("npm"), "ci", "--no-audit", "--no-fund"]
        result = subprocess.run(
            argv, cwd=BROWSER_DIR, capture_output=True, text=True, timeout=300, check=False
        )
        if result.returncode != 0 or not (BROWSER_DIR / SHAKA_LIBRARY).is_file():
            pytest.fail(
                f"{' '.join(argv)} in {BROWSER_DIR} failed with {result.returncode} or "
                f"installed no {SHAKA_LIBRARY}:\n{result.stderr[-2000:]}"
            )
    return browser_players


class SiteServer:
    """`with SiteServer({"player": ..., "title": ...}) as base_url:` serves each folder
    under /<its key>/ on localhost, as site_url does, for as long as the block runs."""

    def __init__(self, roots: dict[str, Path]) -> None:
        self._site = _TestSite(roots)
        self._thread = threading.Thread(
            target=self._site.serve_forever, name="test-site", daemon=True
        )

    def __enter__(self) -> str:
        self._thread.start()
        host, port = self._site.server_address[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc_info: object) -> None:
        self._site.shutdown()
        self._site.server_close()
        self._thread.join()


def play_codecs_page(page, site: str, query: dict, duration_s: float, tolerance_s: float,
                     timeout_s: float) -> dict:
    """Open /player/codecs.html (a title under /title/) with `query` and wait until the
    video ended, an error came, or it played to `duration_s` less `tolerance_s`; the
    page's state (`lf.snapshot()`)."""
    from urllib.parse import urlencode

    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    page.goto(f"{site}/player/codecs.html?{urlencode(query)}")
    with contextlib.suppress(PlaywrightTimeoutError):  # the state says what ran
        page.wait_for_function(
            "lf.state.ended || lf.state.errors.length > 0 || "
            f"lf.snapshot().currentTime >= {duration_s - tolerance_s}",
            timeout=timeout_s * 1000, polling=100)
    return page.evaluate("lf.snapshot()")


PLAYER_MANIFESTS = {"hls": HLS_MANIFEST, "dash": DASH_MANIFEST, "shaka": DASH_MANIFEST}
"""The manifest each player of /player/codecs.html plays."""


def assert_played_to_end(state: dict, messages: list[str], duration_s: float,
                         tolerance_s: float) -> str:
    """Fail unless `state` (`play_codecs_page`) played to the end with no error; the
    state and the console, for further asserts' messages. Reaching the duration counts
    as the end: dash.js, once its capabilities filter has removed an AdaptationSet, now
    and then reaches the last frame without firing `ended`."""
    report = f"state: {state}\nconsole:\n" + "\n".join(messages)
    assert state["errors"] == [], report
    assert state["ended"] or state["currentTime"] >= duration_s - tolerance_s, report
    assert abs(state["currentTime"] - duration_s) <= tolerance_s, report
    return report
