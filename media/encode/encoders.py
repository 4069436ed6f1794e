"""Video encoders: which FFmpeg encoder makes a ladder, and the options that keep every
encoder on the segment grid (closed GOP, an IDR frame at every segment start, no
scene-cut keyframes) with capped constant-quality rate control.

    --encoder x264 (default) | x265 | svtav1 | nvenc-h264 | nvenc-hevc | nvenc-av1 | auto

Each encoder is one entry of `ENCODERS`: its FFmpeg encoder and the options of its own
(`video_options` adds those every encoder shares). `auto` probes NVENC once per worker
process with a real one-frame encode (`probe_nvenc`) and uses `nvenc-h264` when it works,
otherwise x264, and says which and why. A GPU without NVENC (data-centre parts such as
the H100 have NVDEC but no NVENC) fails the probe and falls back. An explicitly named
NVENC encoder that fails is an error for its chunks (dead letter with a hint), never a
silent CPU encode.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction  # noqa: F401 (doctests)

from media.core import ffmpeg
from media.core.errors import MediaError
from media.core.types import ChunkSpan, EncodeSettings, Rendition, SegmentGrid
from media.encode.hwaccel import ProbeResult

__all__ = ["CODECS", "CODEC_ENCODERS", "ENCODERS", "ENCODER_NAMES", "Encoder", "codec_crf",
           "codec_encoder", "encoder_named", "hdr_options", "keyframe_expr", "probe_nvenc",
           "resolve_encoder", "trial_encoder", "video_options", "with_hdr_metadata",
           "x265_preset"]

_SVT_PRESETS = {"ultrafast": 12, "superfast": 11, "veryfast": 10, "faster": 9, "fast": 8,
                "medium": 7, "slow": 5, "slower": 4, "veryslow": 2, "placebo": 1}
"""x264 preset names onto SVT-AV1's 0 (slowest) to 13 (fastest)."""
_X265_PRESETS = {"ultrafast": "superfast", "superfast": "veryfast", "veryfast": "faster",
                 "faster": "fast", "fast": "medium", "medium": "slow", "slow": "slower",
                 "slower": "veryslow", "veryslow": "placebo", "placebo": "placebo"}
"""x264 preset names onto x265's, one step slower. At x264's own preset name x265 gains
little over x264 on grain and at small sizes; one step slower (medium -> slow, which
turns on RDOQ level 2 and rectangular partitions, and early skip off) it gains what HEVC
promises. Against x264 medium, 16 s at 320x180 and 640x360 with grain, four CRFs each:
x265 medium -6.0 and -0.7 % BD-rate (VMAF) at 1.36x and 1.40x x264's CPU seconds, x265
slow -43.7 and -27.7 % at 2.55x and 2.91x; in the pipeline's ladders 2.8-3.9x
(docs/per-title.md)."""
_NVENC_PRESETS = {"ultrafast": "p1", "superfast": "p2", "veryfast": "p3", "faster": "p3",
                  "fast": "p4", "medium": "p5", "slow": "p6", "slower": "p7",
                  "veryslow": "p7", "placebo": "p7"}


def _crf(value: float, limit: int) -> str:
    value = min(float(limit), max(0.0, value))
    return f"{value:g}"


def _x264(rendition: Rendition, settings: EncodeSettings, n: int) -> dict[str, str]:
    return {"preset": settings.preset, "profile:v": settings.profile, "crf": f"{rendition.crf:g}",
            "x264-params": f"keyint={n}:min-keyint={n}:scenecut=0:open-gop=0:stitchable=1"}


def _x265(rendition: Rendition, settings: EncodeSettings, n: int) -> dict[str, str]:
    params = f"keyint={n}:min-keyint={n}:scenecut=0:open-gop=0:log-level=error"
    # forced-idr: a keyframe forced at a segment start (`keyframe_expr`) is an IDR frame,
    # not an I frame inside a GOP, where a grid cut at shot changes puts it off keyint
    options = {"preset": x265_preset(settings.preset), "tag:v": "hvc1",
               "crf": _crf(rendition.crf, 51), "forced-idr": "1"}
    if rendition.hdr:  # Main10, the colour description in the VUI; HDR10's SEI for PQ
        transfer = HDR_TRANSFERS[rendition.hdr][0]
        params += (f":colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc"
                   f"{':hdr10=1' if rendition.hdr == 'pq' else ''}")
        options["profile:v"] = "main10"
    return options | {"x265-params": params}


