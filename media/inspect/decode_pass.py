"""The decode pass: one FFmpeg process that decodes the whole source to the null muxer,
with the detectors (black, frozen, silent), interlace detection and, for per-title
planning, the complexity analysis in the same graph; and which filters and encoders
this FFmpeg has."""

from __future__ import annotations

import functools
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from media.core import ffmpeg
from media.inspect import complexity, shots
from media.inspect.probe import SOURCE_INPUT_OPTIONS
from media.inspect.results import StreamSummary
from media.inspect.thresholds import (
    _REEXPORT_HINT,
    BLACK_PIXEL_THRESHOLD,
    FREEZE_NOISE,
    MIN_STRETCH_S,
    SILENCE_NOISE,
)

SPAN_MIN_FREEZE_S = 0.1
"""The shortest freeze a span's decode reports (with no minimum, freezedetect ends a
freeze at every frame)."""
SPAN_MIN_SILENCE_S = 0.01
"""The shortest silence a span's decode reports: every stretch would include each
zero crossing of a tone."""
IDET_FRAMES = 200
"""Frames at the start of the source that interlace detection (idet) looks at."""


# --- FFmpeg capabilities ----------------------------------------------------------------


@functools.cache
def ffmpeg_filters() -> frozenset[str]:
    """Names of the filters this FFmpeg build has (`ffmpeg -filters`)."""
    return _ffmpeg_listing("-filters")


@functools.cache
def ffmpeg_encoders() -> frozenset[str]:
    """Names of the encoders this FFmpeg build has (`ffmpeg -encoders`)."""
    return _ffmpeg_listing("-encoders")


