"""A published title plays to the end in real Chromium with hls.js and with dash.js.

Each test opens tests/browser/player.html, which plays the title's master.m3u8 (hls.js)
or manifest.mpd (dash.js) muted at PLAYBACK_RATE, starting on the lowest-bitrate
rendition with ABR off. Part-way through, the test forces the tallest rendition and
then checks that the video ended at the manifest's duration, with no player or console
error, and that the forced rendition is what was decoded afterwards (its height is the
<video>'s videoHeight).

The title comes from LADDERFLOW_TEST_TITLE_DIR when set, otherwise from the
`published_title` fixture. The players come from tests/browser/package-lock.json;
`npm ci` installs them on the first run. Run with:

    LADDERFLOW_TEST_TITLE_DIR=/path/to/title python -m pytest tests/test_browser_playback.py
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlencode

import m3u8
import pytest
from mpegdash.parser import MPEGDASHParser
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser_support import DASH_MANIFEST, HLS_MANIFEST

PLAYBACK_RATE = 4
# Force the switch inside the first 4 s segment, so later segments can change.
SWITCH_AT_S = 1.0
START_TIMEOUT_S = 30
END_TIMEOUT_S = 90
DURATION_TOLERANCE_S = 0.5

_ISO_DURATION = re.compile(
    r"P(?:(?P<d>\d+)D)?(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)


def iso8601_duration_s(text: str) -> Fraction:
    """Seconds in an xs:duration without years or months, such as MPD's "PT12.0S"."""
    match = _ISO_DURATION.fullmatch(text.strip())
    if match is None or not any(match.groupdict().values()):
        raise ValueError(f"not an xs:duration of days, hours, minutes, seconds: {text!r}")
    days, hours, minutes = (int(match[k] or 0) for k in "dhm")
    return ((days * 24 + hours) * 60 + minutes) * 60 + Fraction(match["s"] or 0)


def dash_duration_s(mpd: Path) -> Fraction:
    """The MPD's mediaPresentationDuration, in seconds (the MPD read with mpegdash)."""
    duration = MPEGDASHParser.parse(str(mpd)).media_presentation_duration
    if duration is None:
        raise ValueError(f"{mpd} has no mediaPresentationDuration")
    return iso8601_duration_s(duration)


def _media_playlist_duration_s(playlist: Path) -> Fraction:
    # m3u8 reads an EXTINF as a float; its shortest repr is the decimal as written.
    segments = m3u8.loads(playlist.read_text()).segments
    return sum((Fraction(repr(segment.duration)) for segment in segments), Fraction(0))


def hls_duration_s(master: Path) -> Fraction:
    """The longest variant's duration: the sum of its #EXTINF segment durations."""
    variants = [variant.uri for variant in m3u8.loads(master.read_text()).playlists]
    if not variants:
        raise ValueError(f"{master} lists no #EXT-X-STREAM-INF variant")
    return max(_media_playlist_duration_s(master.parent / uri) for uri in variants)


def _report(page: Page, messages: list[str]) -> str:
    state = page.evaluate("typeof lf === 'undefined' ? 'player.js did not run' : lf.snapshot()")
    return f"player state: {state}\nconsole:\n" + "\n".join(messages)


def _wait_for(page: Page, messages: list[str], condition: str, timeout_s: float) -> None:
    try:
        page.wait_for_function(condition, timeout=timeout_s * 1000, polling=50)
    except PlaywrightTimeoutError:
        pytest.fail(f"not within {timeout_s} s: {condition}\n{_report(page, messages)}")


@pytest.mark.browser
# Listed first so that a missing chromium skips before `npm ci` and the pipeline run.
@pytest.mark.usefixtures("chromium")
@pytest.mark.parametrize(
    ("player", "manifest", "manifest_duration_s"),
    [
        pytest.param("hls", HLS_MANIFEST, hls_duration_s, id="hls.js"),
        pytest.param("dash", DASH_MANIFEST, dash_duration_s, id="dash.js"),
    ],
)
def test_plays_to_the_end_across_a_forced_switch(
    player, manifest, manifest_duration_s, player_page, site_url, title_dir
):
    page, messages = player_page
    query = urlencode({"player": player, "src": f"/title/{manifest}", "rate": PLAYBACK_RATE})
    page.goto(f"{site_url}/player/player.html?{query}")
    _wait_for(
        page,
        messages,
        f"lf.state.errors.length > 0 || (lf.state.rendered.length > 0"
        f" && lf.snapshot().currentTime >= {SWITCH_AT_S})",
        START_TIMEOUT_S,
    )
    renditions = page.evaluate("lf.state.renditions")
    assert len(renditions) >= 2, _report(page, messages)
    tallest = max(renditions, key=lambda r: r["height"])
    page.evaluate("i => lf.force(i)", tallest["index"])
    _wait_for(page, messages, "lf.state.ended || lf.state.errors.length > 0", END_TIMEOUT_S)

    state = page.evaluate("lf.snapshot()")
    report = _report(page, messages)
    console_errors = [m for m in messages if m.startswith(("console.error", "pageerror"))]
    assert state["errors"] == [] and console_errors == [], report
    assert state["ended"], report
    expected_s = float(manifest_duration_s(title_dir / manifest))
    assert abs(state["currentTime"] - expected_s) <= DURATION_TOLERANCE_S, report
    # One buffered range from 0 to the end: no hole between segments or renditions.
    assert len(state["buffered"]) == 1, report
    [(start_s, end_s)] = state["buffered"]
    assert start_s <= DURATION_TOLERANCE_S, report
    assert abs(end_s - expected_s) <= DURATION_TOLERANCE_S, report
    lowest = min(renditions, key=lambda r: r["bitrate"])
    assert state["rendered"][0]["index"] == lowest["index"], report
    assert state["rendered"][-1]["index"] == tallest["index"], report
    assert state["videoHeight"] == tallest["height"], report
    assert len({r["index"] for r in state["rendered"]}) >= 2, report
    assert len({r["height"] for r in state["resizes"]}) >= 2, report


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT12.0S", Fraction(12)),
        ("PT0.04S", Fraction(1, 25)),
        ("PT1M30S", Fraction(90)),
        ("PT2H0M1.5S", Fraction(7201.5)),
        ("P1DT1S", Fraction(86401)),
    ],
)
def test_iso8601_duration_s(text, seconds):
    assert iso8601_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "12S", "PT1.5M", "P1Y", "-PT1S"])
def test_iso8601_duration_s_rejects(text):
    with pytest.raises(ValueError):
        iso8601_duration_s(text)
