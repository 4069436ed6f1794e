"""The delivery formats users and studios hold, all in ONE pipeline run beside a good MP4.

Containers MP4, MOV, Matroska, WebM, MXF (OP1a), MPEG-TS, M2TS and AVI; video H.264,
HEVC 8- and 10-bit (SDR, HDR10, HLG), AV1, VP9, ProRes, DNxHD and DNxHR, MPEG-2 and
JPEG 2000; audio AAC, PCM, AC-3, Opus, FLAC and MP3. Not the cross product: each
container, video codec and audio codec at least once, in combinations the bundled FFmpeg
writes. Each source is 2 s (160x90 where the codec allows) and must publish with every
frame of its source, or be refused at inspection with a record that names its format and
says what to do (a codec no staging container takes: MS-MPEG4 v3 in AVI). The good MP4
publishes whatever the others do.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from media.core import ffmpeg
from media.core.naming import title_id_for
from pipeline.local_runner import LOCAL_RUNNER

SECONDS = 2
SMALL = "160x90"


@dataclass(frozen=True)
class Source:
    name: str
    video: tuple[str, ...]
    """FFmpeg's video output options."""
    audio: tuple[str, ...]
    """FFmpeg's audio output options (the tone is 48 kHz stereo)."""
    size: str = SMALL
    muxer: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    """Words the inspection refusal's error names; () where the source must publish."""

    @property
    def title_id(self) -> str:
        return title_id_for(self.name)


X264 = ("-c:v", "libx264", "-preset", "ultrafast")
X265_10 = ("-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le")
BT2020 = ("-color_primaries", "bt2020", "-colorspace", "bt2020nc")
SVTAV1 = ("-c:v", "libsvtav1", "-preset", "12")
PCM = ("-c:a", "pcm_s16le")

SOURCES = [
    Source("good.mp4", X264, ("-c:a", "aac")),
    Source("h264-flac.mkv", X264, ("-c:a", "flac")),
    Source("hevc8-ac3.mp4", ("-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1"),
           ("-c:a", "ac3")),
    Source("hevc10-opus.mkv", X265_10, ("-c:a", "libopus")),
    Source("hevc10-hdr10-aac.mov", (*X265_10, *BT2020, "-color_trc", "smpte2084",
                                    "-tag:v", "hvc1"), ("-c:a", "aac")),
    Source("hevc10-hlg-ac3.ts", (*X265_10, *BT2020, "-color_trc", "arib-std-b67"),
           ("-c:a", "ac3")),
    Source("av1-opus.mkv", SVTAV1, ("-c:a", "libopus")),
    Source("av1-aac.mp4", SVTAV1, ("-c:a", "aac")),
    Source("vp9-opus.webm", ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"),
           ("-c:a", "libopus")),
    Source("prores-pcm.mov", ("-c:v", "prores_ks", "-profile:v", "2"), PCM),
    # DNxHD has fixed frame sizes (1280x720 the smallest); DNxHR takes 256x120 and up.
    Source("dnxhd-pcm.mxf", ("-c:v", "dnxhd", "-b:v", "60M", "-pix_fmt", "yuv422p"), PCM,
           size="1280x720"),
    Source("dnxhr-pcm.mxf", ("-c:v", "dnxhd", "-profile:v", "dnxhr_lb", "-pix_fmt", "yuv422p"),
           PCM, size="256x144"),
    Source("dnxhr-aac.mov", ("-c:v", "dnxhd", "-profile:v", "dnxhr_sq", "-pix_fmt", "yuv422p"),
           ("-c:a", "aac"), size="256x144"),
    Source("jpeg2000-pcm.mxf", ("-c:v", "jpeg2000", "-pix_fmt", "yuv422p"), PCM),
    Source("mpeg2-pcm.mxf", ("-c:v", "mpeg2video", "-q:v", "4"), PCM),
    Source("mpeg2-mp3.ts", ("-c:v", "mpeg2video", "-q:v", "4"), ("-c:a", "libmp3lame")),
    Source("h264-ac3.m2ts", X264, ("-c:a", "ac3"), muxer=("-f", "mpegts",
                                                          "-mpegts_m2ts_mode", "1")),
    Source("h264-mp3.avi", X264, ("-c:a", "libmp3lame")),
    Source("msmpeg4-pcm.avi", ("-c:v", "msmpeg4"), PCM, refused=("msmpeg4v3", "avi")),
]  # fmt: skip


def _make(source: Source, path: Path) -> None:
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", f"testsrc2=size={source.size}:rate=25:duration={SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}",
        "-ac", "2", *source.video, *source.audio, *source.muxer, str(path)))


def _frames(data: bytes | str) -> int:
    with av.open(io.BytesIO(data) if isinstance(data, bytes) else data) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """The output root of one run over every source, and each source's frame count."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline

    folder = tmp_path_factory.mktemp("formats")
    assert len({s.title_id for s in SOURCES}) == len(SOURCES)
    frames = {}
    for source in SOURCES:
        _make(source, folder / source.name)
        frames[source.title_id] = _frames(str(folder / source.name))
    out = tmp_path_factory.mktemp("formats-out")
    config = JobConfig(output_root=str(out), ladder="fixed", max_renditions=1, chunk_segments=1,
                       encode=EncodeSettings(preset="ultrafast"), score_vmaf=False).validate()
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]), blocking=True) as p:
        build_pipeline(p, [str(folder / s.name) for s in SOURCES], config)
    return out, frames


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_each_format_publishes_every_frame_or_is_refused_at_inspection(run, source):
    out, frames = run
    title = out / source.title_id
    record_path = out / "_errors" / f"{source.title_id}.json"
    if source.refused:
        record = json.loads(record_path.read_text())
        assert record["stage"] == "inspect"
        assert all(word in record["error"] for word in source.refused), record["error"]
        assert "Re-export" in record["hint"]
        assert not title.exists()
        return
    assert not record_path.exists(), record_path.read_text()
    assert (title / "master.m3u8").is_file() and (title / "manifest.mpd").is_file()
    assert frames[source.title_id] == SECONDS * 25
    (video,) = (title / "video").iterdir()
    published = b"".join(p.read_bytes() for p in [video / "init.mp4",
                                                  *sorted(video.glob("seg-*.m4s"))])
    assert _frames(published) == frames[source.title_id], video.name
    assert list((title / "audio").glob("aac-*/seg-*.m4s")), "the audio track is published"
