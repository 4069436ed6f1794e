"""Score an encoded chunk with vmaf-torch (VMAF in PyTorch) on a CUDA device, or the CPU.

    --vmaf_backend auto (default) | libvmaf | torch

`auto` scores with vmaf-torch on CUDA where torch sees a device and a tiny probe score
works there (`probe_torch`, once per worker process), else with libvmaf, and logs which
and why once. `torch` insists on vmaf-torch: on CUDA where there is a device, else on
the CPU (slow; logged as a warning). `libvmaf` never imports torch. Under `auto`, a
chunk whose GPU scoring fails (out of memory, say) is scored with libvmaf instead
(`media.encode.scoring.score_encoded`). Trial encodes are scored with libvmaf whatever the flag
says.

FFmpeg decodes the same two streams as libvmaf's graph (`media.quality.vmaf.scoring_streams`),
one process each, ending in raw 8-bit luma on a pipe; numpy reads them in batches of
frames. Motion compares each reference frame with its neighbours, so a batch is scored
with one frame of overlap on each side: per-frame scores are those of the whole chunk
scored at once. The scores are pooled with `media.quality.vmaf.pool`, and a log shaped like
libvmaf's (`frames[].metrics.vmaf`) is written where libvmaf would write its own.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shlex
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import ffmpeg as ffmpeg_python
import numpy as np

from media.core import ffmpeg
from media.core.errors import MediaError, ToolFailed
from media.core.types import ChunkSpan, SourceInfo, VmafScore
from media.encode.hwaccel import ProbeResult
from media.quality.vmaf import VMAF_MODEL, pool, scoring_streams

__all__ = ["VMAF_BACKENDS", "GpuVmafFailed", "TorchUnavailable", "VmafBackend",
           "batch_frames_for", "luma_args", "probe_torch", "resolve_vmaf_backend", "score_chunk",
           "score_frames"]

log = logging.getLogger(__name__)

VMAF_BACKENDS = ("auto", "libvmaf", "torch")
BATCH_PIXELS = {"cuda": 16 * 1920 * 1080, "cpu": 1 << 20}
"""Luma pixels per batch: 16 frames of 1080p on a GPU; on the CPU about one, since
vmaf-torch's intermediates then stay in cache (docs/performance.md, Scoring)."""
MAX_BATCH_FRAMES = 64


class TorchUnavailable(MediaError):
    """torch or vmaf-torch cannot be imported on this worker."""

    hint = ("Install the GPU extra on the workers (pip install 'ladderflow[gpu]'; the "
            "project's image has it), or pass --vmaf_backend libvmaf or auto.")


class GpuVmafFailed(MediaError):
    """vmaf-torch failed while scoring (torch's error, not the media's)."""

    hint = ("Score with --vmaf_backend auto (which falls back to libvmaf for the chunk) or "
            "libvmaf, or use workers with more GPU memory.")


@dataclass(frozen=True)
class VmafBackend:
    """How this worker scores chunks."""

    name: str
    """'libvmaf' or 'torch'."""
    device: str = ""
    """The torch device of 'torch': 'cuda' or 'cpu'."""
    why: str = ""
    """Why this backend (for the log)."""


def _import_torch():
    try:
        import torch
        import vmaf_torch
    except ImportError as exc:
        raise TorchUnavailable(f"VMAF on torch needs torch and vmaf-torch: {exc}") from exc
    return torch, vmaf_torch


@functools.cache
def _model(device: str):
    """vmaf-torch's VMAF with the built-in vmaf_v0.6.1 model, clipped to 0..100 as
    libvmaf clips it; one per device and process."""
    torch, vmaf_torch = _import_torch()
    with torch.inference_mode():
        return vmaf_torch.VMAF(temporal_pooling=False, clip_score=True).to(device).eval()


