"""Tests for media.package.cmaf (cutting a fragmented MP4 into CMAF pieces) and
media.package.assemble.

Real fragmented MP4s come from FFmpeg: a 6 s 25 fps clip with an IDR frame every 50
frames gives three 2 s fragments. With B-frames, FFmpeg's `+cmaf` mode already writes
signed (version 1) composition offsets so the first frame is presented at 0; without
`+cmaf` it writes unsigned offsets that start at the B-frame delay (two frames, 1024
ticks of 12800), which `split_fragmented_mp4` removes.
"""

from __future__ import annotations

import itertools
import struct
from fractions import Fraction

import av
import pytest

from media.core import ffmpeg
from media.core.errors import MediaError
from media.package.assemble import check_grid
from media.package.boxes import find_all, iter_boxes
from media.package.cmaf import STYP, split_fragmented_file, split_fragmented_mp4
from media.package.isobmff import FragmentInfo, read_fragment, read_init
from tests.media_factory import make_clip

CMAF_FLAGS = "+frag_keyframe+empty_moov+default_base_moof+cmaf"
PLAIN_FRAGMENT_FLAGS = "+frag_keyframe+empty_moov+default_base_moof"
FRAMES = 150
SEGMENT_FRAMES = 50
TIMESCALE = 12_800
"""FFmpeg's MP4 timescale for 25 fps video."""


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("cmaf")
    return make_clip(str(folder / "clip.mp4"), duration_s=6, width=320, height=180,
                     rate="25", audio=False, gop=50)


@pytest.fixture(scope="module")
def fragmented(clip, tmp_path_factory):
    """Fragmented MP4 bytes of the clip, by (movflags, B-frames), made once each."""
    folder = tmp_path_factory.mktemp("frag")
    made: dict[tuple[str, bool], bytes] = {}

    def make(flags: str, bframes: bool) -> bytes:
        if (flags, bframes) not in made:
            out = folder / f"frag-{len(made)}.mp4"
            args = ["-i", clip, "-c:v", "libx264", "-preset", "veryfast", "-g", "50",
                    "-keyint_min", "50", "-sc_threshold", "0"]
            args += [] if bframes else ["-bf", "0"]
            args += ["-movflags", flags, str(out)]
            ffmpeg.run(ffmpeg.ffmpeg_argv(*args))
            made[flags, bframes] = out.read_bytes()
        return made[flags, bframes]

    return make


def trun_versions(segment: bytes) -> set[int]:
    moof = next(b for b in iter_boxes(segment) if b.type == "moof")
    return {segment[t.payload_start] for t in find_all(segment, "traf/trun", moof)}


