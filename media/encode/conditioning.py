"""Source conditioning: what every encode, trial and VMAF reference does to a source's
frames before scaling, so that every rung shows the picture the source means.

- **Constant frame rate.** `media.encode.commands.select_chunk` gives each slot of the
  title's grid the source frame at (nearest) or last before its time, on the source's own
  timeline (FFmpeg `fps`), and exactly the chunk's frames: a variable-frame-rate source is
  normalised to a constant rate (frames repeated or dropped, never re-timed), a gap in the
  timestamps holds the frame before it, jitter under half a frame moves nothing. The
  rate and the frame count are inspection's verdict (`media.inspect.frame_timing`).
- **Interlaced** sources are deinterlaced (`bwdif`, one frame per frame, the field
  order from the stream or auto-detected).
- **Rotation** metadata (the display matrix) is applied by transposing/flipping;
  FFmpeg's own auto-rotation is switched off so the turn is made exactly once, and
  `SourceInfo.width/height` are already the displayed (rotated) size.
- **Non-square pixels** need nothing here: every output is scaled to the display
  aspect ratio (`SourceInfo.width` is the display width) with `setsar=1`.
- **HDR** (PQ or HLG transfer) is tone-mapped to SDR BT.709 for the H.264 ladder
  (`zscale` to linear light, Hable tone mapping, back to BT.709 limited range). The
  ladder is H.264, which players only take as SDR 8-bit; the report says the title was
  tone-mapped. VMAF is scored against the tone-mapped reference, so it measures the
  encode, not the tone mapping.
  With `--hdr keep` the HEVC/AV1 ladders keep the HDR instead (`Rendition.hdr`): their
  frames skip the tone mapping (`condition(..., keep_hdr=True)`) and are encoded 10-bit
  with the source's colour signalling; VMAF scores them after the same tone mapping on
  both sides (`tone_mapped`, `media.quality.vmaf.distorted_frames`).
- **Full-range** YUV (a camera's or a screen recorder's `yuvj420p`, or YUV tagged `pc`)
  is converted to limited range, which players expect of H.264 (`scale`, full to
  limited); the inspection says so (`full_range`).
"""

from __future__ import annotations

from media.core.types import SourceInfo

__all__ = ["condition", "tone_mapped"]


def condition(stream, source: SourceInfo, keep_hdr: bool = False):
    """Deinterlace, rotate and tone-map `stream` (decoded source frames) as `source` needs;
    `keep_hdr`: an HDR source's frames as they are (for HDR rungs), not tone-mapped."""
    if source.interlaced:
        stream = stream.filter("bwdif", mode="send_frame", parity="auto", deint="all")
    if source.rotation_deg == 90:
        stream = stream.filter("transpose", dir="clock")
    elif source.rotation_deg == 270:
        stream = stream.filter("transpose", dir="cclock")
    elif source.rotation_deg == 180:
        stream = stream.filter("hflip").filter("vflip")
    if source.hdr and keep_hdr:
        return stream
    if source.hdr:
        stream = tone_mapped(stream)
    elif full_range_yuv(source):
        stream = (stream.filter("scale", in_range="full", out_range="limited")
                  .filter("format", "yuv420p"))
    return stream


def tone_mapped(stream):
    """HDR frames (PQ or HLG, as their tags say) tone-mapped to SDR BT.709 limited range,
    yuv420p: `zscale` to linear light, Hable tone mapping, back to BT.709. The frames'
    HDR10 side data (mastering display, light levels) is dropped: FFmpeg would otherwise
    pass it to the encoder and the MP4 muxer, which wrote the source's `mdcv` and `clli`
    into the SDR H.264 track's init segment."""
    return (stream
            .filter("zscale", t="linear", npl=100)
            .filter("format", "gbrpf32le")
            .filter("zscale", p="bt709")
            .filter("tonemap", tonemap="hable", desat=0)
            .filter("zscale", t="bt709", m="bt709", r="tv")
            .filter("sidedata", mode="delete", type="MASTERING_DISPLAY_METADATA")
            .filter("sidedata", mode="delete", type="CONTENT_LIGHT_LEVEL")
            .filter("format", "yuv420p"))


def full_range_yuv(source: SourceInfo) -> bool:
    """Whether the source is full-range YUV (RGB sources are converted to limited-range
    YUV by the encoder's pixel format anyway)."""
    fmt = source.pix_fmt or ""
    return not fmt.startswith(("rgb", "bgr", "gbr")) and (
        source.color_range == "pc" or fmt.startswith("yuvj"))
