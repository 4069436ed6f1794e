"""A title package's output plays in real Chromium with hls.js, dash.js and shaka-player.

The module runs the pipeline once, in-process, on tests/media_factory.py's title package
(two video renditions, English and French audio, English subtitles) and serves the title
next to tests/browser. Each test opens tests/browser/conformance.html (see conformance.js
for window.lfc) with one player on one manifest: hls.js on master.m3u8, dash.js on
manifest.mpd, and shaka-player on both. Playback starts paused on the lowest rendition with
ABR off; each test then does one thing a viewer does and checks what the player reports
and what Chromium rendered:

- test_plays_to_the_end: the tracks the player lists (renditions, audio languages and
  names, subtitles), English audio and the lowest rendition first, and the end reached
  at the manifest's duration with one buffered range and no error.
- test_switches_rendition: a forced switch to the tallest rendition changes the decoded
  frame height (the <video>'s resize events), and playback still reaches the end.
- test_selects_second_audio: choosing French makes the player report French as the
  active audio, French segments are fetched, and playback still reaches the end.
- test_shows_subtitles: English subtitles turned on once the title is buffered, before
  playback, put the SRT's three cues in one <video> text track in mode "showing", and
  each cue shown while playing is an SRT cue at its SRT time. Expected to fail with
  shaka-player on HLS (see SHAKA_HLS_LATE_SUBTITLES).

- test_starts_without_a_stall, three times per player on fresh pages (a stall at the
  start was intermittent: shaka-player on DASH, two runs in three): playback passes the
  first segments of video and audio with the buffer starting at 0, and the player never
  moves the playhead on its own (a gap jumped or a stall broken shows as a seek away from
  where the playhead stood).

Every test also fails on any player, <video>, page or console error, or failed request.
The DASH player tests depend on the MPD's audio Label (the track names) and on the main
audio set's selectionPriority (dash.js otherwise starts on the alternate language).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from mpegdash.parser import MPEGDASHParser
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from pipeline.local_runner import LOCAL_RUNNER
from tests import browser_support
from tests.browser_support import DASH_MANIFEST, HLS_MANIFEST, SiteServer
from tests.media_factory import make_title_package
from tests.test_browser_playback import dash_duration_s

TITLE_ID = "film"
# The title is 8 s; at 2x a test plays for about 4 s.
PLAYBACK_RATE = 2
# Act inside the first 4 s segment, so that there is a second one to play afterwards.
ACT_AT_S = 1.0
# Generous: Chromium, the player and a busy 2-core machine.
READY_TIMEOUT_S = 60
START_TIMEOUT_S = 30
# A seek that moves the playhead less than this (a frame at 50 fps) jumps over nothing.
SAME_PLACE_S = 0.02
END_TIMEOUT_S = 90
SWITCH_TIMEOUT_S = 30
DURATION_TOLERANCE_S = 0.5
CUE_TOLERANCE_S = 0.1
# Past the first segment of video (4 s) and of audio (4.011 s: whole AAC frames).
STARTED_S = 4.5
# Fresh pages per player in test_starts_without_a_stall.
START_RUNS = 3
# shaka.log.Level.DEBUG, for conformance.js's ?debug=.
SHAKA_LOG_DEBUG = 4

# tests/media_factory.py's SRT_ENGLISH: (start s, end s, text without markup).
SRT_CUES = [
    (0.5, 2.0, "Hello from the first segment."),
    (3.5, 4.5, "This one crosses into the second."),
    (5.0, 7.5, "And the last line."),
]
AUDIO = [("eng", "English"), ("fra", "Français")]
SUBTITLES = [("eng", "English")]


# A fixture, found by name: tests/browser, with shaka-player as well as hls.js and dash.js.
conformance_players = browser_support.conformance_players


@dataclass(frozen=True)
class ConformanceSite:
    base_url: str
    title_dir: Path


@pytest.fixture(scope="module")
def conformance_title(tmp_path_factory) -> Path:
    """The published title folder of make_title_package's film.title.json."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline

    package = make_title_package(str(tmp_path_factory.mktemp("package")))
    out = tmp_path_factory.mktemp("conformance")
    config = JobConfig(
        output_root=str(out),
        ladder="fixed",
        max_renditions=2,
        chunk_segments=1,
        # Not ultrafast: with B-frames, every segment's first frame has a composition
        # offset, as in titles encoded with the default preset.
        encode=EncodeSettings(preset="veryfast"),
        score_vmaf=False,
    ).validate()
    options = PipelineOptions([f"--runner={LOCAL_RUNNER}"])
    with TestPipeline(options=options, blocking=True) as pipeline:
        outputs = build_pipeline(pipeline, [package], config)
        assert_that(
            outputs.published | "PublishedIds" >> beam.Map(lambda t: t.title_id),
            equal_to([TITLE_ID]),
            label="Published",
        )
        assert_that(
            outputs.dead_letters | "DeadIds" >> beam.Map(lambda d: (d.title_id, d.stage)),
            equal_to([]),
            label="NoneDeadLettered",
        )
    title_dir = out / TITLE_ID
    for name in (HLS_MANIFEST, DASH_MANIFEST):
        assert (title_dir / name).is_file(), f"the pipeline wrote no {name} in {title_dir}"
    return title_dir


