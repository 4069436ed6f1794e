"""Audio in spans: each span reads only its packets of the source, and the spans join into
one continuous AAC track, with no gap or click at the joins."""

from __future__ import annotations

import io
import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from media.core import ffmpeg
from media.core.types import AudioStreamInfo, AudioTask, SegmentGrid
from media.encode.audio import encode_audio
from media.encode.audio_spans import (
    AAC_FRAME,
    SAMPLE_RATE_HZ,
    audio_spans,
    encode_span,
    segment_frames,
    stage_audio,
)
from media.inspect.probe import inspect_source
from media.package.isobmff import read_fragment, read_init
from tests.media_factory import make_clip

DURATION_S = 10.0
SEGMENT_S = 2.0
JOIN_WINDOW = 2048
"""Samples each side of a join where its SNR is measured."""
JOIN_SNR_MARGIN_DB = 3.0
"""A join's SNR against the source may be this much under the median elsewhere."""
ONE_PASS_SNR_DB = 38.0
"""The spans' track against a one-pass encode of the whole track (measured: 43.7 dB; two
encodes that differ only in where the encoder started)."""
SOURCE_SNR_MARGIN_DB = 1.0
"""The spans' track against the source may be this much under the one-pass encode's."""
READ_TITLE_S = 30.0
MID_SPAN_READ_FRACTION = 0.4
"""A middle 2 s span of a 30 s title reads under this fraction of the source's bytes."""


def _sweep_source(path: Path, width: int = 160, height: int = 90) -> str:
    """10 s of video and a stereo sweep (200 Hz to 4 kHz), as AAC 256 kb/s in MP4."""
    sweep = (f"aevalsrc='0.4*sin(2*PI*(200*t+190*t*t))|0.4*sin(2*PI*(300*t+150*t*t))'"
             f":s=48000:d={DURATION_S}")
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25:duration={DURATION_S}",
        "-f", "lavfi", "-i", sweep, "-c:v", "libx264", "-preset", "ultrafast",
        "-c:a", "aac", "-b:a", "256k", str(path)))
    return str(path)


def _decode(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])


def _snr_db(reference: np.ndarray, signal: np.ndarray) -> float:
    noise = np.sum((signal - reference) ** 2)
    return float(10 * np.log10(np.sum(reference ** 2) / max(noise, 1e-20)))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> str:
    return _sweep_source(tmp_path_factory.mktemp("sweep") / "sweep.mp4")


def test_spans_are_whole_segments_on_the_aac_frame_grid():
    spans = audio_spans(Fraction(12), Fraction(4), span_segments=2)
    # Segments at the first frame at or after 0, 4, 8 s: 0, 188 (4.011 s), 375 (8.0 s).
    assert segment_frames(Fraction(12), Fraction(4)) == [0, 188, 375, 563]
    assert [(s.first_segment, s.end_segment, s.start_frame, s.end_frame) for s in spans] == [
        (0, 2, 0, 375), (2, 3, 375, 563)]
    # A last segment under MIN_TAIL_S is merged: 8.5 s in 2 s segments gives 4, not 5.
    assert len(segment_frames(Fraction(17, 2), Fraction(2))) - 1 == 4
    assert len(audio_spans(Fraction(12), Fraction(4))) == 1  # a short title: one span


def test_spans_follow_a_video_grid_cut_at_shot_changes():
    # video segments from 0, 1.6, 2.8, 4.0, 5.0, 6.08, 7.2 s of a 9 s title
    starts = [Fraction(f, 25) for f in (0, 40, 70, 100, 125, 152, 180)]
    bounds = segment_frames(Fraction(9), starts)
    assert bounds == [0, 75, 132, 188, 235, 285, 338, 422]  # the first frame at or after
    for start, frame in zip(starts, bounds, strict=False):
        assert 0 <= frame * AAC_FRAME / SAMPLE_RATE_HZ - start < Fraction(AAC_FRAME,
                                                                          SAMPLE_RATE_HZ)
    spans = audio_spans(Fraction(9), starts, span_segments=3)
    assert [(s.first_segment, s.end_segment, s.segment_starts) for s in spans] == [
        (0, 3, (0, 75, 132)), (3, 6, (188, 235, 285)), (6, 7, (338,))]
    assert audio_spans(Fraction(9), Fraction(2))[0].segment_starts == ()  # an even grid


