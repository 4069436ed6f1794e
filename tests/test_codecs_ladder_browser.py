"""An `h264,av1` title in real Chromium (which decodes both): hls.js, dash.js and
shaka-player each play AV1 (the selected variant's codec); with AV1 made unsupported in
the page (`MediaSource.isTypeSupported` false for `av01`), each falls back to the H.264
ladder and still plays to the end.

The title is the fixed-ladder `h264,av1` run of tests/test_codecs_ladder_e2e.py, 6 s.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser_support import (  # noqa: F401 (a fixture, found by name)
    DASH_MANIFEST,
    HLS_MANIFEST,
    SiteServer,
    conformance_players,
)
from tests.test_codecs_ladder_e2e import DURATION_S, fixed_title, source  # noqa: F401

PLAYBACK_RATE = 2
END_TIMEOUT_S = 90
DURATION_TOLERANCE_S = 0.5
MANIFESTS = {"hls": HLS_MANIFEST, "dash": DASH_MANIFEST, "shaka": DASH_MANIFEST}


@pytest.fixture(scope="module")
def site(conformance_players: Path, fixed_title: Path):  # noqa: F811
    with SiteServer({"player": conformance_players, "title": fixed_title}) as base_url:
        yield base_url


@pytest.mark.browser
@pytest.mark.usefixtures("chromium")
@pytest.mark.parametrize("player", ["hls", "dash", "shaka"])
@pytest.mark.parametrize("av1", [True, False], ids=["av1-supported", "av1-unsupported"])
def test_players_choose_av1_and_fall_back_to_h264(player, av1, player_page, site):
    page, messages = player_page
    query = {"player": player, "src": f"/title/{MANIFESTS[player]}", "rate": PLAYBACK_RATE}
    if not av1:
        query["noav1"] = 1
    page.goto(f"{site}/player/codecs.html?{urlencode(query)}")
    with contextlib.suppress(PlaywrightTimeoutError):  # the state below says what ran
        page.wait_for_function(
            "lf.state.ended || lf.state.errors.length > 0 || "
            f"lf.snapshot().currentTime >= {DURATION_S - DURATION_TOLERANCE_S}",
            timeout=END_TIMEOUT_S * 1000, polling=100)
    state = page.evaluate("lf.snapshot()")
    report = f"state: {state}\nconsole:\n" + "\n".join(messages)
    # Played to the end: dash.js, once its capabilities filter has removed the AV1
    # AdaptationSet, now and then reaches the last frame without firing `ended` (seen
    # once in CI at 6.0 of 6.0 s); reaching the duration counts as the end.
    assert state["errors"] == [], report
    assert state["ended"] or state["currentTime"] >= DURATION_S - DURATION_TOLERANCE_S, report
    assert abs(state["currentTime"] - DURATION_S) <= DURATION_TOLERANCE_S, report
    assert state["codecs"], report
    if av1:
        assert state["codecs"][-1] == "av01", report
    else:
        assert state["codecs"] and set(state["codecs"]) == {"avc1"}, report