@pytest.fixture(scope="module")
def conformance_site(conformance_players, conformance_title):
    with SiteServer({"player": conformance_players, "title": conformance_title}) as url:
        yield ConformanceSite(url, conformance_title)


def video_heights(mpd: Path) -> list[int]:
    """The heights of the MPD's video Representations, ascending."""
    manifest = MPEGDASHParser.parse(str(mpd))
    return sorted(
        representation.height or 0
        for period in manifest.periods
        for adaptation_set in period.adaptation_sets
        if adaptation_set.content_type == "video"
        for representation in adaptation_set.representations
    )


def primary_language(tag: str) -> str:
    """ISO 639-2 or 639-1, as conformance.js compares them: "fra", "fre", "fr" -> "fr"."""
    base = tag.lower().split("-")[0]
    return {"eng": "en", "fra": "fr", "fre": "fr"}.get(base, base)


def strip_markup(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)


class Player:
    """One conformance.html page: starts it, waits on it, and reports its state."""

    def __init__(self, page: Page, messages: list[str], player: str, manifest: str) -> None:
        self.page = page
        self.messages = messages
        self.player = player
        self.manifest = manifest
        # The path of every URL the page asks for, in order.
        self.requests: list[str] = []
        page.on("request", lambda r: self.requests.append(re.sub(r"^https?://[^/]+", "", r.url)))

    def open(self, site: ConformanceSite, debug: bool = False) -> None:
        """Load the page; `debug`: shaka-player's debug build, whose log (segment times,
        gaps jumped, stalls) then comes with every failure's report."""
        params: dict[str, object] = {
            "player": self.player,
            "src": f"/title/{self.manifest}",
            "rate": PLAYBACK_RATE,
            "autoplay": 0,
        }
        if debug and self.player == "shaka":
            params["debug"] = SHAKA_LOG_DEBUG
        query = urlencode(params)
        self.page.goto(f"{site.base_url}/player/conformance.html?{query}")
        self.wait_for("lfc.state.ready", READY_TIMEOUT_S)
        self.assert_no_errors()

    def report(self) -> str:
        state = self.page.evaluate(
            "typeof lfc === 'undefined' ? 'conformance.js did not run' : lfc.snapshot()"
        )
        return f"player state: {state}\nconsole:\n" + "\n".join(self.messages)

    def wait_for(self, condition: str, timeout_s: float) -> None:
        """Wait until `condition` holds or the player reports an error, which fails."""
        try:
            self.page.wait_for_function(
                f"lfc.state.errors.length > 0 || ({condition})",
                timeout=timeout_s * 1000,
                polling=50,
            )
        except PlaywrightTimeoutError:
            pytest.fail(f"not within {timeout_s} s: {condition}\n{self.report()}")
        errors = self.page.evaluate("lfc.state.errors")
        assert errors == [], f"while waiting for {condition}:\n{self.report()}"

    def state(self) -> dict:
        return self.page.evaluate("lfc.snapshot()")

    def call(self, function: str, argument: object) -> None:
        self.page.evaluate(f"a => lfc.{function}(a)", argument)

    def play_until(self, seconds: float) -> None:
        self.page.evaluate("lfc.play()")
        self.wait_for(f"lfc.snapshot().currentTime >= {seconds}", START_TIMEOUT_S)

    def play_to_the_end(self) -> dict:
        self.wait_for("lfc.state.ended", END_TIMEOUT_S)
        self.assert_no_errors()
        return self.state()

    def assert_no_errors(self) -> None:
        console_errors = [
            m for m in self.messages if m.startswith(("console.error", "pageerror", "HTTP "))
        ]
        state = self.state()
        assert state["errors"] == [] and console_errors == [], self.report()


