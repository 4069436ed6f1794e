"""An IMF title plays in real Chromium with hls.js, dash.js and shaka-player, offering both
audio languages of its CPL and its IMSC1 subtitles (as WebVTT).

The module runs the pipeline once on a package from tests/imf_factory.py (two segments,
the second an entry point played twice; English and French PCM; English IMSC1) and
drives tests/browser/conformance.html with tests/test_player_conformance.py's `Player`:
the tracks each player lists when ready, then playback to the end at the manifest's
duration (within `DURATION_TOLERANCE_S`) with no player, page or request error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.local_runner import LOCAL_RUNNER
from tests import browser_support
from tests.browser_support import DASH_MANIFEST, SiteServer
from tests.imf_factory import CplSpec, ImfFactory, Res, Seg
from tests.test_browser_playback import dash_duration_s
from tests.test_player_conformance import (
    DURATION_TOLERANCE_S,
    PLAYERS,
    ConformanceSite,
    Player,
    primary_language,
)

TITLE_ID = "Feature_Film-v1"
FRAMES = 96  # 4 s at 24 fps: 48 frames, then frames 48-71 twice
CUES = [(0.5, 1.5, "Hello from the IMF package."), (2.2, 2.8, "Still the first half.")]

conformance_players = browser_support.conformance_players

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]


@pytest.fixture(scope="module")
def imf_title(tmp_path_factory) -> Path:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline

    factory = ImfFactory(str(tmp_path_factory.mktemp("imf-browser")))
    factory.image("v1", "pkg", FRAMES, size="320x180")
    factory.audio("en", "pkg", FRAMES, language="en")
    factory.audio("fr", "pkg", FRAMES, language="fr", frequency=660)
    factory.imsc1("sub", "pkg", FRAMES, CUES, language="en")
    package = factory.package("pkg", [CplSpec("Feature Film", [
        Seg(image=[Res("v1", duration=48)],
            audio=[[Res("en", duration=48)], [Res("fr", duration=48)]],
            subtitles=[Res("sub", duration=48)], markers=[("FFOC", 0)]),
        Seg(image=[Res("v1", entry=48, duration=24, repeat=2)],
            audio=[[Res("en", entry=48, duration=24, repeat=2)],
                   [Res("fr", entry=48, duration=24, repeat=2)]],
            subtitles=[Res("sub", entry=48, duration=48)], markers=[("LFOC", 47)]),
    ], version="v1")])
    out = tmp_path_factory.mktemp("imf-browser-out")
    config = JobConfig(output_root=str(out), ladder="fixed", max_renditions=2,
                       chunk_segments=1, segment_s=2, score_vmaf=False,
                       encode=EncodeSettings(preset="veryfast")).validate()
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]),
                      blocking=True) as pipeline:
        outputs = build_pipeline(pipeline, [package], config)
        assert_that(outputs.published | beam.Map(lambda t: t.title_id), equal_to([TITLE_ID]))
    return out / TITLE_ID


@pytest.fixture(scope="module")
def imf_site(conformance_players, imf_title):
    with SiteServer({"player": conformance_players, "title": imf_title}) as url:
        yield ConformanceSite(url, imf_title)


@pytest.mark.parametrize(("player_name", "manifest"), PLAYERS)
def test_the_imf_title_plays_with_both_languages_and_subtitles(
        player_page, player_name, manifest, imf_site):
    page, messages = player_page
    player = Player(page, messages, player_name, manifest)
    player.open(imf_site)
    ready = player.state()
    report = player.report()
    assert [primary_language(t["language"]) for t in ready["audioTracks"]] == ["en", "fr"], report
    assert [primary_language(t["language"]) for t in ready["textTracks"]] == ["en"], report
    assert primary_language(ready["activeAudio"]["language"]) == "en", report
    page.evaluate("lfc.play()")
    state = player.play_to_the_end()
    expected_s = float(dash_duration_s(imf_site.title_dir / DASH_MANIFEST))
    assert abs(expected_s - FRAMES / 24) <= DURATION_TOLERANCE_S
    assert abs(state["currentTime"] - expected_s) <= DURATION_TOLERANCE_S, player.report()
