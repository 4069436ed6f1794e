"""Deep source inspection: one tiny generated source per finding, and the pure rules.

Every clip is a few seconds of 320x240 made with FFmpeg's lavfi generators, generated
once per session and only when a test asks for it. The moving pattern is `testsrc`, not
`testsrc2`: testsrc2's sharp edges moving vertically look like combing to idet.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from fractions import Fraction

import av
import pytest

from media.core import ffmpeg
from media.core.errors import ToolFailed
from media.inspect import (
    FATAL,
    INFO,
    WARNING,
    AudioSummary,
    IdetCounts,
    SourceFacts,
    audio_dropouts,
    av_sync,
    black_and_frozen,
    colour,
    colour_facts,
    decodability,
    decode_pass,
    ffmpeg_encoders,
    ffmpeg_filters,
    frame_timing,
    inspect_file,
    interlace_decision,
    summarize,
    timing,
)

SIZE = "320x240"
SECONDS = 4
SMOOTH_SOURCE = "gradients=seed=1:n=3:c0=0x3050a0:c1=0xd0a040:c2=0x40b070:speed=0.05"
"""Slowly moving gradients, the same on every run."""


def _ff(*args: str) -> None:
    ffmpeg.run(ffmpeg.ffmpeg_argv(*args))


def _make(
    path: str,
    *,
    vf: str = "",
    af: str = "",
    rate: int | str = 25,
    seconds: float = SECONDS,
    audio_seconds: float | None = None,
    audio: bool = True,
    before_audio: tuple[str, ...] = (),
    video_opts: tuple[str, ...] = (),
    pix_fmt: str = "yuv420p",
    audio_codec: str = "aac",
    source: str = "testsrc",
    size: str = SIZE,
) -> str:
    """testsrc (+ a 440 Hz sine), x264 ultrafast: the base of every clip."""
    spec = source + (":" if "=" in source else "=")
    args = ["-f", "lavfi", "-i", f"{spec}size={size}:rate={rate}:duration={seconds}"]
    if audio:
        length = seconds if audio_seconds is None else audio_seconds
        args += [*before_audio, "-f", "lavfi"]
        args += ["-i", f"sine=frequency=440:sample_rate=48000:duration={length}"]
    if vf:
        args += ["-vf", vf]
    if af:
        args += ["-af", af]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", pix_fmt]
    args += [*video_opts]
    if audio:
        args += ["-c:a", audio_codec, "-b:a", "64k"]
    _ff(*args, path)
    return path


def _cut(src: str, dst: str, keep: float = 0.7) -> str:
    with open(src, "rb") as handle:
        data = handle.read()
    with open(dst, "wb") as handle:
        handle.write(data[: int(len(data) * keep)])
    return dst


def _damage(src: str, dst: str, frames: list[int] | None) -> str:
    """Flip 48 bytes inside the given video frames (None: every frame)."""
    with av.open(src) as container:
        video = container.streams.video[0]
        packets = [(p.pos, p.size) for p in container.demux(video) if p.size]
    with open(src, "rb") as handle:
        data = bytearray(handle.read())
    for index in range(len(packets)) if frames is None else frames:
        pos, size = packets[index]
        start = pos + size // 3
        for i in range(start, min(start + 48, pos + size)):
            data[i] ^= 0x5A
    with open(dst, "wb") as handle:
        handle.write(bytes(data))
    return dst


class Clips:
    """Generated on first use, kept for the session."""

    def __init__(self, root: str):
        self.root = root
        self._made: dict[str, str] = {}

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._made:
            self._made[name] = getattr(self, f"_{name}")(os.path.join(self.root, name))
        return self._made[name]

    def _clean(self, path):
        return _make(path + ".mp4")

    def _clean_mkv(self, path):
        return _make(path + ".mkv")

    def _smooth(self, path):
        # Slowly moving gradients: pictures idet can call progressive with confidence.
        # Colours given: the source picks unset ones at random (its seed is for the
        # points alone), and some random colours read to idet as combing.
        return _make(path + ".mp4", source=SMOOTH_SOURCE, audio=False)

    def _no_audio(self, path):
        return _make(path + ".mp4", audio=False)

    def _vfr(self, path):
        # 50 frames 40 ms apart, then 50 frames 80 ms apart: 6 s, with 6 s of audio.
        return _make(
            path + ".mp4",
            vf="setpts='if(lt(N,50),N*2,100+(N-50)*4)/50/TB'",
            audio_seconds=6,
            video_opts=("-fps_mode", "vfr"),
        )

    def _ms_rounded(self, path):
        # 29.97 fps through Matroska's millisecond timestamps (33/34 ms), then to MPEG-TS.
        _ff("-i", _make(path + ".mkv", rate="30000/1001"), "-c", "copy", path + ".ts")
        return path + ".ts"

    def _interlaced(self, path):
        return _make(
            path + ".mp4",
            rate=50,
            vf="interlace=scan=tff,setfield=tff",
            video_opts=("-flags", "+ilme+ildct", "-field_order", "tt"),
        )

    def _interlaced_unflagged(self, path):
        # Interlaced pictures coded as progressive frames: only idet can tell (at a
        # size interlaced video has: under 480 lines the flag stands).
        return _make(path + ".mp4", rate=50, vf="interlace=scan=tff", size="720x480")

    def _hdr(self, path):
        tags = "color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc:range=tv"
        return _make(path + ".mp4", vf=f"setparams={tags}", pix_fmt="yuv420p10le")

    def _full_range(self, path):
        return _make(path + ".mp4", pix_fmt="yuvj420p")

    def _rotated(self, path):
        # -display_rotation counts counter-clockwise: 270 is a quarter turn clockwise.
        _ff("-display_rotation", "270", "-i", self.clean, "-c", "copy", path + ".mp4")
        return path + ".mp4"

    def _rotate_tag(self, path):
        _ff("-i", self.clean, "-c", "copy", "-metadata:s:v", "rotate=90", path + ".mkv")
        return path + ".mkv"

    def _offset(self, path):
        return _make(path + ".mp4", before_audio=("-itsoffset", "0.5"))

    def _offset_large(self, path):
        return _make(path + ".mp4", before_audio=("-itsoffset", "1.5"))

    def _long_audio(self, path):
        return _make(path + ".mp4", audio_seconds=SECONDS + 2)

    def _truncated(self, path):
        return _cut(self.clean, path + ".mp4")

    def _truncated_faststart(self, path):
        full = _make(path + "-full.mp4", video_opts=("-movflags", "+faststart"))
        return _cut(full, path + ".mp4")

    def _truncated_mkv(self, path):
        return _cut(self.clean_mkv, path + ".mkv")

    def _corrupt(self, path):
        return _damage(self.clean, path + ".mp4", [30, 60])

    def _wrecked(self, path):
        return _damage(self.clean, path + ".mp4", None)

    def _black(self, path):
        return _make(
            path + ".mp4", seconds=5, vf="drawbox=enable='between(t,1,3.5)':color=black:t=fill"
        )

    def _frozen(self, path):
        # Frame 60 (2.4 s) held to the end (5 s): a freeze the filter never sees end.
        return _make(path + ".mp4", seconds=5, vf="loop=loop=75:size=1:start=60,trim=duration=5")

    def _silence(self, path):
        return _make(path + ".mp4", seconds=5, af="volume=enable='between(t,1,3.5)':volume=0")

    def _audio_gap(self, path):
        # Audio timestamps jump 0.3 s at 2 s (Matroska keeps them exactly).
        return _make(path + ".mkv", af="asetpts='PTS+if(gte(T,2),0.3/TB,0)'")

    def _non_square(self, path):
        return _make(path + ".mp4", vf="setsar=4/3")

    def _odd(self, path):
        return _make(path + ".mp4", vf="scale=321:241,setsar=1", pix_fmt="yuv444p")


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> Clips:
    return Clips(str(tmp_path_factory.mktemp("inspection")))


def codes(findings, severity=None) -> set[str]:
    return {f.code for f in findings if severity is None or f.severity == severity}


def one(findings, code):
    matches = [f for f in findings if f.code == code]
    assert len(matches) == 1, findings
    return matches[0]


# --- FFmpeg capabilities ---------------------------------------------------------------------


def test_the_ffmpeg_build_has_the_filters_inspection_uses():
    filters = ffmpeg_filters()
    for name in ("blackdetect", "freezedetect", "silencedetect", "idet", "metadata", "null"):
        assert name in filters
    assert "libx264" in ffmpeg_encoders()
    assert "no-such-filter" not in filters


# --- the clean control ---------------------------------------------------------------------


def test_a_clean_clip_has_only_info_findings(clips):
    findings, facts = inspect_file(clips.clean)
    assert {f.severity for f in findings} <= {INFO}, findings
    assert codes(findings) == {"colour_defaulted"}
    assert facts == SourceFacts(
        color_primaries="smpte170m",
        color_transfer="smpte170m",
        color_matrix="smpte170m",
        color_range="tv",
        audio_offset_s=0.0,
        duration_mismatch_s=0.0,
        frame_rate=Fraction(25),
        video_end_s=pytest.approx(SECONDS),
        shot_cuts_s=(),  # looked for (scdet), none: one shot
    )


def test_each_check_is_quiet_on_the_clean_clip(clips):
    findings, stats = decodability(clips.clean)
    assert findings == []
    assert stats.video_frames_decoded == stats.video_frames_expected == 100
    assert stats.audio_frames_decoded > 0
    assert stats.decode_error_lines == 0 and not stats.truncated
    assert stats.video_end_s == pytest.approx(SECONDS, abs=0.05)
    assert black_and_frozen(clips.clean) == []
    assert audio_dropouts(clips.clean) == []
    assert av_sync(clips.clean) == []
    assert timing(clips.clean) == []


# --- decodability ------------------------------------------------------------------------


@pytest.mark.parametrize("clip", ["truncated", "truncated_faststart", "truncated_mkv"])
def test_a_source_cut_short_is_fatal(clips, clip):
    findings, _ = decodability(getattr(clips, clip))
    truncated = one(findings, "truncated")
    assert truncated.severity == FATAL
    assert "re-export" in truncated.hint.lower() and "upload" in truncated.hint
    assert codes(findings, FATAL) == {"truncated"}


def test_a_cut_mp4_says_how_much_is_missing(clips):
    findings, stats = decodability(clips.truncated_faststart)
    assert "'mdat' box" in one(findings, "truncated").message
    assert stats.truncated
    assert stats.video_frames_decoded < stats.video_frames_expected or (
        stats.video_end_s < 0.8 * SECONDS
    )


def test_inspect_file_stops_at_a_fatal_finding(clips):
    findings, facts = inspect_file(clips.truncated_faststart)
    assert codes(findings) == {"truncated"}
    assert findings[0].severity == FATAL
    assert facts.rotation_deg == 0  # what the demux pass alone can tell


def test_a_few_corrupt_frames_are_a_warning(clips):
    findings, stats = decodability(clips.corrupt)
    errors = one(findings, "decode_errors")
    assert errors.severity == WARNING
    assert "h264" in errors.message
    assert 1 <= stats.decode_error_lines <= 10
    assert stats.first_errors and not stats.truncated
    assert stats.video_frames_decoded == 100


def test_damage_throughout_is_fatal(clips):
    findings, stats = decodability(clips.wrecked)
    assert one(findings, "decode_errors").severity == FATAL
    assert stats.decode_error_lines > 10


@pytest.mark.parametrize("content", [b"this is not a video\n" * 100, b""])
def test_something_that_is_not_media_is_fatal(tmp_path, content):
    path = tmp_path / "notes.mp4"
    path.write_bytes(content)
    findings, _ = decodability(str(path))
    assert [(f.severity, f.code) for f in findings] == [(FATAL, "unreadable")]
    findings, facts = inspect_file(str(path))
    assert codes(findings) == {"unreadable"} and facts == SourceFacts()


def test_audio_only_is_fatal(tmp_path):
    path = str(tmp_path / "tone.m4a")
    _ff("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", path)
    findings, _ = decodability(path)
    assert [(f.severity, f.code) for f in findings] == [(FATAL, "no_video")]


# --- black, frozen, silent -------------------------------------------------------------------


def test_a_black_stretch_is_a_warning_with_its_times(clips):
    findings = black_and_frozen(clips.black)
    black = one(findings, "black")
    assert black.severity == WARNING
    assert black.start_s == pytest.approx(1.0, abs=0.1)
    assert black.end_s == pytest.approx(3.5, abs=0.1)
    assert "frozen" not in codes(findings)  # a black picture is still, but said once


def test_a_frozen_stretch_running_to_the_end_is_a_warning(clips):
    frozen = one(black_and_frozen(clips.frozen), "frozen")
    assert frozen.severity == WARNING
    assert frozen.start_s == pytest.approx(2.4, abs=0.1)
    assert frozen.end_s == pytest.approx(5.0, abs=0.1)


def test_digital_silence_is_a_warning(clips):
    findings = audio_dropouts(clips.silence)
    silence = one(findings, "silence")
    assert silence.severity == WARNING
    assert silence.start_s == pytest.approx(1.0, abs=0.1)
    assert silence.end_s == pytest.approx(3.5, abs=0.1)
    assert codes(findings) == {"silence"}


def test_a_hole_in_the_audio_timestamps_is_a_warning(clips):
    findings = audio_dropouts(clips.audio_gap)
    gap = one(findings, "audio_gap")
    assert gap.severity == WARNING
    assert gap.start_s == pytest.approx(2.0, abs=0.05)
    assert gap.end_s - gap.start_s == pytest.approx(0.3, abs=0.03)
    assert "silence" not in codes(findings)  # a hole is not decoded as silent samples


def test_detector_file_paths_are_escaped_for_the_filtergraph(clips, tmp_path):
    odd_dir = tmp_path / "a:b,c;[d]'e"
    odd_dir.mkdir()
    path = str(odd_dir / "black.mp4")
    shutil.copy(clips.black, path)
    assert codes(black_and_frozen(path)) == {"black"}


# --- A/V sync ---------------------------------------------------------------------------


def test_audio_starting_half_a_second_late_is_noted(clips):
    findings, facts = inspect_file(clips.offset)
    offset = one(findings, "av_offset")
    assert offset.severity == INFO
    assert "after" in offset.message
    # The AAC priming frame sits just before the offset.
    assert facts.audio_offset_s == pytest.approx(0.5, abs=0.03)
    assert "duration_mismatch" not in codes(findings)


def test_audio_starting_over_a_second_late_is_a_warning(clips):
    findings = av_sync(clips.offset_large)
    offset = one(findings, "av_offset")
    assert offset.severity == WARNING
    assert "re-export" in offset.hint


def test_audio_much_longer_than_the_video_is_a_warning(clips):
    findings, facts = inspect_file(clips.long_audio)
    assert one(findings, "duration_mismatch").severity == WARNING
    assert facts.duration_mismatch_s == pytest.approx(2.0, abs=0.05)


def test_no_audio_is_noted(clips):
    findings = av_sync(clips.no_audio)
    assert [(f.severity, f.code) for f in findings] == [(INFO, "no_audio")]
    assert audio_dropouts(clips.no_audio) == []


def _with_audio(summary, start_s, end_s):
    audio = AudioSummary(1, "aac", 48000, start_s=start_s, end_s=end_s, packets=100)
    return dataclasses.replace(summary, audio=(audio,))


@pytest.mark.parametrize(
    ("start_s", "expected"),
    [
        (0.0, []),
        (0.039, []),
        (0.041, [(INFO, "av_offset")]),
        (-0.2, [(INFO, "av_offset")]),
        (0.99, [(INFO, "av_offset")]),
        (1.01, [(WARNING, "av_offset")]),
        (-1.5, [(WARNING, "av_offset")]),
    ],
)
def test_av_offset_thresholds(clips, start_s, expected):
    summary = summarize(clips.clean)
    synthetic = _with_audio(summary, start_s, start_s + summary.video_duration_s)
    assert [(f.severity, f.code) for f in av_sync(synthetic)] == expected


@pytest.mark.parametrize(("extra_s", "warned"), [(0.4, False), (-0.4, False), (0.6, True)])
def test_duration_mismatch_threshold(clips, extra_s, warned):
    summary = summarize(clips.clean)
    synthetic = _with_audio(summary, 0.0, summary.video_duration_s + extra_s)
    assert ("duration_mismatch" in codes(av_sync(synthetic))) is warned


# --- colour ------------------------------------------------------------------------------


def test_hdr10_is_detected_from_its_tags(clips):
    findings, facts = inspect_file(clips.hdr)
    assert one(findings, "hdr").severity == WARNING
    assert "colour_defaulted" not in codes(findings)
    assert "colour_inconsistent" not in codes(findings)
    assert facts.hdr == "pq"
    assert (facts.color_primaries, facts.color_transfer, facts.color_matrix) == (
        "bt2020",
        "smpte2084",
        "bt2020nc",
    )
    assert facts.color_range == "tv"


def test_hlg_is_hdr(clips):
    summary = dataclasses.replace(
        summarize(clips.hdr), color_transfer="arib-std-b67", color_range="unknown"
    )
    assert colour_facts(summary).hdr == "hlg"
    assert "HLG" in one(colour(summary), "hdr").message


def test_untagged_colour_gets_the_default_for_the_resolution(clips):
    summary = summarize(clips.clean)
    sd = colour_facts(summary)
    assert (sd.primaries, sd.transfer, sd.matrix, sd.range) == (
        "smpte170m",
        "smpte170m",
        "smpte170m",
        "tv",
    )
    assert sd.defaulted == ("primaries", "transfer", "matrix", "range")
    hd = colour_facts(dataclasses.replace(summary, width=1280, height=720))
    assert (hd.primaries, hd.transfer, hd.matrix) == ("bt709", "bt709", "bt709")
    assert one(colour(summary), "colour_defaulted").severity == INFO
    full = colour_facts(dataclasses.replace(summary, pix_fmt="yuvj420p"))
    assert full.range == "pc"


@pytest.mark.parametrize(
    ("primaries", "transfer", "matrix", "pix_fmt"),
    [
        ("bt2020", "bt709", "bt2020nc", "yuv420p10le"),  # WCG with an SDR transfer
        ("bt709", "smpte2084", "bt709", "yuv420p10le"),  # PQ on BT.709 primaries
        ("bt2020", "smpte2084", "bt2020nc", "yuv420p"),  # PQ in 8 bits
        ("bt709", "bt709", "bt2020nc", "yuv420p"),  # BT.2020 matrix, BT.709 primaries
    ],
)
def test_colour_tags_that_do_not_fit_together_are_a_warning(
    clips, primaries, transfer, matrix, pix_fmt
):
    summary = dataclasses.replace(
        summarize(clips.clean),
        color_primaries=primaries,
        color_transfer=transfer,
        color_matrix=matrix,
        pix_fmt=pix_fmt,
    )
    assert one(colour(summary), "colour_inconsistent").severity == WARNING


def test_consistent_tags_are_not_questioned(clips):
    summary = dataclasses.replace(
        summarize(clips.clean),
        color_primaries="bt709",
        color_transfer="bt709",
        color_matrix="bt709",
        color_range="tv",
    )
    assert colour(summary) == []
    full = dataclasses.replace(summary, color_range="pc")
    assert [(f.severity, f.code) for f in colour(full)] == [(INFO, "full_range")]


# --- timing and geometry ------------------------------------------------------------------


def test_variable_frame_rate_is_found_from_the_timestamps(clips):
    findings, facts = inspect_file(clips.vfr)
    vfr = one(findings, "vfr")
    assert vfr.severity == WARNING
    assert "from 40.0 ms to" in vfr.message
    assert "constant frame rate" in vfr.hint
    assert facts.variable_frame_rate
    assert "duration_mismatch" not in codes(findings)


def test_timestamps_rounded_to_milliseconds_are_not_variable_frame_rate(clips):
    assert "vfr" not in codes(timing(clips.ms_rounded))


def test_interlaced_flagged_clip(clips):
    findings, facts = inspect_file(clips.interlaced)
    assert one(findings, "interlaced").severity == WARNING
    assert "deinterlace" in one(findings, "interlaced").hint
    assert facts.interlaced and facts.field_order == "tt"
    assert summarize(clips.interlaced).field_order == "tt"


def test_interlaced_pictures_coded_as_progressive_are_found_by_idet(clips):
    assert summarize(clips.interlaced_unflagged).field_order == "progressive"
    findings = timing(clips.interlaced_unflagged)
    assert "idet" in one(findings, "interlaced").message
    _, facts = inspect_file(clips.interlaced_unflagged)
    assert facts.interlaced and facts.field_order == "tt"


@pytest.mark.parametrize("analysis_bin", [0, 25])
def test_the_decode_pass_runs_idet_on_the_frames_it_decodes(clips, analysis_bin):
    # One decode for every check: idet's branch of the pass counts what a process of its
    # own counts, beside the detectors and the complexity analysis encode.
    summary = summarize(clips.interlaced_unflagged)
    result = decode_pass._decode_pass(summary, video_detect=True, audio_detect=True,
                                      analysis_bin=analysis_bin, idet=True)
    alone = frame_timing._idet(summary)
    assert alone is not None and alone.tff > alone.progressive
    assert result.idet == alone
    assert result.video_frames == SECONDS * 25
    assert len(result.analysis_bytes) == (SECONDS * 25 if analysis_bin else 0)
    assert result.ran_video_filters == ("blackdetect", "freezedetect")
    assert not decode_pass._decode_pass(summary, video_detect=True, audio_detect=True).idet


def test_a_failed_interlace_branch_costs_the_source_nothing(clips, monkeypatch, caplog):
    """A fault the idet branch cannot be made to show on real media (a graph FFmpeg
    refuses): the pass runs again without it, and idet in a process of its own."""
    plain_findings, plain = inspect_file(clips.interlaced_unflagged)
    monkeypatch.setattr(decode_pass, "_idet_branch_graph",
                        lambda video_index, chain, meta: f"[0:{video_index}]no_such_filter[main]")
    findings, facts = inspect_file(clips.interlaced_unflagged)
    assert facts == plain and facts.interlaced
    assert [f.message for f in findings] == [f.message for f in plain_findings]
    assert "decoding again without interlace detection" in caplog.text


@pytest.mark.parametrize(
    ("flag", "counts", "expected"),
    [
        ("progressive", IdetCounts(48, 41, 11), (False, "progressive")),  # testsrc2
        ("progressive", IdetCounts(58, 0, 6, 61), (False, "progressive")),  # half black
        ("progressive", IdetCounts(180, 2, 8, 10), (True, "tt")),
        ("unknown", IdetCounts(0, 150, 10, 40), (True, "bb")),
        ("tt", IdetCounts(0, 0, 2, 98), (True, "tt")),  # static: the flag stands
        ("tt", IdetCounts(0, 100, 0), (True, "bb")),  # idet is sure of the order
        ("bb", IdetCounts(2, 3, 190, 5), (False, "progressive")),  # flag only
        ("tt", None, (True, "tt")),
        ("progressive", None, (False, "progressive")),
    ],
)
def test_interlace_decision(flag, counts, expected):
    assert interlace_decision(flag, counts) == expected


def test_a_small_picture_flagged_progressive_stays_progressive_whatever_idet_says():
    # 160x90 testsrc2, flagged progressive: idet read 38 of its 50 frames as tff.
    fooled = IdetCounts(38, 3, 0, 9)
    assert interlace_decision("progressive", fooled, height=90) == (False, "progressive")
    assert interlace_decision("progressive", fooled, height=480) == (True, "tt")
    assert interlace_decision("tt", fooled, height=90) == (True, "tt")  # the flag stands


def test_interlace_flag_on_progressive_pictures_is_noted(clips):
    summary = dataclasses.replace(summarize(clips.smooth), field_order="bb")
    findings = timing(summary)
    assert [(f.severity, f.code) for f in findings] == [(INFO, "interlace_flag_only")]


def test_display_matrix_rotation(clips):
    findings, facts = inspect_file(clips.rotated)
    rotated = one(findings, "rotated")
    assert rotated.severity == INFO
    assert "240x320" in rotated.hint
    assert facts.rotation_deg == 90


def test_legacy_rotate_tag(clips):
    assert summarize(clips.rotate_tag).rotation_deg == 90
    assert codes(timing(clips.rotate_tag)) == {"rotated"}


def test_non_square_pixels(clips):
    findings, facts = inspect_file(clips.non_square)
    pixels = one(findings, "non_square_pixels")
    assert pixels.severity == INFO
    assert "427x240" in pixels.message
    assert facts.sample_aspect_ratio == Fraction(4, 3)


def test_odd_dimensions(clips):
    findings = timing(clips.odd)
    assert [(f.severity, f.code) for f in findings] == [(INFO, "odd_dimensions")]
    assert "321x241" in findings[0].message


def test_a_summary_can_be_shared_between_checks(clips):
    summary = summarize(clips.clean)
    assert summary.video_index == 0 and len(summary.video_pts) == 100
    assert summary.audio[0].sample_rate_hz == 48000
    assert summary.frame_interval_ticks * summary.time_base == Fraction(1, 25)
    assert timing(summary) == [] and av_sync(summary) == []
    assert black_and_frozen(clips.clean, summary=summary) == []


def test_a_decode_that_runs_out_of_time_raises_instead_of_blaming_the_source(clips):
    with pytest.raises(ToolFailed):
        decodability(clips.clean, timeout_s=0.001)
