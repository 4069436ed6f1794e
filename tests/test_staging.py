"""Tests for media.encode.staging: an encode worker reads O(chunk) bytes (design invariant 3).

An 8 s 320x180 clip at 25 fps with a keyframe every second; staging the span
[4.0, 5.0) must copy about one GOP (1/8 of the video) and read about that much of the
file, not the whole title.
"""

from __future__ import annotations

import os

import av
import pytest

from media.encode.staging import stage_span
from tests.media_factory import make_clip

SPAN = (4.0, 5.0)
FRAME_S = 0.04
MAX_COPIED_FRACTION = 0.30
"""Bytes copied to stage one 1 s GOP of an 8 s clip: ~1/8 of the video, allow 30 %."""
MAX_READ_FRACTION = 0.50
"""Bytes read from the source (moov index, demuxer buffers, interleaved audio): < 50 %."""


class CountingReader:
    """A read-only binary file that counts the bytes handed out by `read`."""

    def __init__(self, path: str):
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.bytes_read = 0
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.bytes_read += len(data)
        self.reads += 1
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("staging")
    return make_clip(str(folder / "gop25.mp4"), duration_s=8, width=320, height=180,
                     rate="25", audio=True, gop=25)


def decoded_times(path: str) -> list[float]:
    with av.open(path) as container:
        return sorted(float(frame.time) for frame in container.decode(video=0))


def first_packet(path: str):
    with av.open(path) as container:
        return next(p for p in container.demux(video=0) if p.size)


def test_staging_copies_o_chunk_bytes_and_covers_the_span(clip, tmp_path):
    staged = stage_span(clip, *SPAN, str(tmp_path / "span.mkv"))
    size = os.path.getsize(clip)
    assert 0 < staged.bytes_copied < MAX_COPIED_FRACTION * size
    assert staged.packets >= 25  # at least the 25 frames of [4.0, 5.0)
    assert staged.first_pts_s == pytest.approx(4.0, abs=1e-6)  # the keyframe at 4 s
    times = decoded_times(staged.path)
    assert times[0] <= SPAN[0]
    assert any(t >= SPAN[1] - FRAME_S for t in times)  # the last frame of the span, 4.96 s
    wanted = [round(SPAN[0] + i * FRAME_S, 3) for i in range(25)]
    assert set(wanted) <= {round(t, 3) for t in times}
    # stopped near the span's end instead of copying on to the end of the title
    assert times[-1] < SPAN[1] + 0.5


def test_staged_file_starts_with_a_keyframe(clip, tmp_path):
    staged = stage_span(clip, *SPAN, str(tmp_path / "span.mkv"))
    packet = first_packet(staged.path)
    assert packet.is_keyframe
    assert float(packet.pts * packet.time_base) == pytest.approx(4.0, abs=1e-3)


def test_span_inside_a_gop_starts_at_the_keyframe_before_it(clip, tmp_path):
    staged = stage_span(clip, 4.5, 5.0, str(tmp_path / "mid.mkv"))
    times = decoded_times(staged.path)
    assert staged.first_pts_s == pytest.approx(4.0, abs=1e-6)
    assert times[0] == pytest.approx(4.0, abs=1e-3)
    assert first_packet(staged.path).is_keyframe


def test_staging_from_a_file_object_reads_well_under_the_file(clip, tmp_path):
    size = os.path.getsize(clip)
    reader = CountingReader(clip)
    try:
        staged = stage_span(reader, *SPAN, str(tmp_path / "span.mkv"), source_uri=clip)
    finally:
        reader.close()
    assert reader.reads > 0
    assert 0 < reader.bytes_read < MAX_READ_FRACTION * size
    assert staged.bytes_copied < reader.bytes_read
    times = decoded_times(staged.path)
    assert times[0] <= SPAN[0] and any(t >= SPAN[1] - FRAME_S for t in times)


def test_first_span_of_the_title(clip, tmp_path):
    staged = stage_span(clip, 0.0, 1.0, str(tmp_path / "first.mkv"))
    times = decoded_times(staged.path)
    assert times[0] == pytest.approx(0.0, abs=1e-3)
    assert any(t >= 1.0 - FRAME_S for t in times)
    assert staged.bytes_copied < MAX_COPIED_FRACTION * os.path.getsize(clip)


# Sources in the containers users deliver: (file, FFmpeg's video options, frame size,
# the staging container). Matroska leaves the dts of the first packets of a B-frame
# stream unset (the keyframe among them); DNxHD/DNxHR does not go into Matroska; AV1's
# decoder here is libdav1d, which no encoder is named after.
DELIVERY = [
    ("h264.mkv", ["-c:v", "libx264", "-preset", "ultrafast", "-bf", "3", "-g", "25"],
     "160x90", ".mkv"),
    ("hevc10.mkv", ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le",
                    "-x265-params", "keyint=25:min-keyint=25:bframes=3:log-level=error"],
     "160x90", ".mkv"),
    ("av1.mkv", ["-c:v", "libsvtav1", "-preset", "12", "-g", "25"], "160x90", ".mkv"),
    ("dnxhr.mxf", ["-c:v", "dnxhd", "-profile:v", "dnxhr_lb", "-pix_fmt", "yuv422p"],
     "256x144", ".mov"),
]


@pytest.mark.parametrize(("name", "options", "size", "suffix"), DELIVERY,
                         ids=[d[0] for d in DELIVERY])
def test_every_frame_of_the_span_is_staged_from_a_delivery_format(tmp_path, name, options,
                                                                    size, suffix):
    from media.core import ffmpeg

    source = str(tmp_path / name)
    ffmpeg.run(ffmpeg.ffmpeg_argv("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration=3",
                                  *options, source))
    staged = stage_span(source, 1.0 - FRAME_S / 2, 2.0 - FRAME_S / 2, str(tmp_path / "span.mkv"))
    assert staged.path.endswith(suffix)
    assert first_packet(staged.path).is_keyframe
    times = {round(t, 3) for t in decoded_times(staged.path)}
    assert {round(1.0 + i * FRAME_S, 3) for i in range(25)} <= times  # 1.00 ... 1.96 s