def test_spans_join_with_no_gap_or_click(sweep, tmp_path):
    info = inspect_source(sweep, sweep, "sweep")
    index = info.audio[0].stream_index
    spans = encode_audio(sweep, index, DURATION_S, 0.0, SEGMENT_S, 128, str(tmp_path / "a"),
                         span_segments=1)
    whole = encode_audio(sweep, index, DURATION_S, 0.0, SEGMENT_S, 128, str(tmp_path / "b"),
                         span_segments=100)
    assert len(spans.segments) == len(whole.segments) == 5
    # The timeline: each segment where the one before ends, the whole the video's duration.
    starts = [t.base_decode_ticks for t in spans.timing]
    assert starts == [t.base_decode_ticks for t in whole.timing]
    assert all(a.base_decode_ticks + a.duration_ticks == b.base_decode_ticks
               for a, b in zip(spans.timing, spans.timing[1:], strict=False))
    assert sum(t.duration_ticks for t in spans.timing) == DURATION_S * SAMPLE_RATE_HZ
    joined = _decode(spans.init + b"".join(spans.segments))
    one_pass = _decode(whole.init + b"".join(whole.segments))
    assert abs(len(joined) - DURATION_S * SAMPLE_RATE_HZ) < AAC_FRAME
    assert _snr_db(one_pass, joined) > ONE_PASS_SNR_DB
    # Against the source (output time t is source time t): each join as clean as the rest.
    with av.open(sweep) as container:
        source = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    n = min(len(source), len(joined))
    assert (_snr_db(source[AAC_FRAME:n], joined[AAC_FRAME:n])
            > _snr_db(source[AAC_FRAME:n], one_pass[AAC_FRAME:n]) - SOURCE_SNR_MARGIN_DB)
    windows = {start: _snr_db(source[start:start + 2 * JOIN_WINDOW],
                              joined[start:start + 2 * JOIN_WINDOW])
               for start in range(AAC_FRAME, n - 2 * JOIN_WINDOW, 2 * JOIN_WINDOW)}
    elsewhere = float(np.median(list(windows.values())))
    for join in starts[1:]:
        window = slice(join - JOIN_WINDOW, join + JOIN_WINDOW)
        assert _snr_db(source[window], joined[window]) > elsewhere - JOIN_SNR_MARGIN_DB, join
        # No click: the sample-to-sample step at the join is no larger than the sweep's.
        steps = np.abs(np.diff(joined[window]))
        assert steps.max() < 1.5 * np.abs(np.diff(source[window])).max()


class _CountingReader(io.RawIOBase):
    """A seekable file that counts the bytes read through it."""

    def __init__(self, path: str):
        self._file = open(path, "rb")  # noqa: SIM115 - closed with the reader
        self.bytes_read = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def readinto(self, buffer):
        data = self._file.read(len(buffer))
        buffer[:len(data)] = data
        self.bytes_read += len(data)
        return len(data)

    def seek(self, offset, whence=io.SEEK_SET):
        return self._file.seek(offset, whence)

    def tell(self):
        return self._file.tell()

    def close(self):
        self._file.close()
        super().close()