def x265_preset(x264_preset: str) -> str:
    """x265's preset for the job's `--preset` (an x264 name): `_X265_PRESETS`.

    >>> x265_preset("medium"), x265_preset("veryfast")
    ('slow', 'faster')
    """
    return _X265_PRESETS.get(x264_preset, x264_preset)


def _svtav1(rendition: Rendition, settings: EncodeSettings, n: int) -> dict[str, str]:
    params = "scd=0:enable-overlays=0"
    if rendition.hdr:  # the sequence header's colour description (CICP code points)
        params += (f":color-primaries=9:transfer-characteristics="
                   f"{HDR_TRANSFERS[rendition.hdr][1]}:matrix-coefficients=9")
    return {"preset": str(_SVT_PRESETS.get(settings.preset, 8)), "g": str(n),
            "crf": _crf(rendition.crf, 63), "svtav1-params": params}


HDR_TRANSFERS = {"pq": ("smpte2084", 16), "hlg": ("arib-std-b67", 18)}
"""An HDR rung's transfer (`Rendition.hdr`): FFmpeg's name and its CICP code point
(ITU-T H.273 TransferCharacteristics). Primaries and matrix are BT.2020 (9, non-constant
luminance) for both."""


def with_hdr_metadata(options: dict[str, str], encoder: Encoder, mastering_display: str,
                      content_light: str) -> dict[str, str]:
    """An HDR10 rung's `options` with the source's mastering display colour volume and
    content light level (`SourceInfo.mastering_display`, `content_light`) given to the
    encoder, which writes them into the bitstream: x265 as its `master-display` and
    `max-cll` (SEI), SVT-AV1 as its `mastering-display` and `content-light` (metadata
    OBUs; chromaticities and luminances in their own units, not ST 2086's integers).
    FFmpeg passes them on from the frames' side data to the first output of a process
    only, so every HDR rung is given them here."""
    if not (mastering_display or content_light) or encoder.codec not in ("libx265",
                                                                         "libsvtav1"):
        return options
    extra = []
    if encoder.codec == "libx265":
        if mastering_display:
            extra.append(f"master-display={mastering_display}")
        if content_light:
            extra.append(f"max-cll={content_light}")
        key = "x265-params"
    else:
        if mastering_display:
            extra.append(f"mastering-display={_svt_mastering(mastering_display)}")
        if content_light:
            extra.append(f"content-light={content_light}")
        key = "svtav1-params"
    return options | {key: ":".join([options[key], *extra]) if options.get(key)
                      else ":".join(extra)}


def _svt_mastering(mastering_display: str) -> str:
    """x265's 'G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)' (ST 2086 integers: chromaticity in
    0.00002, luminance in 0.0001 cd/m2) in SVT-AV1's decimal form."""
    out = []
    for part in mastering_display.replace(")", ")|").split("|"):
        if not part:
            continue
        name, _, values = part.partition("(")
        first, second = (int(v) for v in values.rstrip(")").split(","))
        unit = 10000 if name == "L" else 50000
        out.append(f"{name}({first / unit:.4f},{second / unit:.4f})")
    return "".join(out)


def hdr_options(hdr: str) -> dict[str, str]:
    """FFmpeg output options of an HDR rung ('pq' or 'hlg'): 10-bit 4:2:0 frames tagged
    BT.2020 with the transfer, which the encoders' own options write into the bitstream
    and the MP4 muxer into the init segment's `colr` (nclx) box. The source's mastering
    display colour volume and content light level reach the encoder as side data of the
    decoded frames: x265 and SVT-AV1 write them as SEI / metadata OBUs, the muxer as the
    `mdcv` and `clli` boxes."""
    return {"pix_fmt": "yuv420p10le", "color_primaries": "bt2020",
            "color_trc": HDR_TRANSFERS[hdr][0], "colorspace": "bt2020nc",
            "color_range": "tv"}


