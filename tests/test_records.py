"""Tests for media.core.records: a finished chunk's JSON record, and when a re-run may reuse it."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction

import pytest

from media.core import naming
from media.core.records import chunk_record, result_from_record, task_fingerprint
from media.core.types import (
    ChunkResult,
    ChunkSpan,
    ChunkTask,
    EncodeSettings,
    Rendition,
    SegmentGrid,
    SourceInfo,
    VmafScore,
)

NTSC = Fraction(30000, 1001)
SOURCE = SourceInfo(source_uri="gs://in/film.mov", title_id="film", container="mov",
                    video_codec="prores", width=1920, height=1080, frame_rate=NTSC,
                    frame_count=3600, video_start_s=0.0, pix_fmt="yuv422p10le",
                    size_bytes=987_654_321)
RENDITION = Rendition("720p-3000k", 1280, 720, crf=23.0, maxrate_kbps=3000, bufsize_kbit=6000)
TASK = ChunkTask(source=SOURCE, rendition=RENDITION, chunk=ChunkSpan(2, 720, 360),
                 chunk_count=10, grid=SegmentGrid(120, NTSC, 3), output_root="gs://out",
                 settings=EncodeSettings(preset="medium"), vmaf_height=1080,
                 track_position=1, track_count=6, rendition_count=5)


def result_for(task: ChunkTask, vmaf: VmafScore | None) -> ChunkResult:
    return ChunkResult(
        title_id=task.title_id, rendition_id=task.rendition.rendition_id,
        index=task.chunk.index, chunk_count=task.chunk_count,
        chunk_uri=naming.chunk_uri(task.output_root, task.title_id,
                                   task.rendition.rendition_id, task.chunk.index),
        frame_count=task.chunk.frame_count, size_bytes=4_512_345,
        duration_s=task.chunk.frame_count / task.source.frame_rate,  # 12.012 s exactly
        vmaf=vmaf, vmaf_log_uri=naming.vmaf_log_uri(task.rendition.rendition_id, 2),
        encode_s=41.25, score_s=7.5, task=task, encode_cpu_s=80.5, score_cpu_s=12.25,
    )


VMAF = VmafScore(mean=93.123456789, harmonic_mean=92.9, p5=88.0001, minimum=71.5,
                 frame_count=360)


def through_json(record: dict) -> dict:
    """What a re-run reads: the record as written to storage and parsed back."""
    return json.loads(json.dumps(record))


@pytest.mark.parametrize("vmaf", [VMAF, None], ids=["scored", "unscored"])
def test_round_trip_gives_back_an_equal_result_marked_reused(vmaf):
    original = result_for(TASK, vmaf)
    record = through_json(chunk_record(original, task_fingerprint(TASK)))
    restored = result_from_record(record, TASK)
    assert restored == dataclasses.replace(original, reused=True)
    assert restored.reused is True
    assert restored.duration_s == Fraction(3003, 250)  # 12.012 s exact, not a rounded float
    assert restored.bitrate_kbps == pytest.approx(original.bitrate_kbps, rel=1e-12)
    assert restored.task is TASK


def test_record_is_plain_json_with_an_exact_duration():
    record = chunk_record(result_for(TASK, VMAF), task_fingerprint(TASK))
    assert record["duration_s"] == "3003/250"
    assert record["fingerprint"] == task_fingerprint(TASK)
    assert record["vmaf"]["frame_count"] == 360
    assert through_json(record) == record


def test_fingerprint_is_a_pure_function_of_the_task():
    twin = dataclasses.replace(TASK, settings=EncodeSettings(preset="medium"))
    assert task_fingerprint(TASK) == task_fingerprint(twin) == task_fingerprint(TASK)
    assert len(task_fingerprint(TASK)) == 32
    int(task_fingerprint(TASK), 16)  # hex


def replaced(**changes) -> ChunkTask:
    """TASK with fields of the task, or of its settings/rendition/chunk/source, changed."""
    parts = {"settings": TASK.settings, "rendition": TASK.rendition, "chunk": TASK.chunk,
             "source": TASK.source, "grid": TASK.grid}
    task_changes = {}
    for key, value in changes.items():
        owner, _, name = key.partition("__")
        if name:
            task_changes[owner] = dataclasses.replace(
                task_changes.get(owner, parts[owner]), **{name: value})
        else:
            task_changes[key] = value
    return dataclasses.replace(TASK, **task_changes)


BYTE_DECIDING = {
    "preset": {"settings__preset": "veryfast"},
    "crf": {"rendition__crf": 21.0},
    "maxrate": {"rendition__maxrate_kbps": 3500},
    "bufsize": {"rendition__bufsize_kbit": 3000},
    "width": {"rendition__width": 1152},
    "profile": {"settings__profile": "main"},
    "chunk-start": {"chunk__start_frame": 840},
    "chunk-length": {"chunk__frame_count": 240},
    "segment-frames": {"grid__segment_frames": 60},
    "source-uri": {"source__source_uri": "gs://in/film-v2.mov"},
    "source-size": {"source__size_bytes": 987_654_322},
    "frame-rate": {"source__frame_rate": Fraction(25)},
    "vmaf-height": {"vmaf_height": 720},
    "no-vmaf": {"score_vmaf": False},
}


@pytest.mark.parametrize("changes", BYTE_DECIDING.values(), ids=BYTE_DECIDING.keys())
def test_a_change_that_decides_the_bytes_makes_the_record_stale(changes):
    other = replaced(**changes)
    assert task_fingerprint(other) != task_fingerprint(TASK)
    record = through_json(chunk_record(result_for(TASK, VMAF), task_fingerprint(TASK)))
    assert result_from_record(record, other) is None


LAYOUT_ONLY = {
    "track-position": {"track_position": 3},
    "track-count": {"track_count": 7},
    "rendition-count": {"rendition_count": 4},
}


@pytest.mark.parametrize("changes", LAYOUT_ONLY.values(), ids=LAYOUT_ONLY.keys())
def test_where_the_track_is_listed_does_not_change_the_chunk(changes):
    assert task_fingerprint(replaced(**changes)) == task_fingerprint(TASK)


@pytest.mark.parametrize("record", [
    {},
    {"fingerprint": None},
    {"fingerprint": "0" * 32, "chunk_uri": "x", "frame_count": 1, "size_bytes": 1,
     "duration_s": "1"},
], ids=["empty", "null-fingerprint", "other-fingerprint"])
def test_records_without_the_tasks_fingerprint_are_not_reused(record):
    assert result_from_record(record, TASK) is None
