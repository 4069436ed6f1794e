"""JSON records of finished work: what a re-run reads back to reuse a finished chunk."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from fractions import Fraction

from media.core.types import Attempt, ChunkResult, ChunkSpan, ChunkTask, Segment, VmafScore

RECORD_VERSION = 1


def task_fingerprint(task: ChunkTask) -> str:
    """A digest of everything that decides a chunk's bytes: same digest, same chunk."""
    basis = {
        "version": RECORD_VERSION,
        "source": [task.source.source_uri, task.source.size_bytes, task.source.frame_count,
                   str(task.source.frame_rate), task.source.width, task.source.height,
                   task.source.generation, task.source.interlaced, task.source.rotation_deg,
                   str(task.source.sample_aspect_ratio), task.source.hdr],
        "rendition": _rendition_basis(task),
        "settings": dataclasses.asdict(task.settings),
        "chunk": span_basis(task.chunk),
        # the grid as records before it carried more had it (its timescale is 90 kHz for
        # every title), so that finished chunks are still reused
        "segment_frames": task.grid.segment_frames,
        "score": [task.score_vmaf, task.vmaf_height, task.vmaf_subsample],
        "gate": [task.max_attempts, task.gate_below, task.gate_above],
    }
    if task.allocated_crf is not None:  # a constant-allocation chunk's digest as before
        basis["allocated"] = [task.allocated_crf, task.gate_vmaf, task.gate_floor]
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:32]


def span_basis(span: ChunkSpan) -> dict:
    """A chunk's span for a digest; on an even grid without its (empty) segment starts,
    as records before grids were cut at shot changes had it."""
    basis = dataclasses.asdict(span)
    if not basis["segment_starts"]:
        basis.pop("segment_starts")
        basis.pop("first_segment")
    return basis


def _rendition_basis(task: ChunkTask) -> dict:
    """The rendition's fields; an SDR rung's without `hdr`, as records before it had them,
    and without `calibrated` (it decides where a rung's chunks are probed, not their
    bytes: the preset and CRF they are encoded at are in the digest)."""
    basis = dataclasses.asdict(task.rendition)
    basis.pop("calibrated")
    if not basis["hdr"]:
        basis.pop("hdr")
    return basis


def chunk_record(result: ChunkResult, fingerprint: str) -> dict:
    """The JSON record of a finished chunk."""
    return {
        "fingerprint": fingerprint,
        "chunk_uri": result.chunk_uri,
        "frame_count": result.frame_count,
        "size_bytes": result.size_bytes,
        "duration_s": str(result.duration_s),
        "vmaf": dataclasses.asdict(result.vmaf) if result.vmaf else None,
        "vmaf_log_uri": result.vmaf_log_uri,
        "encode_s": result.encode_s,
        "score_s": result.score_s,
        "encode_cpu_s": result.encode_cpu_s,
        "score_cpu_s": result.score_cpu_s,
        "attempts": [dataclasses.asdict(a) for a in result.attempts],
        "kept": result.kept,
        "encoder": result.encoder,
        "retries": list(result.retries),
        "segments": [dataclasses.asdict(s) for s in result.segments],
        "iframe_ranges": [list(r) for r in result.iframe_ranges],
        "init_key": result.init_key,
    }


def result_from_record(record: dict, task: ChunkTask) -> ChunkResult | None:
    """The ChunkResult a record describes, or None if it was made for other settings."""
    if record.get("fingerprint") != task_fingerprint(task):
        return None
    vmaf = record.get("vmaf")
    return ChunkResult(
        title_id=task.title_id,
        rendition_id=task.rendition.rendition_id,
        index=task.chunk.index,
        chunk_count=task.chunk_count,
        chunk_uri=record["chunk_uri"],
        frame_count=int(record["frame_count"]),
        size_bytes=int(record["size_bytes"]),
        duration_s=Fraction(record["duration_s"]),
        vmaf=VmafScore(**vmaf) if vmaf else None,
        vmaf_log_uri=record.get("vmaf_log_uri", ""),
        encode_s=float(record.get("encode_s", 0.0)),
        score_s=float(record.get("score_s", 0.0)),
        reused=True,
        task=task,
        attempts=tuple(Attempt(**a) for a in record.get("attempts", [])),
        kept=int(record.get("kept", -1)),
        encoder=str(record.get("encoder", "x264")),
        retries=tuple(str(r) for r in record.get("retries", [])),
        encode_cpu_s=float(record.get("encode_cpu_s", 0.0)),
        score_cpu_s=float(record.get("score_cpu_s", 0.0)),
        segments=tuple(Segment(**s) for s in record.get("segments", [])),
        iframe_ranges=tuple((int(o), int(n)) for o, n in record.get("iframe_ranges", [])),
        init_key=str(record.get("init_key", "")),
    )
