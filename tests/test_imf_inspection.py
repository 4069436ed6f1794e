"""The decode-based inspection over spans on IMF titles: each span of the composed
timeline staged from the track file ranges it covers, then the same checks, merge and
verdict as any source.

The package: 5 s at 24 fps in two CPL segments (join at 2.5 s); the picture is black
from 1.0 s to 4.0 s (a black track file's frames on both sides of the join), the French
track is digitally silent in the second segment (2.5 s to the end). Spans are forced to
1 s, so the black stretch also crosses span joins. Findings must be on the title's
timeline within `FRAME_S` (one frame), and agree with a whole-file inspection of
FFmpeg's own composition of the CPL (`-f imf`, stream-copied into one file).
"""

from __future__ import annotations

import os

import pytest

from media.core import ffmpeg
from media.core.errors import MediaError
from media.core.types import IngestEvent
from media.ingest.imf.source import ffmpeg_input_args, load_titles
from media.inspect import inspect_file
from media.inspect.complexity import title_complexity
from media.inspect.spans import inspect_by_spans
from tests.imf_factory import CplSpec, ImfFactory, Res, Seg, TrackFile
from transforms.imf import imf_title_head, inspect_imf_title

RATE = 24
FRAMES = 120
SPAN_S = 1.0
FRAME_S = 1 / RATE
BLACK = (1.0, 4.0)
SILENT_FR = (2.5, 5.0)
COMPLEXITY_SHARE = 0.01
"""Complexity bins of the title against the same analysis of FFmpeg's composition (the
same frames, the same spans; only muxing differs)."""


def _silent_audio(imf: ImfFactory, name: str, package: str, frames: int) -> None:
    """A digitally silent PCM track file (the factory's are tones)."""
    path = os.path.join(imf.folder(package), f"{name}.mxf")
    samples = frames * 48000 // RATE
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", "anullsrc=channel_layout=mono:sample_rate=48000",
        "-af", f"atrim=end_sample={samples}", "-c:a", "pcm_s24le", "-ar", "48000",
        "-mxf_audio_edit_rate", f"{RATE}/1", "-f", "mxf_opatom", path))
    imf.files[name] = TrackFile(name, "audio", path, frames, f"{RATE} 1", "fr")


@pytest.fixture(scope="module")
def imf(tmp_path_factory):
    factory = ImfFactory(str(tmp_path_factory.mktemp("imf-inspection")))
    factory.image("pic", "pkg", 48)
    factory.image("blk", "pkg", 72, pattern="color")  # black by default
    factory.audio("en", "pkg", FRAMES, language="en")
    factory.audio("fr", "pkg", 60, language="fr", frequency=660)
    _silent_audio(factory, "mute", "pkg", 60)
    factory.cpl = CplSpec("Dark Film", [
        Seg(image=[Res("pic", duration=24), Res("blk", duration=36)],
            audio=[[Res("en", duration=60)], [Res("fr")]]),
        Seg(image=[Res("blk", entry=36, duration=36), Res("pic", entry=24, duration=24)],
            audio=[[Res("en", entry=60, duration=60)], [Res("mute")]]),
    ])
    factory.package("pkg", [factory.cpl])
    return factory


def _info(imf, tmp_path, package: str = "pkg"):
    pkg, titles = load_titles(os.path.join(imf.root, package))
    return pkg, titles[0], imf_title_head(pkg, titles[0], str(tmp_path / "out"))


def _stretch(findings, code: str):
    found = [f for f in findings if f.code == code]
    assert len(found) == 1, (code, [(f.code, f.start_s, f.end_s) for f in findings])
    return found[0].start_s, found[0].end_s


def _near(got, want) -> bool:
    return all(abs(g - w) <= FRAME_S + 1e-6 for g, w in zip(got, want, strict=True))


def _codes(findings) -> set[str]:
    return {f.code for f in findings}


def test_black_across_a_segment_join_and_a_silent_track_are_found_on_the_timeline(
        imf, tmp_path):
    _, _, info = _info(imf, tmp_path)
    inspected = inspect_imf_title(info, span_s=SPAN_S)
    assert inspected.frame_count == FRAMES
    black = _stretch(inspected.findings, "black")
    assert _near(black, BLACK), black
    silences = [(f.start_s, f.end_s) for f in inspected.findings if f.code == "silence"]
    assert len(silences) == 1 and _near(silences[0], SILENT_FR), silences
    # The second audio track (French, stream #2 after the picture) is the silent one.
    assert "stream #2 " in next(f.message for f in inspected.findings if f.code == "silence")


def test_spans_agree_with_a_whole_decode_of_ffmpegs_composition(imf, tmp_path):
    package, composition, info = _info(imf, tmp_path)
    whole = str(tmp_path / "whole.mkv")
    ffmpeg.run(ffmpeg.ffmpeg_argv(*ffmpeg_input_args(package, composition), "-map", "0",
                                  "-c", "copy", whole))
    findings, facts = inspect_file(whole, analyse=True)
    inspected = inspect_imf_title(info, analyse=True, span_s=SPAN_S)
    assert _codes(inspected.findings) == _codes(findings), (
        sorted(_codes(inspected.findings)), sorted(_codes(findings)))
    for code in ("black", "silence"):
        ours = sorted((f.start_s, f.end_s) for f in inspected.findings if f.code == code)
        theirs = sorted((f.start_s, f.end_s) for f in findings if f.code == code)
        assert len(ours) == len(theirs) and all(
            _near(a, b) for a, b in zip(ours, theirs, strict=True)), (code, ours, theirs)
    # Per-title planning gets the title's complexity: a whole decode's, bin for bin; with
    # short spans, what the same spans over FFmpeg's composition give.
    whole_title = inspect_imf_title(info, analyse=True)
    _same_bins(whole_title, facts.complexity_bins, facts.complexity_bin_frames)
    _, by_spans = inspect_by_spans(whole, span_s=SPAN_S, analyse=True)
    _same_bins(inspected, by_spans.complexity_bins, by_spans.complexity_bin_frames)


