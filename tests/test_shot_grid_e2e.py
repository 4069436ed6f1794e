"""A title whose shots change off the even grid, published on a grid cut at its shots.

The title package is a 9 s video of five shots at 256x144 and 25 fps (cuts at 1.6, 4.0,
5.0 and 7.2 s: frames 40, 100, 125 and 180, none on the even 2 s grid but 4.0 s), with
a stereo tone and English subtitles. With 2 s segments (50 frames) and the default
floor of half a segment, every cut becomes a segment boundary:

    frames 0-40 | 40-70 | 70-100 | 100-125 | 125-152 | 152-180 | 180-225

(70 and 152 split the runs up to the next cut in two, as no segment may be longer than
50 frames). Every rendition, the audio and the subtitles share that grid; every video
segment starts with an IDR frame at its planned frame, so an IDR lands on each cut;
HLS's target duration stays 2 and DASH lists the durations in a SegmentTimeline. The
same title with `--segment_grid even` keeps the 2 s grid; x265 and SVT-AV1 put their
IDR frames on the cuts as x264 does. A browser test plays the title in hls.js, dash.js
and shaka-player to the end.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import m3u8
import pytest
from mpegdash.parser import MPEGDASHParser

from tests.browser_support import (  # noqa: F401 (a fixture, found by name)
    DASH_MANIFEST,
    PLAYER_MANIFESTS,
    SiteServer,
    assert_played_to_end,
    conformance_players,
    play_codecs_page,
)
from tests.media_factory import SRT_ENGLISH
from tests.test_shots import _shots

RATE = 25
SEGMENT_S = 2.0
SHOTS = (
    ("testsrc2", "", 1.6),
    ("mandelbrot", "", 2.4),
    ("smptebars", "", 1.0),
    ("testsrc2", "noise=alls=40:allf=t+u", 2.2),
    ("life=mold=10:ratio=0.1:death_color=#C83232:life_color=#00ff00", "", 1.8),
)
CUT_FRAMES = (40, 100, 125, 180)
FRAMES = 225
SHOT_STARTS = (0, 40, 70, 100, 125, 152, 180)
"""The grid planned from the cuts (see the module's docstring)."""
DURATION_S = FRAMES / RATE


def _package(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    _shots(str(folder / "film.mp4"), SHOTS, audio=True)
    (folder / "film-en.srt").write_text(SRT_ENGLISH, encoding="utf-8")
    package = folder / "film.title.json"
    package.write_text(json.dumps({
        "video": "film.mp4",
        "subtitles": [{"uri": "film-en.srt", "language": "eng", "name": "English"}],
    }), encoding="utf-8")
    return str(package)


def _publish(package: str, out: Path, grid: str, chunk_segments: int = 1,
             encoder: str = "x264") -> Path:
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline
    from pipeline.local_runner import LOCAL_RUNNER

    config = JobConfig(output_root=str(out), segment_s=SEGMENT_S,
                       chunk_segments=chunk_segments, ladder="fixed", max_renditions=2,
                       score_vmaf=False, segment_grid=grid,
                       encode=EncodeSettings(preset="ultrafast", encoder=encoder)).validate()
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]),
                      blocking=True) as p:
        build_pipeline(p, [package], config)
    return out / "film"


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> str:
    return _package(tmp_path_factory.mktemp("shot-grid-source"))


@pytest.fixture(scope="module")
def shots_title(package, tmp_path_factory) -> Path:
    return _publish(package, tmp_path_factory.mktemp("shot-grid"), "shots")


def _report(title: Path) -> dict:
    return json.loads((title / "report.json").read_text())


def _video_dirs(title: Path) -> list[Path]:
    return sorted(p for p in (title / "video").iterdir() if p.is_dir())


def _keyframes(track: Path, scratch: Path) -> tuple[list[int], int]:
    """The frames (title frame numbers) that decode as keyframes, and how many decode."""
    whole = scratch / f"{track.name}.mp4"
    whole.write_bytes((track / "init.mp4").read_bytes() + b"".join(
        seg.read_bytes() for seg in sorted(track.glob("seg-*.m4s"))))
    with av.open(str(whole)) as container:
        frames = list(container.decode(video=0))
    return [n for n, frame in enumerate(frames) if frame.key_frame], len(frames)


def _hls_durations(playlist: Path) -> list[Fraction]:
    return [Fraction(str(s.duration)) for s in m3u8.load(str(playlist)).segments]


def test_the_report_says_every_cut_is_a_boundary(shots_title):
    report = _report(shots_title)
    assert report["shots"]["cuts_s"] == [1.6, 4.0, 5.0, 7.2]
    assert report["grid"] == {
        "kind": "shots", "segments": len(SHOT_STARTS), "chunks": len(SHOT_STARTS),
        "min_segment_s": 1.0, "max_segment_s": 1.8, "shot_cuts": 4,
        "boundaries_on_cuts": 4, "chunk_ends_on_cuts": 4, "chunk_ends_moved_onto_cuts": 3}


