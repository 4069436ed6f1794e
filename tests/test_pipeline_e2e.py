"""The whole pipeline on a generated 12 s clip (3 renditions) and a bad file, in one run."""

from __future__ import annotations

import io
import json
from fractions import Fraction
from pathlib import Path

import av
import m3u8
import pytest
from mpegdash.parser import MPEGDASHParser

from media.package.isobmff import read_fragment, read_init

SOURCE_FRAMES = 300  # 12 s at 25 fps
SEGMENT_FRAMES = 100
TOP_RUNG_MIN_VMAF = 90.0
AAC_FRAME_S = 1024 / 48000


def _renditions(title: Path) -> list[Path]:
    return sorted((title / "video").iterdir())


def _segments(track: Path) -> list[Path]:
    return sorted(track.glob("seg-*.m4s"))


def _decode(track: Path, segment: Path | None = None):
    """Frames (pts in seconds, keyframe flag) of a whole track, or of one of its segments."""
    parts = [track / "init.mp4", *([segment] if segment else _segments(track))]
    data = b"".join(p.read_bytes() for p in parts)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        return [(frame.pts * stream.time_base, frame.key_frame)
                for frame in container.decode(stream)]


def test_three_renditions_from_the_fixed_ladder(e2e_run):
    names = [p.name for p in _renditions(e2e_run.title_dir)]
    assert names == ["234p-250k", "360p-700k", "540p-1600k"]


def test_segment_boundaries_are_identical_across_renditions(e2e_run):
    starts = {}
    for track in _renditions(e2e_run.title_dir):
        init = read_init((track / "init.mp4").read_bytes())
        timing = [read_fragment(s.read_bytes(), init) for s in _segments(track)]
        starts[track.name] = [Fraction(t.earliest_presentation_ticks, init.timescale)
                              for t in timing]
        assert all(t.first_sample_is_sync for t in timing), track.name
    expected = [Fraction(4 * k) for k in range(3)]
    assert all(s == expected for s in starts.values()), starts


def test_each_segment_starts_with_a_keyframe_read_back_with_pyav(e2e_run):
    first_frames = {}
    for track in _renditions(e2e_run.title_dir):
        per_segment = [_decode(track, seg)[0] for seg in _segments(track)]
        assert all(key for _, key in per_segment), (track.name, per_segment)
        first_frames[track.name] = [pts for pts, _ in per_segment]
    assert len({tuple(v) for v in first_frames.values()}) == 1, first_frames


def test_every_rendition_has_the_source_frame_count(e2e_run):
    for track in _renditions(e2e_run.title_dir):
        frames = _decode(track)
        assert len(frames) == SOURCE_FRAMES, track.name
        keyframes = [i for i, (_, key) in enumerate(frames) if key]
        assert keyframes == [0, 100, 200], track.name


def test_playlists_parse_and_name_existing_files(e2e_run):
    title = e2e_run.title_dir
    master = m3u8.load(str(title / "master.m3u8"))
    assert master.is_variant and len(master.playlists) == 3
    assert [m.type for m in master.media] == ["AUDIO"]
    uris = [p.uri for p in master.playlists] + [m.uri for m in master.media]
    for uri in uris:
        media = m3u8.load(str(title / uri))
        assert media.is_endlist and media.playlist_type == "vod"
        assert (title / uri).parent.joinpath(media.segment_map[0].uri).is_file()
        assert len(media.segments) == 3
        for segment in media.segments:
            assert (title / uri).parent.joinpath(segment.uri).is_file(), segment.uri
    for variant in master.playlists:
        info = variant.stream_info
        assert info.average_bandwidth <= info.bandwidth
        assert info.codecs.startswith("avc1.64") and info.codecs.endswith(",mp4a.40.2")
        assert info.frame_rate == 25.0


def test_mpd_parses_and_its_templates_name_existing_files(e2e_run):
    title = e2e_run.title_dir
    mpd = MPEGDASHParser.parse(str(title / "manifest.mpd"))
    sets = mpd.periods[0].adaptation_sets
    assert [s.content_type for s in sets] == ["video", "audio"]
    for aset in sets:
        for rep in aset.representations:
            template = rep.segment_templates[0]
            init = template.initialization.replace("$RepresentationID$", rep.id)
            assert (title / init).is_file(), init
            timeline = template.segment_timelines[0].Ss
            count = sum(1 + (s.r or 0) for s in timeline)
            for number in range(template.start_number, template.start_number + count):
                uri = template.media.replace("$RepresentationID$", rep.id)
                uri = uri.replace("$Number%05d$", f"{number:05d}")
                assert (title / uri).is_file(), uri


def test_top_rung_vmaf_is_above_90_and_logs_are_kept(e2e_run):
    report = json.loads((e2e_run.title_dir / "report.json").read_text())
    video = [t for t in report["tracks"] if t["kind"] == "video"]
    top = max(video, key=lambda t: t["height"])
    assert top["vmaf"]["mean"] > TOP_RUNG_MIN_VMAF, top["vmaf"]
    for track in video:
        assert len(track["chunks"]) == 3
        for chunk in track["chunks"]:
            assert chunk["bitrate_kbps"] > 0
            log = json.loads((e2e_run.title_dir / chunk["vmaf_log"]).read_text())
            # The default --vmaf_subsample (15) comes down to every 5th frame on a
            # 100-frame chunk, so that 20 of its frames are scored.
            assert [f["frameNum"] for f in log["frames"]] == list(range(0, SEGMENT_FRAMES, 5))
            assert chunk["vmaf"]["frame_count"] == len(log["frames"])


def test_audio_is_aac_lc_stereo_on_the_grid(e2e_run):
    track = e2e_run.title_dir / "audio" / "aac-und-0"
    init = read_init((track / "init.mp4").read_bytes())
    assert (init.channels, init.sample_rate_hz, init.audio_object_type) == (2, 48000, 2)
    timing = [read_fragment(s.read_bytes(), init) for s in _segments(track)]
    starts = [t.base_decode_ticks / init.timescale for t in timing]
    assert starts == pytest.approx([0, 4, 8], abs=AAC_FRAME_S)
    total = sum(t.duration_ticks for t in timing) / init.timescale
    assert total == pytest.approx(12.0, abs=2 * AAC_FRAME_S)


def test_bad_input_is_dead_lettered_and_nothing_of_it_published(e2e_run):
    record = json.loads((e2e_run.output_root / "_errors" / "bad.json").read_text())
    assert record["stage"] == "inspect"
    assert record["source_uri"] == str(e2e_run.bad_source)
    assert "cannot open" in record["error"] and "re-export" in record["hint"]
    assert not (e2e_run.output_root / "bad").exists()
    assert not (e2e_run.output_root / "_errors" / "good_clip.json").exists()


def test_work_area_is_cleared_after_publishing(e2e_run):
    assert not (e2e_run.output_root / "_work" / "good_clip").exists()
    assert not list(e2e_run.output_root.rglob("*.partial"))
