"""An `h264,av1` title in real Chromium (which decodes both): hls.js, dash.js and
shaka-player each play AV1 (the selected variant's codec); with AV1 made unsupported in
the page (`MediaSource.isTypeSupported` false for `av01`), each falls back to the H.264
ladder and still plays to the end.

The title is the fixed-ladder `h264,av1` run of tests/test_codecs_ladder_e2e.py, 6 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_support import (  # noqa: F401 (a fixture, found by name)
    PLAYER_MANIFESTS,
    SiteServer,
    assert_played_to_end,
    conformance_players,
    play_codecs_page,
)
from tests.test_codecs_ladder_e2e import DURATION_S, fixed_title, source  # noqa: F401

PLAYBACK_RATE = 2
END_TIMEOUT_S = 90
DURATION_TOLERANCE_S = 0.5


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
    query = {"player": player, "src": f"/title/{PLAYER_MANIFESTS[player]}", "rate": PLAYBACK_RATE}
    if not av1:
        query["noav1"] = 1
    state = play_codecs_page(page, site, query, DURATION_S, DURATION_TOLERANCE_S,
                             END_TIMEOUT_S)
    report = assert_played_to_end(state, messages, DURATION_S, DURATION_TOLERANCE_S)
    assert state["codecs"], report
    if av1:
        assert state["codecs"][-1] == "av01", report
    else:
        assert state["codecs"] and set(state["codecs"]) == {"avc1"}, report