def _nvenc(rendition: Rendition, settings: EncodeSettings, n: int) -> dict[str, str]:
    return {"preset": _NVENC_PRESETS.get(settings.preset, "p5"), "tune": "hq", "rc": "vbr",
            "cq": _crf(rendition.crf, 51), "b:v": "0", "g": str(n), "forced-idr": "1",
            "no-scenecut": "1", "strict_gop": "1"}


def _nvenc_hevc(rendition: Rendition, settings: EncodeSettings, n: int) -> dict[str, str]:
    return _nvenc(rendition, settings, n) | {"tag:v": "hvc1"}


@dataclass(frozen=True)
class Encoder:
    name: str
    codec: str
    """FFmpeg encoder."""
    family: str
    """'h264', 'hevc' or 'av1'."""
    own_options: Callable[[Rendition, EncodeSettings, int], dict[str, str]] = field(
        repr=False, compare=False)
    """(rendition, settings, segment frames) -> this encoder's options: its preset, its
    quality value (clamped to its range) and the GOP settings that keep it on the grid."""
    gpu: bool = False
    threads_shared: bool = False
    """Where the settings leave threads to the encoder, the small renditions of a shared
    process get one thread each (`media.encode.commands.shared_process_threads`)."""


ENCODERS = {e.name: e for e in (
    Encoder("x264", "libx264", "h264", _x264, threads_shared=True),
    Encoder("x265", "libx265", "hevc", _x265),
    Encoder("svtav1", "libsvtav1", "av1", _svtav1),
    Encoder("nvenc-h264", "h264_nvenc", "h264", _nvenc, gpu=True),
    Encoder("nvenc-hevc", "hevc_nvenc", "hevc", _nvenc_hevc, gpu=True),
    Encoder("nvenc-av1", "av1_nvenc", "av1", _nvenc, gpu=True),
)}
ENCODER_NAMES = ("auto", *ENCODERS)


def encoder_named(name: str) -> Encoder:
    try:
        return ENCODERS[name]
    except KeyError:
        raise MediaError(f"unknown encoder {name!r}; choose from {', '.join(ENCODER_NAMES)}",
                         hint="Pass --encoder with one of the listed names.") from None


def _grid(grid: SegmentGrid, chunk: ChunkSpan | None) -> dict[str, str]:
    return {"force_key_frames": keyframe_expr(grid, chunk),
            "video_track_timescale": str(grid.timescale)}


def keyframe_expr(grid: SegmentGrid, chunk: ChunkSpan | None = None) -> str:
    """FFmpeg's `force_key_frames` for an encode of `chunk` (frame n of the encode is its
    first frame + n): an IDR frame at the start of each of its segments, every
    `segment_frames` on an even grid, or at the frames its segments start on a grid cut
    at shot changes.

    >>> keyframe_expr(SegmentGrid(100, Fraction(25)))
    'expr:eq(mod(n,100),0)'
    >>> keyframe_expr(SegmentGrid(100, Fraction(25)), ChunkSpan(1, 70, 160, (70, 130), 1))
    'expr:eq(n,0)+eq(n,60)'
    """
    if chunk is None or not chunk.segment_starts:
        return f"expr:eq(mod(n,{grid.segment_frames}),0)"
    return "expr:" + "+".join(f"eq(n,{start - chunk.start_frame})"
                              for start in chunk.segment_starts)


def _vbv(rendition: Rendition) -> dict[str, str]:
    if not rendition.maxrate_kbps:  # plain constant quality (trial encodes)
        return {}
    return {"maxrate": f"{rendition.maxrate_kbps}k", "bufsize": f"{rendition.bufsize_kbit}k"}


def video_options(encoder: Encoder, rendition: Rendition, settings: EncodeSettings,
                  grid: SegmentGrid, chunk: ChunkSpan | None = None) -> dict[str, str]:
    """FFmpeg output options of one rung: the encoder's own, on the segment grid (an IDR
    frame at every segment start of `chunk`, the grid's timescale), with the rung's rate
    control (capped constant quality, or an average bitrate), VBV-capped."""
    options: dict[str, str] = {"c:v": encoder.codec, "pix_fmt": "yuv420p",
                               **_grid(grid, chunk)}
    if rendition.hdr:
        options |= hdr_options(rendition.hdr)
        if encoder.gpu:  # NVENC takes 10-bit 4:2:0 as P010
            options["pix_fmt"] = "p010le"
    options |= encoder.own_options(rendition, settings, grid.segment_frames)
    if rendition.target_kbps:  # a fixed-bitrate ladder
        options.pop("crf", None)
        options.pop("cq", None)
        options["b:v"] = f"{rendition.target_kbps}k"
    options |= _vbv(rendition)
    if settings.threads and not encoder.gpu:
        options["threads"] = str(settings.threads)
    return options