PLAYERS = [
    pytest.param("hls", HLS_MANIFEST, id="hls.js"),
    pytest.param("dash", DASH_MANIFEST, id="dash.js"),
    pytest.param("shaka", DASH_MANIFEST, id="shaka-dash"),
    pytest.param("shaka", HLS_MANIFEST, id="shaka-hls"),
]

# shaka-player's TextEngine, with HLS, holds back every WebVTT segment until a video
# segment is appended after the text track was chosen (TextEngine.setTimestampOffset is
# only called from a video append; until then appendBuffer() parks the cues in
# deferredAppends_). Subtitles turned on once the whole title is buffered, as here (the
# title is 8 s), never show; over a longer title, by that code, they would show from the
# next video segment. With DASH, TextEngine gets its offset when the text stream is set
# up. Nothing in master.m3u8 causes it: turned on while video is still being appended,
# the same WebVTT segments show every cue at its SRT time.
SHAKA_HLS_LATE_SUBTITLES = pytest.mark.xfail(
    reason="shaka-player 5.2.12 + HLS: WebVTT appends wait for a later video append",
    raises=AssertionError,  # no cue; not a timeout or a player error
    strict=True,
)
SUBTITLE_PLAYERS = [
    pytest.param(*p.values, id=p.id, marks=SHAKA_HLS_LATE_SUBTITLES) if p.id == "shaka-hls" else p
    for p in PLAYERS
]
ALL_PLAYERS = pytest.mark.parametrize(("player_name", "manifest"), PLAYERS)

pytestmark = [
    pytest.mark.browser,
    # Listed first so that a missing chromium skips before `npm ci` and the pipeline run.
    pytest.mark.usefixtures("chromium"),
]


@pytest.fixture
def player(player_page, player_name, manifest, conformance_site) -> Player:
    page, messages = player_page
    player = Player(page, messages, player_name, manifest)
    player.open(conformance_site)
    return player


@ALL_PLAYERS
def test_plays_to_the_end(player, conformance_site):
    ready = player.state()
    report = player.report()
    heights = video_heights(conformance_site.title_dir / DASH_MANIFEST)
    assert sorted(r["height"] for r in ready["renditions"]) == heights, report
    assert [(primary_language(t["language"]), t["name"]) for t in ready["audioTracks"]] == [
        (primary_language(lang), name) for lang, name in AUDIO
    ], report
    assert [(primary_language(t["language"]), t["name"]) for t in ready["textTracks"]] == [
        (primary_language(lang), name) for lang, name in SUBTITLES
    ], report
    assert primary_language(ready["activeAudio"]["language"]) == "en", report

    player.page.evaluate("lfc.play()")
    state = player.play_to_the_end()
    report = player.report()
    expected_s = float(dash_duration_s(conformance_site.title_dir / DASH_MANIFEST))
    assert abs(state["currentTime"] - expected_s) <= DURATION_TOLERANCE_S, report
    # One buffered range from 0 to the end: no hole between segments.
    assert len(state["buffered"]) == 1, report
    [(start_s, end_s)] = state["buffered"]
    assert start_s <= DURATION_TOLERANCE_S, report
    assert abs(end_s - expected_s) <= DURATION_TOLERANCE_S, report
    lowest = min(ready["renditions"], key=lambda r: r["bitrate"])
    assert [r["height"] for r in state["resizes"]] == [lowest["height"]], report
    assert state["cuesShown"] == [], report


@ALL_PLAYERS
def test_switches_rendition(player):
    renditions = player.state()["renditions"]
    lowest = min(renditions, key=lambda r: r["bitrate"])
    tallest = max(renditions, key=lambda r: r["height"])
    assert lowest["height"] < tallest["height"], player.report()
    player.play_until(ACT_AT_S)
    assert player.state()["videoHeight"] == lowest["height"], player.report()

    player.call("forceRendition", tallest["index"])
    player.wait_for(f"lfc.snapshot().videoHeight === {tallest['height']}", SWITCH_TIMEOUT_S)
    state = player.play_to_the_end()
    report = player.report()
    heights = [r["height"] for r in state["resizes"]]
    assert heights == [lowest["height"], tallest["height"]], report
    assert state["videoHeight"] == tallest["height"], report
    assert state["rendered"][-1]["index"] == tallest["index"], report


