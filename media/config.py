"""The job's settings as one frozen value, validated where the graph is built."""

from __future__ import annotations

from dataclasses import dataclass, field

from media.errors import ConfigurationError
from media.types import EncodeSettings

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")


@dataclass(frozen=True)
class JobConfig:
    """Everything the stages need to know about a run (no Beam options on workers)."""

    output_root: str
    segment_s: float = 4.0
    """Nominal segment duration; snapped to whole frames per title."""
    chunk_segments: int = 3
    """Segments per chunk (the unit of parallel encoding)."""
    crf: float = 23.0
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    score_vmaf: bool = True
    max_renditions: int = 0
    """Keep only the tallest N rungs (0 keeps all)."""
    audio_kbps: int = 128
    keep_work: bool = False
    """Keep encoded chunks under `_work/` after the title is published."""
    tool_timeout_s: float = 3600.0
    """Longest any one FFmpeg process may run."""

    def validate(self) -> JobConfig:
        _check(bool(self.output_root), "--output is required")
        _check(0.5 <= self.segment_s <= 20, f"--segment_seconds {self.segment_s}: use 0.5 to 20")
        _check(1 <= self.chunk_segments <= 100,
               f"--chunk_segments {self.chunk_segments}: use 1 to 100")
        _check(0 <= self.crf <= 51, f"--crf {self.crf}: x264 takes 0 to 51")
        _check(self.encode.preset in X264_PRESETS,
               f"--preset {self.encode.preset!r}: use one of {', '.join(X264_PRESETS)}")
        _check(self.max_renditions >= 0, "--max_renditions must be 0 or more")
        _check(32 <= self.audio_kbps <= 512, f"--audio_kbps {self.audio_kbps}: use 32 to 512")
        _check(self.tool_timeout_s > 0, "--tool_timeout_s must be positive")
        return self


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigurationError(message)
