"""Each chunk writes its own final CMAF segments; assembly reads only the chunks' records.

A 6 s 320x180 clip on a 1 s grid, in three chunks of two segments, each chunk at its own
CRF (a per-title rung's `crf_offsets`: 20, 25 and 30): the chunks are encoded by the
encode stage, the rendition assembled from their records, and the published rendition
(init + every segment, as a player fetches them) decoded end to end by FFmpeg.
"""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import pytest
from apache_beam import pvalue

from media.core import ffmpeg
from media.core.errors import MediaError
from media.core.types import ChunkResult, ChunkTask, EncodeSettings, Rendition, Segment
from media.encode.encoded import slim_result
from media.inspect.probe import inspect_source
from media.package.assemble import check_track_records, segment_chunk
from media.package.boxes import iter_boxes
from media.package.cmaf import sample_entry_key
from media.package.isobmff import read_fragment, read_init
from media.plan.chunking import grid_chunks, segment_grid
from tests.media_factory import make_clip
from transforms import _storage
from transforms.assemble import _AssembleFn
from transforms.encode import _EncodeChunkFn

TICKS_PER_FRAME = 3600
"""90 kHz / 25 fps."""


@pytest.fixture(scope="module")
def tasks(tmp_path_factory) -> list[ChunkTask]:
    folder = tmp_path_factory.mktemp("assemble-chunks")
    clip = make_clip(str(folder / "clip.mp4"), duration_s=6, width=320, height=180,
                     audio=False, gop=25)
    source = inspect_source(clip, clip, "clip")
    grid = segment_grid(source.frame_rate, 1.0, 2)
    chunks = grid_chunks(source.frame_count, grid)
    # CRF 25 plus the change at each chunk's middle frame: 20, 25, 30
    rung = Rendition("180p-900k", 320, 180, 25, 900, 1800,
                     crf_offsets=((25, -5.0), (75, 0.0), (125, 5.0)))
    return [ChunkTask(source=source, rendition=rung, chunk=chunk, chunk_count=len(chunks),
                      grid=grid, output_root=str(folder / "out"), score_vmaf=False,
                      settings=EncodeSettings(preset="veryfast", threads=1))
            for chunk in chunks]


@pytest.fixture(scope="module")
def encoded(tasks) -> list[ChunkResult]:
    return [result for task in tasks for result in _EncodeChunkFn(60).process(task)]


