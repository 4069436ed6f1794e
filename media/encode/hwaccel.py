"""GPU decoding (NVDEC): where a CUDA device can decode, FFmpeg decodes sources on it.

`--decoder auto` (the default) probes NVDEC once per worker process with a real decode
of a few generated H.264 frames (`probe_nvdec`) and decodes with `-hwaccel cuda` when it
works; frames come back to system memory, so every filter (conditioning, scaling, VMAF)
is unchanged. Without a GPU, or with one FFmpeg cannot use, the probe says why and
decoding stays on the CPU. `--decoder cpu` never probes; `--decoder nvdec` insists (a
chunk whose decode fails goes to the dead letter).
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from dataclasses import dataclass

from media.core import ffmpeg

__all__ = ["DECODERS", "ProbeResult", "decode_input_options", "probe_nvdec", "use_nvdec"]

DECODERS = ("auto", "cpu", "nvdec")


@dataclass(frozen=True)
class ProbeResult:
    """What a probe of a GPU feature found (NVDEC here, NVENC and vmaf-torch elsewhere)."""

    works: bool
    detail: str
    """Why it works or does not, for the log."""


@functools.cache
def probe_nvdec(timeout_s: float = 60.0) -> ProbeResult:
    """Can FFmpeg decode H.264 on a CUDA device here? Once per process."""
    exe = ffmpeg.ffmpeg_exe()
    with tempfile.TemporaryDirectory(prefix="nvdec-probe-") as scratch:
        clip = os.path.join(scratch, "probe.mp4")
        made = subprocess.run(
            [exe, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
             "testsrc2=size=256x144:rate=25:duration=0.2", "-c:v", "libx264", "-preset",
             "ultrafast", "-pix_fmt", "yuv420p", clip],
            capture_output=True, text=True, timeout=timeout_s, check=False)
        if made.returncode:
            return ProbeResult(False, f"could not make the probe clip: {made.stderr[-200:]}")
        try:
            done = subprocess.run(
                [exe, "-nostdin", "-hide_banner", "-loglevel", "info", "-hwaccel", "cuda",
                 "-hwaccel_device", "0", "-i", clip, "-f", "null", "-"],
                capture_output=True, text=True, timeout=timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return ProbeResult(False, f"the probe could not run: {exc}")
    if done.returncode == 0 and "Failed setup" not in done.stderr and (
            "Cannot load" not in done.stderr):
        return ProbeResult(True, "CUDA decoded the probe clip")
    return ProbeResult(False, _reason(done.stderr))


def _reason(stderr: str) -> str:
    for line in stderr.splitlines():
        if any(k in line for k in ("Cannot load", "CUDA", "cuda", "hwaccel", "No device")):
            return line.split("] ", 1)[-1].strip()[:300]
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "decoding on the GPU failed"


def use_nvdec(decoder: str) -> bool:
    """Whether to decode on the GPU for `--decoder decoder`."""
    if decoder == "cpu":
        return False
    if decoder == "nvdec":
        return True
    return probe_nvdec().works


def decode_input_options(decoder: str) -> dict[str, str]:
    """ffmpeg-python input options for a source decode (empty: on the CPU)."""
    return {"hwaccel": "cuda"} if use_nvdec(decoder) else {}