def _same_bins(info, bins, bin_frames) -> None:
    assert info.complexity and len(info.complexity) == len(bins)
    assert info.complexity_bin_frames == bin_frames
    for ours, theirs in zip(info.complexity, bins, strict=True):
        assert abs(ours - theirs) <= COMPLEXITY_SHARE * theirs, (info.complexity, bins)


def _damage_frame(path: str, frame: int) -> None:
    """Overwrite part of one JPEG 2000 frame's codestream (found by its SOC and SIZ
    markers) in its MXF track file: the decoder refuses that frame."""
    with open(path, "rb") as handle:
        data = handle.read()
    starts, at = [], 0
    while (at := data.find(b"\xff\x4f\xff\x51", at)) >= 0:
        starts.append(at)
        at += 4
    with open(path, "r+b") as handle:
        handle.seek(starts[frame] + 300)
        handle.write(b"\xff\x93" * 50)


def test_a_damaged_jpeg2000_frame_gives_decode_errors(imf, tmp_path):
    broken = ImfFactory(str(tmp_path / "broken"))
    broken.image("pic", "pkg", 48)
    broken.package("pkg", [CplSpec("Broken Film", [Seg(image=[Res("pic")])])])
    _damage_frame(broken.files["pic"].path, 30)
    _, _, info = _info(broken, tmp_path)
    inspected = inspect_imf_title(info, span_s=SPAN_S)
    errors = [f for f in inspected.findings if f.code == "decode_errors"]
    assert len(errors) == 1 and "jpeg2000" in errors[0].message, [
        (f.code, f.message) for f in inspected.findings]


def test_a_title_whose_frames_mostly_fail_to_decode_is_refused(imf, tmp_path):
    broken = ImfFactory(str(tmp_path / "broken"))
    broken.image("pic", "pkg", 48)
    broken.package("pkg", [CplSpec("Broken Film", [Seg(image=[Res("pic")])])])
    for frame in range(10, 40):
        _damage_frame(broken.files["pic"].path, frame)
    _, _, info = _info(broken, tmp_path)
    with pytest.raises(MediaError) as refused:
        inspect_imf_title(info, span_s=SPAN_S)
    message = str(refused.value)
    assert message.startswith(info.package_uri) and "over 48 video frames" in message, message


def test_the_pipeline_stage_inspects_imf_titles(imf, tmp_path):
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline

    from tests.test_imf_pipeline import _keep, _kept
    from transforms.dead_letter import DEAD_LETTER
    from transforms.imf import ImfTitles

    out_root = str(tmp_path / "out")
    with TestPipeline() as p:
        events = p | beam.Create([IngestEvent(os.path.join(imf.root, "pkg"), "pkg", "")])
        out = events | ImfTitles(out_root, analyse=True, span_s=SPAN_S)
        out["main"] | "KeepMain" >> beam.Map(_keep(str(tmp_path / "main")))
        out[DEAD_LETTER] | "KeepDead" >> beam.Map(_keep(str(tmp_path / "dead")))
    infos, dead = _kept(str(tmp_path / "main")), _kept(str(tmp_path / "dead"))
    assert dead == [] and len(infos) == 1
    info = infos[0]
    assert _near(_stretch(info.findings, "black"), BLACK)
    assert info.frame_count == FRAMES
    # Per-title planning reads it on its segment grid: the black seconds cost far less.
    per_second = title_complexity(info, RATE)
    assert per_second is not None and len(per_second) == FRAMES // RATE
    assert max(per_second[1:4]) < min(per_second[0], per_second[4]) / 10, per_second


def test_audio_meets_at_every_span_join_at_30000_1001(tmp_path):
    """Spans that cut the audio anywhere (0.7 s at 30000/1001 fps): the spans' audio
    packets meet at every join, so no gap is found, as over FFmpeg's composition."""
    ntsc = ImfFactory(str(tmp_path / "ntsc"))
    ntsc.image("pic", "pkg", 90, rate="30000 1001")
    ntsc.audio("en", "pkg", 90, rate="30000 1001")
    ntsc.package("pkg", [CplSpec("Ntsc Film", [
        Seg(image=[Res("pic", duration=45)], audio=[[Res("en", duration=45)]]),
        Seg(image=[Res("pic", entry=45)], audio=[[Res("en", entry=45)]]),
    ], edit_rate="30000 1001")])
    package, composition, info = _info(ntsc, tmp_path)
    whole = str(tmp_path / "whole.mkv")
    ffmpeg.run(ffmpeg.ffmpeg_argv(*ffmpeg_input_args(package, composition), "-map", "0",
                                  "-c", "copy", whole))
    findings, _ = inspect_file(whole)
    inspected = inspect_imf_title(info, span_s=0.7)
    assert "audio_gap" not in _codes(inspected.findings)
    assert _codes(inspected.findings) == _codes(findings), (
        [(f.code, f.message) for f in inspected.findings], [(f.code, f.message) for f in findings])