def _ffmpeg_listing(flag: str) -> frozenset[str]:
    # Listings go to stdout, which media.core.ffmpeg.run discards, hence subprocess here.
    proc = subprocess.run(
        [ffmpeg.ffmpeg_exe(), "-nostdin", "-hide_banner", flag],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    names, started = set(), False
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        stripped = line.strip()
        if not started:
            started = bool(stripped) and set(stripped) == {"-"}
            continue
        parts = stripped.split()
        if len(parts) >= 2:
            names.add(parts[1])
    return frozenset(names)


# --- the FFmpeg decode pass -------------------------------------------------------------


@dataclass(frozen=True)
class _Pass:
    """What one full decode by FFmpeg wrote (times in seconds from the start)."""

    error_lines: tuple[str, ...]
    video_frames: int
    video_end_s: float | None
    audio_frames: dict[int, int] = field(default_factory=dict)
    audio_end_s: dict[int, float] = field(default_factory=dict)
    video_meta: tuple[tuple[float, dict[str, str]], ...] = ()
    audio_meta: dict[int, tuple[tuple[float, dict[str, str]], ...]] = field(default_factory=dict)
    ran_video_filters: tuple[str, ...] = ()
    ran_audio_filters: tuple[str, ...] = ()
    analysis_bytes: tuple[int, ...] = ()
    """Bytes of each frame of the complexity analysis encode (`media.inspect.complexity`),
    when run."""
    idet: IdetCounts | None = None
    """idet's counts over the first `IDET_FRAMES` frames, when the pass ran it."""
    error_count: int | None = None
    """Error lines in all, where `error_lines` keeps only the first (merged spans)."""
    idet_frames: tuple[tuple[float, str], ...] = ()
    """A span's decode (`Window`): each frame idet looked at, (time on the source's
    timeline, its single-frame class: tff, bff, progressive or undetermined)."""
    scene_cuts: tuple[float, ...] | None = None
    """The frames scdet called a cut (`media.inspect.shots`), seconds from the start (a
    span's decode: its own frames' only); None where scdet did not run."""

    @property
    def errors(self) -> int:
        return len(self.error_lines) if self.error_count is None else self.error_count


@dataclass(frozen=True)
class Window:
    """The frames of one inspection span (`media.inspect.spans`) in a decode of a staged
    copy that also holds frames before and after it: times stay on the source's timeline
    (`-copyts`), only frames in [start_s, end_s) (source timeline; None: open) count, and
    times reported are less `offset_s` (the container's start: seconds from the start, as
    a whole decode reports them). The detectors report every stretch (no minimum), so
    stretches cut at a span join can be joined; the metadata keeps the source timeline.
    A keyframe of the complexity analysis starts every `keyframe_period_s` from
    `keyframe_start_s` (the whole decode's bins: every `bin` frames from the first)."""

    start_s: float | None
    end_s: float | None
    offset_s: float = 0.0
    keyframe_start_s: float = 0.0
    keyframe_period_s: float = 0.0
    idet_from_s: float | None = None
    """idet looks at the frames from this time (the last of the pre-roll's, which give
    the span's first frame its neighbour), `IDET_FRAMES` of the span's and two more."""

    def holds(self, t: float) -> bool:
        return ((self.start_s is None or t >= self.start_s)
                and (self.end_s is None or t < self.end_s))


def _decode_pass(
    summary: StreamSummary,
    *,
    video_detect: bool,
    audio_detect: bool,
    analysis_bin: int = 0,
    idet: bool = False,
    timeout_s: float | None = None,
    window: Window | None = None,
    find_shots: bool = True,
) -> _Pass:
    """Decode the video and every audio stream to the null muxer, through the detection
    filters asked for; with an `analysis_bin` (frames), the video also through the
    complexity analysis encode (`media.inspect.complexity`); with `idet`, the first `IDET_FRAMES`
    frames also through interlace detection (a branch of the same decode, where a process
    of its own would decode them again); with `video_detect` and `find_shots`, the shot changes
    (`media.inspect.shots`). Raises `ToolFailed` when FFmpeg gives up on the source."""
    available = ffmpeg_filters()
    vfilters = [f for f in ("blackdetect", "freezedetect") if video_detect and f in available]
    scenes = video_detect and find_shots and "scdet" in available
    afilters = [f for f in ("silencedetect",) if audio_detect and f in available]
    analyse = analysis_bin > 0 and "libx264" in ffmpeg_encoders() and "scale" in available
    idet = idet and {"idet", "split", "trim"} <= available
    with tempfile.TemporaryDirectory(prefix="inspect-") as tmp:
        vstats, vmeta = os.path.join(tmp, "video.stats"), os.path.join(tmp, "video.meta")
        vpost, imeta = os.path.join(tmp, "video.post"), os.path.join(tmp, "idet.meta")
        cuts_meta = os.path.join(tmp, "cuts.meta")
        args = [
            "-loglevel",
            "repeat+error",  # one line per error: no "repeated N times"
            "-max_error_rate",
            "1",  # decode to the end, however damaged
            "-noautorotate",
            # A span's staged copy: its timestamps as they are, and no probing decode
            # (a short copy's probe would decode its first frames twice, and log their
            # errors twice; its streams' parameters are in its header).
            *(["-copyts", "-probesize", "32"] if window else []),
            *SOURCE_INPUT_OPTIONS,
            "-i",
            summary.path,
        ]
        min_s = 0 if window else MIN_STRETCH_S
        chain = [_video_filter(name, min_s) for name in vfilters]
        detecting = bool(chain)
        if chain:
            chain.append(f"metadata=mode=print:file={_filter_value(vmeta)}")
        if scenes:  # after that print: scdet tags every frame with its score
            chain += shots.scdet_chain(_filter_value(cuts_meta))
        if analyse:
            chain.append(complexity.analysis_filter(summary.width, summary.height))
        if idet:
            lead = () if window is None or window.idet_from_s is None else (window.idet_from_s,)
            args += ["-filter_complex",
                     _idet_branch_graph(summary.video_index, chain, imeta, *lead),
                     "-map", "[main]"]
        else:
            args += ["-map", f"0:{summary.video_index}"]
            if chain:
                args += ["-filter:0", ",".join(chain)]
        for audio in summary.audio:
            args += ["-map", f"0:{audio.index}"]
        if analyse:
            args += [*complexity.analysis_codec_args(analysis_bin, stream=0),
                     "-stats_enc_post_fmt:0", "{n} {size}", "-stats_enc_post:0", vpost]
            if window and window.keyframe_period_s > 0:
                # The whole decode's bins, on the source's timeline: a keyframe where
                # each starts (half a frame early against rounding), and none elsewhere.
                first = window.keyframe_start_s - window.keyframe_period_s / (2 * analysis_bin)
                args += ["-g:0", "1000000", "-force_key_frames:0",
                         f"expr:gte(t,{first:.6f}+n_forced*{window.keyframe_period_s:.9f})"]
        # {t}: the frame's time on the encoder's 1/rate grid, as a whole decode reports it;
        # {ti}: its exact time, which alone says on which side of a span's bound it lies.
        args += ["-stats_enc_pre_fmt:0", "{n} {t} {ti}", "-stats_enc_pre:0", vstats]
        astats, ameta = {}, {}
        for out, audio in enumerate(summary.audio, start=1):
            astats[audio.index] = os.path.join(tmp, f"audio{out}.stats")
            ameta[audio.index] = os.path.join(tmp, f"audio{out}.meta")
            if afilters:
                achain = [
                    f"silencedetect=n={SILENCE_NOISE}:d={min_s or SPAN_MIN_SILENCE_S}",
                    f"ametadata=mode=print:file={_filter_value(ameta[audio.index])}",
                ]
                args += [f"-filter:{out}", ",".join(achain)]
            args += [
                f"-stats_enc_pre_fmt:{out}",
                "{n} {t} {samp}",
                f"-stats_enc_pre:{out}",
                astats[audio.index],
            ]
        args += ["-f", "null", "-"]
        if idet:
            args += ["-map", "[idet]", "-f", "null", "-"]
        run = ffmpeg.run(
            ffmpeg.ffmpeg_argv(*args),
            timeout_s=timeout_s,
            hint="FFmpeg could not decode the source. " + _REEXPORT_HINT,
        )

        video_rows = _read_stats(vstats)
        post_rows = [row for row in _read_stats(vpost) if len(row) > 1] if analyse else []
        if window:
            kept = [_in_window(row, window, exact=True) for row in video_rows]
            if len(post_rows) == len(video_rows):
                post_rows = [row for row, keep in zip(post_rows, kept, strict=True) if keep]
            else:  # frames and their sizes do not pair up: no analysis for the span
                post_rows = []
            video_rows = [_shifted(row, window) for row, keep in zip(video_rows, kept,
                                                                     strict=True) if keep]
        frame_s = float(summary.frame_interval_ticks * summary.time_base)
        last = _last_time(video_rows)
        video_end = last[1] + frame_s if last else None
        audio_frames, audio_end = {}, {}
        for audio in summary.audio:
            rows = _read_stats(astats[audio.index])
            if window:
                rows = [_shifted(row, window) for row in rows if _in_window(row, window)]
            audio_frames[audio.index] = len(rows)
            last = _last_time(rows)
            if last:
                samples = last[2] if len(last) > 2 and not math.isnan(last[2]) else 0
                audio_end[audio.index] = last[1] + samples / (audio.sample_rate_hz or 1)
        return _Pass(
            error_lines=_error_lines(run.stderr),
            video_frames=len(video_rows),
            video_end_s=video_end,
            audio_frames=audio_frames,
            audio_end_s=audio_end,
            video_meta=_read_metadata(vmeta) if detecting else (),
            audio_meta={i: _read_metadata(p) for i, p in ameta.items()} if afilters else {},
            ran_video_filters=tuple(vfilters),
            ran_audio_filters=tuple(afilters),
            analysis_bytes=tuple(int(row[1]) for row in post_rows
                                 if not math.isnan(row[1])) if analyse else (),
            idet=_idet_from(_read_metadata(imeta)) if idet else None,
            idet_frames=tuple(
                (t, m.get("lavfi.idet.single.current_frame", "undetermined"))
                for t, m in _read_metadata(imeta)) if idet and window else (),
            scene_cuts=_window_cuts(shots.read_cuts(cuts_meta), window)
            if scenes else None,
        )


def _window_cuts(cuts: Sequence[float], window: Window | None) -> tuple[float, ...]:
    """Cut times as a whole decode reports them: a span's (`window`) own, less its
    offset."""
    if window is None:
        return tuple(cuts)
    return tuple(t - window.offset_s for t in cuts if window.holds(t))


def _error_lines(stderr: str) -> tuple[str, ...]:
    """The decode's error lines, as counted: less the null muxer's, less addresses."""
    return tuple(_ADDRESS.sub("", line.strip()) for line in stderr.splitlines()
                 if line.strip() and not line.startswith(_NULL_MUXER))


def video_decode_errors(path: str, timeout_s: float | None = None) -> tuple[str, ...]:
    """The error lines of decoding `path`'s first video stream alone, as the decode pass
    logs them for a span's staged copy (the pre-roll of a span: what decoding it logs
    before the span's own frames, which the span does not count)."""
    run = ffmpeg.run(
        ffmpeg.ffmpeg_argv("-loglevel", "repeat+error", "-max_error_rate", "1",
                           "-copyts", "-probesize", "32", *SOURCE_INPUT_OPTIONS,
                           "-i", path, "-map", "0:v:0", "-f", "null", "-"),
        timeout_s=timeout_s, hint="FFmpeg could not decode the source. " + _REEXPORT_HINT)
    return _error_lines(run.stderr)


def less_errors(result: _Pass, before: Sequence[str]) -> _Pass:
    """`result` without the error lines `before` (each once): those its decode logged
    before the frames it counts."""
    lines = list(result.error_lines)
    for line in before:
        if line in lines:
            lines.remove(line)
    return replace(result, error_lines=tuple(lines), error_count=None)


def _idet_branch_graph(video_index: int, chain: Sequence[str], idet_meta: str,
                       from_s: float | None = None) -> str:
    """The decode pass's filter graph when it also runs interlace detection: the decoded
    video splits into the pass's own chain (to `[main]`) and a branch that lets the first
    `IDET_FRAMES` frames through idet (to `[idet]`); with `from_s`, those from that time
    (seconds on the input's timeline), and two more."""
    head = (f"trim=end_frame={IDET_FRAMES}" if from_s is None
            else f"trim=start={from_s:.6f},trim=end_frame={IDET_FRAMES + 2}")
    return (f"[0:{video_index}]split=2[pass][head];[pass]{','.join(chain) or 'null'}[main];"
            f"[head]{head},{_idet_chain(idet_meta)}[idet]")


def _idet_chain(meta: str) -> str:
    """idet, its counts printed to the file `meta` (read back by `_idet_from`)."""
    return f"idet,metadata=mode=print:file={_filter_value(meta)}"


_NULL_MUXER = "[null"
"""Lines of the null muxer's own (timestamps it finds out of order, as a stream joined by
stream copy can have): about the output, not the decoding; not counted as errors."""
_ADDRESS = re.compile(r" @ 0x[0-9a-fA-F]+")
"""The context's address in FFmpeg's log prefix ("[h264 @ 0x55d1...]"): noise to a user."""


def _video_filter(name: str, min_s: float = MIN_STRETCH_S) -> str:
    if name == "blackdetect":
        return f"blackdetect=d={min_s}:pix_th={BLACK_PIXEL_THRESHOLD}"
    return f"freezedetect=n={FREEZE_NOISE}:d={min_s or SPAN_MIN_FREEZE_S}"


def _in_window(row: tuple[float, ...], window: Window, exact: bool = False) -> bool:
    """Whether a stats row's frame (time: its second field; with `exact`, its third, the
    frame's time before the encoder rounds it to its 1/rate grid) is one of the span's."""
    if exact and len(row) > 2 and not math.isnan(row[2]):
        return window.holds(row[2])
    return len(row) > 1 and not math.isnan(row[1]) and window.holds(row[1])


def _shifted(row: tuple[float, ...], window: Window) -> tuple[float, ...]:
    return (row[0], row[1] - window.offset_s, *row[2:])


def _filter_value(value: str) -> str:
    """Escape a filter option value for use inside a filtergraph description (both the
    option level and the graph level of FFmpeg's quoting)."""
    for char in "\\':":
        value = value.replace(char, "\\" + char)
    for char in "\\'[],;":
        value = value.replace(char, "\\" + char)
    return value


def _read_stats(path: str) -> list[tuple[float, ...]]:
    """Rows of an `-stats_enc_pre` file, one per frame, as numbers (NaN where a field is
    not a number, e.g. a frame without a timestamp)."""
    rows = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    rows.append(tuple(_number(x) for x in line.split()))
    except FileNotFoundError:
        return []
    return rows


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _last_time(rows: Sequence[tuple[float, ...]]) -> tuple[float, ...] | None:
    """The last row with a time (second field)."""
    for row in reversed(rows):
        if len(row) > 1 and not math.isnan(row[1]):
            return row
    return None


def _read_metadata(path: str) -> tuple[tuple[float, dict[str, str]], ...]:
    """Frames of a metadata=mode=print file: (pts_time, {key: value})."""
    frames: list[tuple[float, dict[str, str]]] = []
    try:
        with open(path, encoding="utf-8") as handle:
            for raw in handle:
                line = raw.strip()
                if line.startswith("frame:"):
                    time = 0.0
                    for part in line.split():
                        if part.startswith("pts_time:"):
                            try:
                                time = float(part[len("pts_time:") :])
                            except ValueError:
                                time = frames[-1][0] if frames else 0.0
                    frames.append((time, {}))
                elif "=" in line and frames:
                    key, _, value = line.partition("=")
                    frames[-1][1][key] = value
    except FileNotFoundError:
        return ()
    return tuple(frames)


def _meta_float(meta: dict[str, str], key: str) -> float | None:
    try:
        return float(meta[key])
    except (KeyError, ValueError):
        return None


# --- timing and geometry --------------------------------------------------------------------


@dataclass(frozen=True)
class IdetCounts:
    """Frames idet's single-frame detection classified, over the frames it looked at."""

    tff: int
    bff: int
    progressive: int
    undetermined: int = 0

    @property
    def total(self) -> int:
        return self.tff + self.bff + self.progressive + self.undetermined


def _idet_from(frames: Sequence[tuple[float, dict[str, str]]]) -> IdetCounts | None:
    """The counts in idet's metadata print file (None when it has none)."""
    if not frames:
        return None
    last = frames[-1][1]  # the counts are cumulative: the last frame has the totals
    counts = [
        _meta_float(last, f"lavfi.idet.single.{key}")
        for key in ("tff", "bff", "progressive", "undetermined")
    ]
    if any(c is None for c in counts):
        return None
    return IdetCounts(*(int(c) for c in counts))