def decoded_frame_count(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.parametrize("flags, shifted", [(CMAF_FLAGS, False), (PLAIN_FRAGMENT_FLAGS, True)],
                         ids=["cmaf-signed-offsets", "plain-unsigned-offsets"])
def test_split_b_frame_encode_onto_the_grid(fragmented, tmp_path, flags, shifted):
    split = split_fragmented_mp4(fragmented(flags, True))
    assert len(split.segments) == FRAMES // SEGMENT_FRAMES
    assert all(seg.startswith(STYP) for seg in split.segments)
    assert [b.type for b in iter_boxes(split.init)] == ["ftyp", "moov"]
    if shifted:
        # B-frame delay of x264 veryfast (b-pyramid): two frames of 512 ticks
        assert split.presentation_shift_ticks == 2 * TIMESCALE // 25
    else:
        assert split.presentation_shift_ticks == 0
    init = read_init(split.init)
    assert init.timescale == TIMESCALE
    timing = [read_fragment(seg, init) for seg in split.segments]
    assert timing[0].base_decode_ticks == 0
    assert timing[0].earliest_presentation_ticks == 0
    for k, frag in enumerate(timing):
        assert frag.earliest_presentation_ticks == frag.base_decode_ticks
        assert frag.base_decode_ticks == k * SEGMENT_FRAMES * TIMESCALE // 25
        assert frag.sample_count == SEGMENT_FRAMES
        assert frag.first_sample_is_sync
    # The grid check the assembler runs accepts it.
    check_grid(timing, init.timescale, SEGMENT_FRAMES, Fraction(25), FRAMES)
    if shifted:
        assert all(trun_versions(seg) == {1} for seg in split.segments)  # signed offsets
    joined = tmp_path / "joined.mp4"
    joined.write_bytes(split.init + b"".join(split.segments))
    assert decoded_frame_count(joined) == FRAMES


def test_without_b_frames_nothing_is_shifted_or_rewritten(fragmented):
    data = fragmented(CMAF_FLAGS, False)
    split = split_fragmented_mp4(data)
    assert split.presentation_shift_ticks == 0
    boxes = list(iter_boxes(data))
    pairs = [(a, b) for a, b in itertools.pairwise(boxes)
             if a.type == "moof" and b.type == "mdat"]
    assert len(pairs) == len(split.segments) == 3
    for segment, (moof, mdat) in zip(split.segments, pairs, strict=True):
        assert segment == STYP + data[moof.start:mdat.end]  # byte for byte
    assert split.init == data[:next(b.end for b in boxes if b.type == "moov")]


def test_styp_box_is_a_cmaf_segment_type():
    size, kind, major, minor = struct.unpack(">I4s4sI", STYP[:16])
    assert (size, kind, major, minor) == (len(STYP), b"styp", b"cmfs", 0)
    assert {STYP[i:i + 4] for i in range(16, len(STYP), 4)} == {b"cmfs", b"msdh", b"msix"}


@pytest.mark.parametrize("data, message", [
    (b"", "no 'moov'"),
    (struct.pack(">I4s", 8, b"ftyp") + struct.pack(">I4s", 8, b"moov"), "not fragmented"),
    (struct.pack(">I4s", 8, b"moov") + struct.pack(">I4s", 8, b"mdat"), "no 'moof'"),
])
def test_split_rejects_what_is_not_a_fragmented_mp4(data, message):
    with pytest.raises(MediaError, match=message):
        split_fragmented_mp4(data)


@pytest.mark.parametrize("flags, bframes", [(CMAF_FLAGS, True), (PLAIN_FRAGMENT_FLAGS, True),
                                           (CMAF_FLAGS, False)])
def test_a_file_splits_as_its_bytes_do_one_segment_at_a_time(fragmented, tmp_path, flags,
                                                            bframes):
    data = fragmented(flags, bframes)
    path = tmp_path / "rendition.mp4"
    path.write_bytes(data)
    in_memory, from_file = split_fragmented_mp4(data), split_fragmented_file(str(path))
    assert from_file.init == in_memory.init
    assert from_file.presentation_shift_ticks == in_memory.presentation_shift_ticks
    assert len(from_file.segments) == len(in_memory.segments) == 3
    assert list(from_file.segments) == in_memory.segments
    assert from_file.segments[1:] == in_memory.segments[1:]
    # Segments are read from the file when asked for, not held: a byte changed in the
    # last mdat after the split shows in the last segment read afterwards.
    last_mdat = [b for b in iter_boxes(data) if b.type == "mdat"][-1]
    changed = bytearray(data)
    changed[last_mdat.end - 1] ^= 0xFF
    path.write_bytes(bytes(changed))
    assert from_file.segments[-1][-1] == in_memory.segments[-1][-1] ^ 0xFF
    assert from_file.segments[0] == in_memory.segments[0]


def test_an_empty_file_is_not_an_mp4(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        split_fragmented_file(str(tmp_path / "empty.mp4"))


# --- media.package.assemble -------------------------------------------------------------------


def frag(start_ticks: int, sync: bool = True, samples: int = SEGMENT_FRAMES) -> FragmentInfo:
    return FragmentInfo(base_decode_ticks=start_ticks, duration_ticks=samples * 512,
                        sample_count=samples, first_sample_is_sync=sync,
                        earliest_presentation_ticks=start_ticks)


GRID = [frag(0), frag(25_600), frag(51_200)]
"""Three 2 s segments at 12800 ticks per second."""
HALF_FRAME_TICKS = 256


@pytest.mark.parametrize("timing", [
    GRID,
    [frag(0), frag(25_600 + HALF_FRAME_TICKS - 1), frag(51_200)],  # within half a frame
    [frag(0), frag(25_600), frag(51_200, samples=10)],  # a short last segment
])
def test_check_grid_accepts_segments_on_the_grid(timing):
    check_grid(timing, TIMESCALE, SEGMENT_FRAMES, Fraction(25), FRAMES)


@pytest.mark.parametrize("timing, message", [
    ([frag(0), frag(25_600)], "assembled 2 segments; the grid has 3"),
    ([frag(0), frag(25_600), frag(51_200), frag(76_800)], "assembled 4 segments"),
    ([frag(0), frag(25_600, sync=False), frag(51_200)], "segment 2 does not start with a sync"),
    ([frag(0, sync=False), frag(25_600), frag(51_200)], "segment 1 does not start with a sync"),
    ([frag(0), frag(25_600 + HALF_FRAME_TICKS + 1), frag(51_200)], "segment 2 starts at"),
    ([frag(0), frag(51_200), frag(25_600)], "segment 2 starts at 4.0000 s; the grid says 2"),
    ([frag(512), frag(25_600), frag(51_200)], "segment 1 starts at 0.0400 s"),
])
def test_check_grid_rejects_missing_unsynced_or_misplaced_segments(timing, message):
    with pytest.raises(MediaError, match=message):
        check_grid(timing, TIMESCALE, SEGMENT_FRAMES, Fraction(25), FRAMES)


def test_check_grid_on_a_ntsc_grid():
    # 120 frames at 30000/1001 in a 30000 timescale: 120 × 1001 = 120120 ticks a segment;
    # half a frame is 500.5 ticks.
    timing = [frag(0), frag(120_120), frag(240_240)]
    check_grid(timing, 30_000, 120, Fraction(30000, 1001), 300)
    check_grid([frag(0), frag(120_120), frag(240_240 - 500)], 30_000, 120,
               Fraction(30000, 1001), 300)
    with pytest.raises(MediaError, match="segment 3 starts"):
        check_grid([frag(0), frag(120_120), frag(240_240 - 501)], 30_000, 120,
                   Fraction(30000, 1001), 300)