@functools.cache
def probe_torch(device: str = "cuda") -> ProbeResult:
    """Can vmaf-torch score on `device` here? Three small frames, once per process."""
    try:
        torch, _ = _import_torch()
    except TorchUnavailable as exc:
        return ProbeResult(False, str(exc))
    if device.startswith("cuda") and not torch.cuda.is_available():
        return ProbeResult(False, "torch.cuda.is_available() is False (no CUDA device or "
                                  "driver torch can use)")
    ramp = np.tile(np.arange(160, dtype=np.uint8), (90, 1))
    ref = np.stack([np.roll(ramp, shift, axis=1) for shift in range(3)])
    try:
        scores = score_frames(iter([(ref // 2 + 64, ref)]), device)
    except (RuntimeError, OSError) as exc:
        return ProbeResult(False, f"vmaf-torch failed on {device}: {exc}"[:300])
    if len(scores) != 3 or not all(np.isfinite(s) for _, s in scores):
        return ProbeResult(False, f"vmaf-torch scored the probe frames {scores} on {device}")
    return ProbeResult(True, f"vmaf-torch scored probe frames on {device}")


def _nvidia_device_present() -> bool:
    """Whether the NVIDIA driver exposes a device here: checked before importing torch,
    whose import alone costs seconds and hundreds of MiB on a worker with no GPU."""
    return os.path.exists("/dev/nvidiactl")


@functools.cache
def resolve_vmaf_backend(name: str) -> VmafBackend:
    """The backend for `--vmaf_backend name` on this worker; logged once per process.
    Raises `TorchUnavailable` for 'torch' without torch or vmaf-torch."""
    if name == "libvmaf":
        backend = VmafBackend("libvmaf", why="--vmaf_backend libvmaf")
    elif name == "torch":
        torch, _ = _import_torch()
        if torch.cuda.is_available():
            backend = VmafBackend("torch", "cuda", "--vmaf_backend torch, on CUDA")
        else:
            backend = VmafBackend("torch", "cpu", "--vmaf_backend torch without a CUDA "
                                  "device: scoring on the CPU, much slower than libvmaf")
            log.warning("VMAF on this worker: %s", backend.why)
            return backend
    elif name == "auto":
        probe = probe_torch("cuda") if _nvidia_device_present() else ProbeResult(
            False, "no NVIDIA device on this worker (/dev/nvidiactl is absent)")
        backend = (VmafBackend("torch", "cuda", f"auto: {probe.detail}") if probe.works else
                   VmafBackend("libvmaf", why=f"auto: GPU VMAF unavailable ({probe.detail}); "
                                              "using libvmaf"))
    else:
        raise MediaError(f"unknown VMAF backend {name!r}; choose from "
                         f"{', '.join(VMAF_BACKENDS)}", hint="Pass --vmaf_backend auto.")
    log.info("VMAF on this worker: %s", backend.why)
    return backend


# --- scoring ----------------------------------------------------------------------------


def score_chunk(encoded_path: str, staged_path: str, source: SourceInfo, chunk: ChunkSpan,
                width: int, height: int, log_path: str, device: str = "cuda",
                subsample: int = 1, decoder: str = "cpu", batch_frames: int = 0,
                timeout_s: float | None = None,
                on_start: Callable[[subprocess.Popen], None] | None = None,
                hdr: bool = False) -> VmafScore:
    """Score one chunk as `media.quality.vmaf.score_chunk_argv` does, with vmaf-torch on
    `device`; write a libvmaf-shaped JSON log to `log_path` and pool the scores.
    Scoring ends with the shorter stream, as libvmaf's `shortest=1` does. `on_start` is
    called with the FFmpeg process that decodes the reference (the fault hooks of
    `media.core.faults` count it as one scoring process)."""
    batch = batch_frames or batch_frames_for(device, width, height)
    distorted, reference = scoring_streams(encoded_path, staged_path, source, chunk, width,
                                           height, decoder, hdr=hdr)
    readers = [_LumaReader(distorted, width, height, timeout_s, None)]
    readers.append(_LumaReader(reference, width, height, timeout_s, on_start))
    try:
        scores = score_frames(_batches(*readers, batch), device, subsample)
    except RuntimeError as exc:  # torch's own: out of GPU memory, a lost device
        raise GpuVmafFailed(f"vmaf-torch failed on {device}: {exc}"[:600]) from exc
    finally:
        for reader in readers:
            reader.close()
    score = pool([s for _, s in scores])
    _write_log(log_path, scores, score, device)
    return score


def batch_frames_for(device: str, width: int, height: int) -> int:
    """Frames per batch at `width`x`height` on `device` (at least 2)."""
    budget = BATCH_PIXELS["cpu" if device == "cpu" else "cuda"]
    return max(2, min(MAX_BATCH_FRAMES, budget // (width * height)))


def luma_args(stream) -> list[str]:
    """FFmpeg arguments that write `stream` (yuv420p) as raw 8-bit luma to stdout."""
    luma = stream.filter("extractplanes", "y")
    return ffmpeg_python.output(luma, "pipe:", f="rawvideo", pix_fmt="gray",
                                fps_mode="passthrough").get_args()


def score_frames(batches: Iterator[tuple[np.ndarray, np.ndarray]], device: str,
                 subsample: int = 1) -> list[tuple[int, float]]:
    """(frame number, VMAF) of every `subsample`-th frame of a clip given as batches of
    (distorted, reference) uint8 luma arrays [n, height, width]. Each batch is scored
    once the next one is known, whose first reference frame its motion needs."""
    model = _model(device)
    scores: list[tuple[int, float]] = []
    start, before = 0, None
    current = next(batches, None)
    while current is not None:
        following = next(batches, None)
        after = following[1][:1] if following is not None else None
        scores += _score_batch(model, *current, start, before, after, subsample, device)
        start += len(current[0])
        before = current[1][-1:]
        current = following
    return scores


def _score_batch(model, distorted: np.ndarray, reference: np.ndarray, start: int,
                 before: np.ndarray | None, after: np.ndarray | None, subsample: int,
                 device: str) -> list[tuple[int, float]]:
    torch, _ = _import_torch()

    def tensor(frames: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(frames)).to(device).float().unsqueeze(1)

    with torch.inference_mode():
        # Motion of frame i is min(SAD(i, i-1), SAD(i+1, i)); vmaf-torch takes the first
        # and last frames of what it is given as the clip's, so it gets the neighbours.
        context = tensor(np.concatenate([f for f in (before, reference, after) if f is not None]))
        first = 0 if before is None else 1
        motion2 = model.compute_motion2(context)[first:first + len(reference)]
        picked = [i for i in range(len(reference)) if (start + i) % subsample == 0]
        if not picked:
            return []
        ref = context[first:first + len(reference)][picked]
        dist = tensor(distorted[picked])
        adm = model.compute_adm_score(ref, dist)
        vif = model.compute_vif_features(ref, dist)
        vmaf = model.predict(adm, motion2[picked], vif).flatten().tolist()
    return [(start + i, float(score)) for i, score in zip(picked, vmaf, strict=True)]


def _batches(distorted: _LumaReader, reference: _LumaReader,
             frames: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of (distorted, reference) frames, the next one read while the caller
    scores; ends with the shorter stream."""
    with ThreadPoolExecutor(2, thread_name_prefix="vmaf-read") as readers:
        def read_next():
            return readers.submit(distorted.read, frames), readers.submit(reference.read, frames)

        pending = read_next()
        while True:
            dist, ref = (future.result() for future in pending)
            count = min(len(dist), len(ref))
            if count < frames:
                if count:
                    yield dist[:count], ref[:count]
                return
            pending = read_next()
            yield dist, ref


class _LumaReader:
    """One FFmpeg process that decodes a stream to raw luma frames on its stdout."""

    def __init__(self, stream, width: int, height: int, timeout_s: float | None,
                 on_start: Callable[[subprocess.Popen], None] | None):
        self.argv = ffmpeg.ffmpeg_argv(*luma_args(stream))
        self.shape = (height, width)
        self.ended = False
        self._timed_out = threading.Event()
        self._timeout_s = timeout_s
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        log.debug("running: %s", shlex.join(self.argv))
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._stderr)
        self._timer = threading.Timer(timeout_s, self._kill_late) if timeout_s else None
        if self._timer:
            self._timer.start()
        if on_start is not None:
            on_start(self.proc)

    def _kill_late(self) -> None:
        self._timed_out.set()
        self.proc.kill()

    def read(self, frames: int) -> np.ndarray:
        """Up to `frames` frames [n, height, width]; fewer at the end of the stream."""
        frame_bytes = self.shape[0] * self.shape[1]
        data = self.proc.stdout.read(frames * frame_bytes)
        count = len(data) // frame_bytes
        self.ended = count < frames
        return np.frombuffer(data, np.uint8, count * frame_bytes).reshape(count, *self.shape)

    def close(self) -> None:
        """Wait for FFmpeg, or stop it if its frames are no longer wanted (the other
        stream ended first, or scoring failed); raise `ToolFailed` if it failed."""
        if not self.ended:
            self.proc.kill()
        self.proc.stdout.close()
        returncode = self.proc.wait()
        if self._timer:
            self._timer.cancel()
        self._stderr.seek(0)
        stderr = self._stderr.read().decode("utf-8", "replace")
        self._stderr.close()
        if self.ended and returncode != 0:
            timed_out = self._timed_out.is_set()
            if timed_out:
                stderr += f"\n(killed after the {self._timeout_s} s limit)"
            raise ToolFailed(self.argv, returncode, stderr[-ffmpeg.STDERR_TAIL_CHARS:],
                             timed_out=timed_out)


def _write_log(path: str, scores: list[tuple[int, float]], pooled: VmafScore,
               device: str) -> None:
    from importlib.metadata import version

    log_doc = {
        "version": f"vmaf-torch {version('vmaf-torch')}",
        "model": VMAF_MODEL,
        "device": device,
        "frames": [{"frameNum": n, "metrics": {"vmaf": s}} for n, s in scores],
        "pooled_metrics": {"vmaf": {
            "min": pooled.minimum, "max": max(s for _, s in scores), "mean": pooled.mean,
            "harmonic_mean": pooled.harmonic_mean}},
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(log_doc, handle)
