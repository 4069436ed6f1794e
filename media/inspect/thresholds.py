"""Where a finding starts: the inspection's thresholds."""

from __future__ import annotations

# --- thresholds -------------------------------------------------------------------------

MIN_STRETCH_S = 2.0
"""Black, frozen and silent stretches at least this long are reported."""
BLACK_PIXEL_THRESHOLD = 0.10
"""blackdetect pix_th: a pixel is black below 10 % luma (its default)."""
FREEZE_NOISE = "-50dB"
"""freezedetect noise tolerance. Its default (-60 dB) misses frozen pictures in lossy
sources, whose coding noise changes a little from frame to frame."""
SILENCE_NOISE = "-90dB"
"""silencedetect: below -90 dBFS is digital silence, not a quiet scene."""
AUDIO_GAP_S = 0.050
"""A hole in the audio packet timestamps longer than this is a dropout."""
AV_OFFSET_NOTE_S = 0.040
"""Audio starting this much before/after the video is reported (info)."""
AV_OFFSET_WARN_S = 1.0
"""... and above this as a warning: rarely intended."""
DURATION_MISMATCH_S = 0.5
"""Audio and video lengths differing by more than this is a warning."""
TRUNCATION_TOLERANCE_S = 0.5
TRUNCATION_TOLERANCE_FRACTION = 0.02
"""A stream ending more than max(0.5 s, 2 %) before its declared end is truncated."""
FATAL_MISSING_FRACTION = 0.05
"""More than 5 % of the video frames failing to come out of the decoder is fatal."""
FATAL_ERROR_LINES_PER_FRAME = 0.10
"""More decoder error messages than 10 % of the frames (and over `FATAL_ERROR_LINES_MIN`)
is fatal: the source is damaged throughout, not in a few places."""
FATAL_ERROR_LINES_MIN = 10
VFR_MIN_IRREGULAR_FRACTION = 0.01
"""Variable frame rate: at least 1 % (and at least 2) of the frame intervals differ from
the typical one by more than rounding explains (1.5 ticks, 1.5 ms and 1 %)."""
FIRST_FRAME_PACKETS = 64
"""The demux pass decodes at most this many packets to get the first frame (rotation)."""
MAX_FIRST_ERRORS = 5
"""Decoder error messages quoted in a finding and kept in `DecodeStats`."""

_REEXPORT_HINT = (
    "Re-export the source from the editing or capture tool, or upload it again: the file "
    "as received is incomplete or damaged."
)