def _decode(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([ffmpeg.ffmpeg_exe(), "-v", "error", "-i", str(path), "-f",
                           "framemd5", "-"], capture_output=True, text=True, check=False)


def test_chunks_at_different_crfs_share_one_init_and_play_through_their_joins(
        tasks, encoded, tmp_path):
    assert [r.attempts[0].crf for r in encoded] == [20, 25, 30]
    assert len({r.init_key for r in encoded}) == 1
    [(key, track)] = list(_AssembleFn(60).process(((("clip", "", "180p-900k")), encoded)))
    assert key == ("clip", "")
    assert [s.number for s in track.segments] == [1, 2, 3, 4, 5, 6]
    assert [s.start_ticks for s in track.segments] == [k * 25 * TICKS_PER_FRAME
                                                       for k in range(6)]
    assert track.codecs.startswith("avc1.64") and track.timescale == 90000
    assert len(track.iframe_ranges) == 6

    title = Path(tasks[0].output_root) / "clip"
    joined = tmp_path / "published.mp4"
    with open(joined, "wb") as out:
        out.write((title / track.init_uri).read_bytes())
        for segment in track.segments:
            data = (title / segment.uri).read_bytes()
            assert len(data) == segment.size_bytes
            out.write(data)
    decoded = _decode(joined)
    frames = [line for line in decoded.stdout.splitlines() if not line.startswith("#")]
    assert decoded.stderr == "" and len(frames) == 150
    # Every frame decodes as it does from the chunk's own segments with its own init:
    # nothing of one chunk's decoder settings leaks into another's.
    for result in encoded:
        alone = tmp_path / f"alone-{result.index}.mp4"
        alone.write_bytes(Path(result.chunk_uri).read_bytes() + b"".join(
            (title / s.uri).read_bytes() for s in result.segments))
        own = [line.split(",")[-1] for line in _decode(alone).stdout.splitlines()
               if not line.startswith("#")]
        assert own == [line.split(",")[-1] for line in frames[50 * result.index:][:50]]


def test_a_chunks_segments_are_numbered_and_timed_on_the_title(tasks, encoded):
    title = Path(tasks[0].output_root) / "clip"
    init = read_init(Path(encoded[1].chunk_uri).read_bytes())
    for segment in encoded[1].segments:  # frames 50-99: segments 3 and 4
        data = (title / segment.uri).read_bytes()
        fragment = read_fragment(data, init)
        assert fragment.first_sample_is_sync
        assert fragment.base_decode_ticks == fragment.earliest_presentation_ticks \
            == segment.start_ticks == (segment.number - 1) * 25 * TICKS_PER_FRAME
        assert int.from_bytes(data[28 + 8 + 8 + 4:][:4], "big") == segment.number  # mfhd


def test_x264_chunks_need_stitchable_to_share_their_parameter_sets(tmp_path):
    """x264's PPS carries pic_init_qp, which follows the CRF unless `stitchable`."""
    clip = make_clip(str(tmp_path / "c.mp4"), duration_s=2, width=160, height=90,
                     audio=False, gop=25)
    keys = {}
    for stitchable in (0, 1):
        for crf in (18, 30):
            out = tmp_path / f"c{crf}-{stitchable}.mp4"
            ffmpeg.run(ffmpeg.ffmpeg_argv(
                "-i", clip, "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf),
                "-x264-params", f"keyint=25:min-keyint=25:scenecut=0:stitchable={stitchable}",
                "-video_track_timescale", "90000", str(out)))
            cut = segment_chunk(str(out), 0, 50, 25, Fraction(25), str(tmp_path))
            keys[stitchable, crf] = cut.init_key
            assert cut.init_key == sample_entry_key(cut.init)
            # stream copy: the segments' media data are the encode's frames, byte for byte
            with av.open(str(out)) as container:
                frames = b"".join(bytes(p) for p in container.demux(video=0) if p.size)
            assert b"".join(seg[box.payload_start:box.end] for seg in cut.segments
                            for box in iter_boxes(seg) if box.type == "mdat") == frames
    assert keys[0, 18] != keys[0, 30]
    assert keys[1, 18] == keys[1, 30]


def test_assembly_reads_no_chunk_media(tasks, encoded, monkeypatch):
    read = []
    monkeypatch.setattr(_storage, "download", lambda *a: pytest.fail("downloaded a chunk"))
    real = _storage.read_bytes
    monkeypatch.setattr(_storage, "read_bytes", lambda uri: read.append(uri) or real(uri))
    [(_, _track)] = list(_AssembleFn(60).process(((("clip", "", "180p-900k")), encoded)))
    assert read == [encoded[0].chunk_uri]  # the first chunk's init segment, nothing else
    assert len(Path(read[0]).read_bytes()) < 2000


def test_chunks_whose_inits_differ_are_a_dead_letter(encoded):
    odd = [encoded[0], dataclasses.replace(encoded[1], init_key="0" * 16), encoded[2]]
    [out] = list(_AssembleFn(60).process(((("clip", "", "180p-900k")), odd)))
    assert isinstance(out, pvalue.TaggedOutput)
    assert "chunks 1" in out.value.error and "one init segment" in out.value.error


def _segments(starts: list[int], duration: int = 25 * TICKS_PER_FRAME) -> tuple[Segment, ...]:
    return tuple(Segment(k + 1, f"video/r/seg-{k + 1:05d}.m4s", start, duration, 100)
                 for k, start in enumerate(starts))


@pytest.mark.parametrize(("segments", "message"), [
    (_segments([0, 90000]), "2 segments; the grid has 3"),
    (_segments([0, 90000, 180000 + 3600]), "segment 3 starts at 2.0400 s"),
    (tuple(dataclasses.replace(s, number=s.number + 1) for s in _segments([0, 90000, 180000])),
     "segment 1 of the track is numbered 2"),
    (tuple(dataclasses.replace(s, sync_first=s.number != 2) for s in _segments([0, 90000,
                                                                                180000])),
     "segment 2 does not start with a sync sample"),
])
def test_track_records_off_the_grid_are_refused(segments, message):
    with pytest.raises(MediaError, match=message):
        check_track_records(segments, 90000, 25, Fraction(25), total_frames=75)
    check_track_records(_segments([0, 90000, 180000]), 90000, 25, Fraction(25), 75)


def test_a_gathered_chunk_record_is_small_whatever_the_titles_length(tasks, encoded):
    """What the rendition and title gathers hold per chunk: a few hundred bytes, not its
    task and the source's whole inspection, and the same for a 2-hour title's chunk."""
    typical = encoded[1]
    assert typical.task is None and encoded[0].task is not None
    size = len(pickle.dumps(typical))
    long_task = dataclasses.replace(tasks[1], chunk_count=600,
                                    chunk=dataclasses.replace(tasks[1].chunk, index=300))
    long_chunk = slim_result(dataclasses.replace(typical, index=300, chunk_count=600),
                             long_task)
    print(f"\npickled gathered chunk record: {size} bytes (chunk 300 of 600: "
          f"{len(pickle.dumps(long_chunk))})")
    assert size < 2048
    assert abs(len(pickle.dumps(long_chunk)) - size) < 16


def test_a_chunk_encoded_fragmented_is_cut_with_no_remux_into_the_same_segments(
        tasks, tmp_path, monkeypatch):
    """The encode writes a fragmented MP4, cut as it is: the same segments, byte for byte,
    and the same init key as a plain MP4 encode stream-copied into one, with no FFmpeg
    process after the encode; its frames are counted from its fragments' headers."""
    from media.encode.chunk import stage_chunk
    from media.encode.commands import encode_chunk_argv
    from media.encode.encoded import count_frames
    from media.encode.scoring import score_encoded
    from media.package import assemble
    from media.plan.rate_control import chunk_crf

    task = tasks[1]
    staged = stage_chunk(task, task.source.source_uri, str(tmp_path))
    rendition = chunk_crf(task.rendition, task.chunk)  # CRF 25 from the chunk's offsets
    cuts = {}
    for fragmented in (False, True):
        out = tmp_path / f"chunk-{fragmented}.mp4"
        ffmpeg.run(ffmpeg.ffmpeg_argv(*encode_chunk_argv(
            staged.path, str(out), task.source, task.chunk, rendition, task.settings,
            task.grid, fragmented=fragmented)))
        assert count_frames(str(out)) == task.chunk.frame_count == 50
        folder = tmp_path / f"cut-{fragmented}"
        folder.mkdir()
        with monkeypatch.context() as patch:
            if fragmented:
                patch.setattr(assemble.ffmpeg, "run",
                              lambda *a, **k: pytest.fail("a remux process ran"))
            cuts[fragmented] = segment_chunk(str(out), task.chunk.start_frame, 50, 25,
                                             Fraction(25), str(folder))
    plain, direct = cuts[False], cuts[True]
    assert direct.init_key == plain.init_key and direct.first_number == plain.first_number == 3
    assert list(direct.segments) == list(plain.segments) and len(direct.segments) == 2
    assert direct.timing == plain.timing
    # libvmaf reads the fragmented encode as it read the plain one: the same score.
    scored = dataclasses.replace(task, vmaf_height=180, settings=dataclasses.replace(
        task.settings, vmaf_backend="libvmaf"))
    scores = [score_encoded(scored, str(tmp_path / f"chunk-{fragmented}.mp4"), staged.path,
                            str(tmp_path / f"vmaf-{fragmented}.json"), 5)[0]
              for fragmented in (False, True)]
    assert scores[0] == scores[1] and scores[0].mean > 80


def test_a_fragmented_chunk_cut_short_is_a_bad_chunk(tasks, encoded, tmp_path):
    from media.encode.encoded import BadChunk, count_frames

    cut_short = tmp_path / "short.mp4"
    fragmented = tmp_path / "whole.mp4"
    title = Path(tasks[0].output_root) / "clip"
    fragmented.write_bytes(Path(encoded[0].chunk_uri).read_bytes() + b"".join(
        (title / s.uri).read_bytes() for s in encoded[0].segments))
    assert count_frames(str(fragmented)) == 50
    cut_short.write_bytes(fragmented.read_bytes()[: fragmented.stat().st_size // 2])
    with pytest.raises(BadChunk, match="unreadable"):
        count_frames(str(cut_short))