def test_a_middle_span_reads_only_its_byte_range(tmp_path):
    """A 2 s span of a 30 s title (2 s of pre-roll before it): the handle serves the
    container's index and the span's stretch of the file (its video interleaved), not
    the title."""
    source = make_clip(str(tmp_path / "clip.mp4"), duration_s=READ_TITLE_S, width=320,
                       height=180)
    info = inspect_source(source, source, "clip")
    spans = audio_spans(READ_TITLE_S, SEGMENT_S, span_segments=1)
    middle = spans[len(spans) // 2]
    size = Path(source).stat().st_size
    with _CountingReader(source) as handle:
        encoded = encode_span(handle, info.audio[0].stream_index, middle, READ_TITLE_S, 0.0,
                              SEGMENT_S, 128, str(tmp_path))
        read = handle.bytes_read
    assert read < MID_SPAN_READ_FRACTION * size, (read, size)  # measured: 28 %
    assert encoded.packet_bytes < 0.05 * size  # the audio packets copied: about 1 %
    frames = middle.end_frame - middle.start_frame
    assert sum(t.sample_count for t in encoded.timing) == frames
    assert encoded.timing[0].base_decode_ticks == middle.start_frame * AAC_FRAME


def test_the_pipeline_gathers_the_spans_into_one_track(sweep, tmp_path):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that

    from pipeline.local_runner import LOCAL_RUNNER
    from transforms.audio import GatherAudio
    from transforms.encode import AUDIO_SPANS, EncodeChunks

    info = inspect_source(sweep, sweep, "sweep")
    stream: AudioStreamInfo = info.audio[0]
    grid = SegmentGrid(segment_frames=50, frame_rate=info.frame_rate)
    tasks = [AudioTask(source=info, stream=stream, track_id="aac-und-0",
                       output_root=str(tmp_path), grid=grid, span_index=s.index,
                       span_count=s.count, first_segment=s.first_segment,
                       end_segment=s.end_segment, start_frame=s.start_frame,
                       end_frame=s.end_frame)
             for s in audio_spans(info.duration_s, grid.segment_s, span_segments=2)]
    assert len(tasks) == 3

    def check(tracks):
        assert len(tracks) == 1
        (_, track), = tracks
        assert [s.number for s in track.segments] == [1, 2, 3, 4, 5]
        assert sum(s.duration_ticks for s in track.segments) == DURATION_S * SAMPLE_RATE_HZ

    options = PipelineOptions([f"--runner={LOCAL_RUNNER}"])
    with TestPipeline(options=options, blocking=True) as pipeline:
        # As the pipeline does: the spans in the encode stage, then their gather.
        spans = pipeline | beam.Create(tasks) | EncodeChunks()
        out = spans[AUDIO_SPANS] | GatherAudio()
        assert_that(out["main"], check)
    track = tmp_path / "sweep" / "audio" / "aac-und-0"
    init = (track / "init.mp4").read_bytes()
    segments = [p.read_bytes() for p in sorted(track.glob("seg-*.m4s"))]
    info_init = read_init(init)
    timing = [read_fragment(s, info_init) for s in segments]
    assert [t.base_decode_ticks for t in timing] == [
        f * AAC_FRAME for f in segment_frames(DURATION_S, SEGMENT_S)[:-1]]
    assert abs(len(_decode(init + b"".join(segments))) - DURATION_S * SAMPLE_RATE_HZ) < AAC_FRAME


@pytest.mark.parametrize("name, audio_delay_s, audio_s, sounds_s", [
    ("short.mp4", 0.0, 3.0, (0.0, 3.0)),  # spans after its end: silence
    ("late.mp4", 6.0, 4.0, (6.0, 10.0)),  # spans before its start: silence
    ("long.mp4", 0.0, 14.0, (0.0, 10.0)),  # cut at the video's end
])
def test_audio_shorter_later_or_longer_than_the_video(tmp_path, name, audio_delay_s, audio_s,
                                                      sounds_s):
    path = str(tmp_path / name)
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", f"testsrc2=size=160x90:rate=25:duration={DURATION_S}",
        "-itsoffset", str(audio_delay_s), "-f", "lavfi",
        "-i", f"sine=frequency=440:sample_rate=48000:duration={audio_s}",
        "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", path))
    info = inspect_source(path, path, "title")
    encoded = encode_audio(path, info.audio[0].stream_index, float(info.duration_s),
                           info.video_start_s - info.container_start_s, SEGMENT_S, 128,
                           str(tmp_path), span_segments=1)
    assert len(encoded.segments) == 5
    assert sum(t.duration_ticks for t in encoded.timing) == DURATION_S * SAMPLE_RATE_HZ
    samples = _decode(encoded.init + b"".join(encoded.segments))
    loud = np.flatnonzero(np.abs(samples) > 0.05) / SAMPLE_RATE_HZ
    # The priming frame hides the first 21 ms of audio that starts at 0.
    assert loud[0] == pytest.approx(sounds_s[0], abs=AAC_FRAME / SAMPLE_RATE_HZ + 0.001)
    assert loud[-1] == pytest.approx(sounds_s[1], abs=0.003)


def test_a_time_repeated_at_a_stream_copy_join_is_dropped_not_fatal(tmp_path):
    """Two MPEG-TS files joined by the concat protocol repeat an audio time at the join
    (NUT, like every muxer, refuses it): the overlapping packet is dropped, every other
    packet staged, the times after the join kept as they were."""
    parts = []
    for name, seconds in (("a", 1.6), ("b", 2.4)):
        mp4 = make_clip(str(tmp_path / f"{name}.mp4"), seconds, 160, 90)
        ts = str(tmp_path / f"{name}.ts")
        ffmpeg.run(ffmpeg.ffmpeg_argv("-i", mp4, "-c", "copy", ts))
        parts.append(ts)
    joined = str(tmp_path / "joined.ts")
    ffmpeg.run(ffmpeg.ffmpeg_argv("-i", f"concat:{parts[0]}|{parts[1]}", "-c", "copy", joined))
    with av.open(joined) as container:
        source_base = container.streams.audio[0].time_base
        times = [p.pts for p in container.demux(container.streams.audio[0])
                 if p.pts is not None and p.size]
    repeated = sum(1 for a, b in itertools.pairwise(times) if b <= a)
    assert repeated >= 1  # the quirk this test is about
    staged = stage_audio(joined, 1, 0.0, 10.0, str(tmp_path / "packets.nut"), joined)
    assert staged.packets == len(times) - repeated
    with av.open(staged.path) as container:
        staged_base = container.streams.audio[0].time_base
        out = [p.pts for p in container.demux(container.streams.audio[0]) if p.size]
    assert all(b > a for a, b in itertools.pairwise(out))
    assert (out[-1] - out[0]) * staged_base == (max(times) - min(times)) * source_base