@functools.cache
def probe_nvenc(codec: str = "h264_nvenc", timeout_s: float = 60.0) -> ProbeResult:
    """Can this machine encode with NVENC? One real frame, once per process."""
    argv = [ffmpeg.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "info",
            "-f", "lavfi", "-i", "color=black:size=256x144:rate=25", "-frames:v", "1",
            "-c:v", codec, "-f", "null", "-"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return ProbeResult(False, f"the probe could not run: {exc}")
    if done.returncode == 0:
        return ProbeResult(True, f"{codec} encoded a test frame")
    return ProbeResult(False, _reason(done.stderr, codec))


def _reason(stderr: str, codec: str) -> str:
    """The line of FFmpeg's output that says why the encoder would not open."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if f"[{codec}" in line or "libcuda" in line or "No capable devices" in line:
            return line.split("] ", 1)[-1][:300]
    return lines[-1][:300] if lines else "the encoder failed"


CODECS = ("h264", "hevc", "av1")
"""Codec families a title's ladders may use (`--codecs`), most efficient last."""
CODEC_ENCODERS = {"h264": ("x264", "nvenc-h264"), "hevc": ("x265", "nvenc-hevc"),
                  "av1": ("svtav1", "nvenc-av1")}
"""Each codec's (software encoder, NVENC encoder)."""
_AV1_CRF_SCALE = (1.5, 2.0)
"""SVT-AV1's CRF (0-63) for an x264 CRF c: 1.5 c + 2 (x264 23 -> 36.5; the trial CRFs
19/26/33 -> 30.5/41/51.5), so the trial CRFs span the same part of each codec's curve.
On 4 s of testsrc2 at 640x360: x264 veryfast CRF 23 VMAF 96.6; SVT-AV1 preset 10
CRF 36 96.9, CRF 40 95.7."""


def codec_encoder(codec: str, requested: str) -> str:
    """The encoder request of a codec's ladder when the job asked for `--encoder
    requested`: that encoder where it makes this codec; `auto-<codec>` (NVENC where a
    probe works, else software: `resolve_encoder`) where `auto` or an NVENC encoder was
    asked; else the codec's software encoder (h264 x264, hevc x265, av1 svtav1)."""
    software, _ = CODEC_ENCODERS[codec]
    if requested in ENCODERS and ENCODERS[requested].family == codec:
        return requested
    if requested == "auto" or (requested in ENCODERS and ENCODERS[requested].gpu):
        return "auto" if codec == "h264" else f"auto-{codec}"
    return software


def trial_encoder(codec: str) -> str:
    """The encoder of a codec's trial encodes: its software encoder (the calibration at
    the final settings carries the hull over to the chunks' encoder)."""
    return CODEC_ENCODERS[codec][0]


def codec_crf(codec: str, x264_crf: float) -> float:
    """A quality value on `codec`'s software encoder's scale for an x264 CRF."""
    if codec == "av1":
        scale, offset = _AV1_CRF_SCALE
        return round(min(63.0, max(0.0, scale * x264_crf + offset)), 1)
    return x264_crf


def resolve_encoder(name: str) -> tuple[Encoder, str]:
    """The encoder to use for `--encoder name`, and why (for the log). `auto-hevc` and
    `auto-av1` (a codec's ladder under `--encoder auto`, `codec_encoder`) probe that
    codec's NVENC encoder and fall back to its software encoder."""
    if not name.startswith("auto"):
        return encoder_named(name), f"--encoder {name}"
    codec = name.partition("-")[2] or "h264"
    software, gpu = (ENCODERS[n] for n in CODEC_ENCODERS[codec])
    probe = probe_nvenc(gpu.codec)
    if probe.works:
        return gpu, f"{name}: NVENC works ({probe.detail})"
    return software, f"{name}: NVENC unavailable ({probe.detail}); using {software.name}"
