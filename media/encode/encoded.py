"""What an encode of a chunk made, and its checks: the encoded chunk in a scratch
folder (`EncodedChunk`), its frame count and packet sizes read without a decode, and
`BadChunk` for an encode that is unreadable or has the wrong number of frames.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

import av

from media.core.errors import MediaError
from media.core.types import (
    ChunkResult,
    ChunkTask,
    VmafScore,
)
from media.package.boxes import IsobmffError
from media.package.cmaf import fragmented_sample_count, is_fragmented

log = logging.getLogger(__name__)


class BadChunk(MediaError):
    """An encoded chunk failed its check: unreadable, or not the frames it should have."""

    hint = (
        "The source ends early or has damaged frames (re-export it), or the worker's "
        "disk failed (run again: finished chunks are reused)."
    )


class WrongFrameCount(BadChunk):
    """A readable encode with other than its chunk's frames: the same staged span and
    command make the same count every time, so no other try is made."""

    hint = (
        "The source's timestamps do not match the frames inspection counted; re-mux it "
        "(for example `ffmpeg -i in -c copy out.mp4`) or re-export it, and report the "
        "source: inspection should have caught it."
    )


@dataclass(frozen=True)
class EncodedChunk:
    """A chunk encoded into a scratch folder."""

    path: str
    frame_count: int
    size_bytes: int
    encode_s: float
    encode_cpu_s: float
    vmaf: VmafScore | None = None
    vmaf_log_path: str = ""
    score_s: float = 0.0
    staged_bytes: int = 0
    """Bytes of source copied to stage the chunk (O(chunk), not O(title))."""
    encoder: str = "x264"
    reference_path: str = ""
    """The chunk's VMAF reference frames kept for scoring it ('' if none: decode them)."""
    score_cpu_s: float = 0.0
    """CPU seconds of the scoring (vmaf-torch: its wall seconds, the work being on the GPU)."""


def fault_label(task: ChunkTask) -> str:
    """What the rules of `LADDERFLOW_FAULTS` match against: title/rendition/chunk index."""
    return f"{task.title_id}/{task.rendition.rendition_id}/{task.chunk.index}"


def rendition_scratch(scratch: str, task: ChunkTask) -> str:
    """A rendition's own folder in a scratch folder that several renditions share."""
    folder = os.path.join(scratch, task.rendition.rendition_id)
    os.makedirs(folder, exist_ok=True)
    return folder


def encoded_kbps(task: ChunkTask, encoded: EncodedChunk) -> float:
    """The average rate of an encode of the task's chunk, kb/s."""
    seconds = task.chunk.frame_count / float(task.source.frame_rate)
    return encoded.size_bytes * 8 / seconds / 1000


def count_frames(path: str) -> int:
    """Number of video frames in a file: a fragmented MP4's (as chunks are encoded) from
    its fragments' headers, another file's from its header where it says, else from its
    packets (no decode)."""
    try:
        if is_fragmented(path):
            return fragmented_sample_count(path)
    except (OSError, IsobmffError) as exc:
        raise BadChunk(f"the encoder wrote an unreadable chunk {path}: {exc}") from exc
    try:
        with av.open(path) as container:
            if container.streams.video[0].frames:
                return int(container.streams.video[0].frames)
    except (av.FFmpegError, IndexError) as exc:
        raise BadChunk(f"the encoder wrote an unreadable chunk {path}: {exc}") from exc
    return len(packet_sizes(path))


def packet_sizes(path: str, what: str = "chunk") -> list[int]:
    """Bytes of each video frame of an encode, in decode order (no decode): the first is
    its keyframe. `what` names the encode in the error."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            return [packet.size for packet in container.demux(stream) if packet.size]
    except (av.FFmpegError, IndexError) as exc:
        raise BadChunk(f"the encoder wrote an unreadable {what} {path}: {exc}") from exc


def slim_result(result: ChunkResult, task: ChunkTask) -> ChunkResult:
    """`result` as the gathers carry it: the few facts of its title and rendition that
    assembly, the report and progress read, and the whole task on the first chunk only
    (the track's rendition and the title's source, once per track), so a gathered chunk
    stays a few hundred bytes whatever the title's length."""
    return dataclasses.replace(
        result, task=task if task.chunk.index == 0 else None,
        generation=task.source.generation, start_frame=task.chunk.start_frame,
        rendition_count=task.rendition_count, target_vmaf=task.gate_target,
        gate_below=task.gate_below, gate_above=task.gate_above)