def test_every_rendition_has_an_idr_frame_on_every_cut(shots_title, tmp_path):
    tracks = _video_dirs(shots_title)
    assert len(tracks) == 2
    for track in tracks:
        keyframes, frames = _keyframes(track, tmp_path)
        assert frames == FRAMES, track.name
        assert keyframes == list(SHOT_STARTS), track.name
        assert set(CUT_FRAMES) <= set(keyframes)


def test_video_audio_and_subtitles_share_the_grid_in_both_manifests(shots_title):
    planned = [Fraction(b - a, RATE) for a, b in zip(SHOT_STARTS, [*SHOT_STARTS[1:], FRAMES],
                                                      strict=True)]
    for track in _video_dirs(shots_title):
        playlist = track / "playlist.m3u8"
        assert _hls_durations(playlist) == planned, track.name
        assert m3u8.load(str(playlist)).target_duration == SEGMENT_S
    subtitles = next((shots_title / "subtitles").iterdir()) / "playlist.m3u8"
    assert _hls_durations(subtitles) == planned
    audio = next((shots_title / "audio").iterdir()) / "playlist.m3u8"
    audio_starts = [sum(_hls_durations(audio)[:k], Fraction(0)) for k in range(len(planned))]
    for k, start in enumerate(audio_starts):  # the first AAC frame at or after the video's
        video_start = Fraction(SHOT_STARTS[k], RATE)
        assert video_start - Fraction(1, 1000) <= start < video_start + Fraction(1024, 48000)

    mpd = MPEGDASHParser.parse(str(shots_title / DASH_MANIFEST))
    timelines = {}
    for adaptation in mpd.periods[0].adaptation_sets:
        if adaptation.content_type != "video":
            continue
        for representation in adaptation.representations:
            template = representation.segment_templates[0]
            durations = []
            for entry in template.segment_timelines[0].Ss:
                durations += [Fraction(entry.d, template.timescale)] * (1 + (entry.r or 0))
            timelines[representation.id] = durations
    assert len(timelines) == 2
    assert all(durations == planned for durations in timelines.values())


def test_the_even_grid_keeps_two_second_segments(package, tmp_path):
    title = _publish(package, tmp_path / "even", "even")
    assert "grid" in _report(title) and _report(title)["grid"]["kind"] == "even"
    assert _report(title)["grid"]["chunk_ends_on_cuts"] == 1  # 4.0 s is on the grid
    for track in _video_dirs(title):
        durations = _hls_durations(track / "playlist.m3u8")
        assert durations == [Fraction(2)] * 4 + [Fraction(1)]
        assert _keyframes(track, tmp_path)[0] == [0, 50, 100, 150, 200]


def test_chunks_of_three_segments_end_early_on_cuts(package, tmp_path):
    title = _publish(package, tmp_path / "three", "shots", chunk_segments=3)
    grid = _report(title)["grid"]
    # chunks of segments 0-2 (ending on the cut at frame 100), 3-5 (on 180), then 6
    assert (grid["chunks"], grid["chunk_ends_on_cuts"]) == (3, 2)
    for track in _video_dirs(title):
        assert _keyframes(track, tmp_path) == (list(SHOT_STARTS), FRAMES)


@pytest.mark.parametrize("encoder", ["x265", "svtav1"])
def test_hevc_and_av1_put_their_idr_frames_on_the_cuts_too(package, tmp_path, encoder):
    # x265 makes a forced keyframe an IDR frame only with forced-idr
    title = _publish(package, tmp_path / encoder, "shots", chunk_segments=3, encoder=encoder)
    for track in _video_dirs(title):
        assert _keyframes(track, tmp_path) == (list(SHOT_STARTS), FRAMES)


PLAYBACK_RATE = 2
END_TIMEOUT_S = 60
DURATION_TOLERANCE_S = 0.5


@pytest.fixture(scope="module")
def site(conformance_players: Path, shots_title: Path):  # noqa: F811
    with SiteServer({"player": conformance_players, "title": shots_title}) as base_url:
        yield base_url


@pytest.mark.browser
@pytest.mark.usefixtures("chromium")
@pytest.mark.parametrize("player", ["hls", "dash", "shaka"])
def test_players_play_the_shot_grid_to_the_end(player, player_page, site):
    page, messages = player_page
    query = {"player": player, "src": f"/title/{PLAYER_MANIFESTS[player]}", "rate": PLAYBACK_RATE}
    state = play_codecs_page(page, site, query, DURATION_S, DURATION_TOLERANCE_S,
                             END_TIMEOUT_S)
    assert_played_to_end(state, messages, DURATION_S, DURATION_TOLERANCE_S)