@ALL_PLAYERS
def test_selects_second_audio(player):
    requests = player.requests
    french = primary_language("fra")
    player.play_until(ACT_AT_S)
    assert primary_language(player.state()["activeAudio"]["language"]) == "en", player.report()
    assert not any("/aac-fra-" in path for path in requests), player.report()

    player.call("selectAudio", "fra")
    player.wait_for(
        "lfc.state.activeAudio !== null && lfc.state.audioSwitches.length >= 2",
        SWITCH_TIMEOUT_S,
    )
    state = player.play_to_the_end()
    report = player.report() + "\nrequests:\n" + "\n".join(requests)
    assert primary_language(state["activeAudio"]["language"]) == french, report
    assert state["activeAudio"]["name"] == dict(AUDIO)["fra"], report
    assert [primary_language(s["language"]) for s in state["audioSwitches"]] == [
        "en",
        french,
    ], report
    # The player fetched French audio, not just relabelled the English.
    assert any(re.search(r"/aac-fra-[^/]+/seg-\d+\.m4s$", path) for path in requests), report


def assert_shown_cues_are_the_srt_cues(state: dict, report: str) -> None:
    """At least one cue was shown, and each cue shown is an SRT cue at its SRT time (a
    busy CPU may skip a short one)."""
    shown = [(c["startTime"], c["endTime"], strip_markup(c["text"])) for c in state["cuesShown"]]
    assert shown, report
    for start_s, end_s, text in shown:
        assert any(
            text == srt_text
            and abs(start_s - srt_start) <= CUE_TOLERANCE_S
            and abs(end_s - srt_end) <= CUE_TOLERANCE_S
            for srt_start, srt_end, srt_text in SRT_CUES
        ), report


@pytest.mark.parametrize(("player_name", "manifest"), SUBTITLE_PLAYERS)
def test_shows_subtitles(player, conformance_site):
    # Once the title is buffered to its end (all of 8 s loads at once), and before
    # playback starts: the first cue is at 0.5 s.
    end_s = float(dash_duration_s(conformance_site.title_dir / DASH_MANIFEST))
    player.wait_for(
        f"lfc.snapshot().buffered.some(r => r[1] >= {end_s - DURATION_TOLERANCE_S})",
        START_TIMEOUT_S,
    )
    player.call("showSubtitles", "eng")
    player.page.evaluate("lfc.play()")
    state = player.play_to_the_end()
    report = player.report()
    assert state["activeText"] is not None, report
    assert primary_language(state["activeText"]["language"]) == "en", report
    showing = [t for t in state["nativeTextTracks"] if t["mode"] == "showing"]
    assert len(showing) == 1 and primary_language(showing[0]["language"]) == "en", report
    # The player got every cue once (the second is in both WebVTT segments of HLS).
    assert showing[0]["cues"] == len(SRT_CUES), report
    assert_shown_cues_are_the_srt_cues(state, report)


@pytest.mark.parametrize(("player_name", "manifest"), SUBTITLE_PLAYERS)
def test_shows_subtitles_chosen_as_playback_starts(player):
    # The usual case: subtitles turned on as the title opens. (shaka on HLS: the same
    # TextEngine hold-back as above; this 8 s title is buffered whole by then.)
    player.call("showSubtitles", "eng")
    player.page.evaluate("lfc.play()")
    state = player.play_to_the_end()
    report = player.report()
    assert state["activeText"] is not None, report
    assert primary_language(state["activeText"]["language"]) == "en", report
    assert_shown_cues_are_the_srt_cues(state, report)


@pytest.mark.parametrize("run", range(START_RUNS))
@ALL_PLAYERS
def test_starts_without_a_stall(player_page, player_name, manifest, conformance_site, run):
    page, messages = player_page
    player = Player(page, messages, player_name, manifest)
    player.open(conformance_site, debug=True)
    player.page.evaluate("lfc.play()")
    player.wait_for(f"lfc.snapshot().currentTime >= {STARTED_S}", START_TIMEOUT_S)
    player.assert_no_errors()
    state = player.state()
    report = player.report()
    # Every track starts at 0: the buffer has no hole at the start for a player to cross.
    assert state["buffered"] and state["buffered"][0][0] == 0, report
    assert state["stalls"] == [], report
    # A seek that leaves the playhead where it stood skips nothing: shaka-player seeks
    # from 0 to 0 when it flushes or resets a buffer before playback (seen once on CI).
    jumps = [seek for seek in state["seeks"] if abs(seek["to"] - seek["from"]) > SAME_PLACE_S]
    assert jumps == [], report
