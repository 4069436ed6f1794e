"""IMF packages through the whole pipeline, in one run: a good package (two segments, an
entry point and a repeat, English and French audio, IMSC1 subtitles, markers) publishes
with the CPL's 48 frames in every rendition, each language as an audio track, the
subtitles as WebVTT and the markers in report.json; a supplemental package adds German
to its picture (--imf_assetmaps); a package missing a track file and one whose track
file fails its SHA-1 become dead letters with hints.

Tolerances: each rendition's frames against FFmpeg's own composition of the CPL (`-f imf`)
at least `MIN_PSNR_DB` on average (a 90p encode of a 160x90 JPEG 2000 picture); each
audio track lasts the title within one AAC frame and keeps its own tone (440/660 Hz)
within `TONE_HZ`.
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from media.core import ffmpeg
from pipeline.local_runner import LOCAL_RUNNER
from tests.imf_factory import CplSpec, ImfFactory, Res, Seg

FRAMES = 48  # 24 + 2 x 12 at 24 fps
MIN_PSNR_DB = 30.0
MIN_PSNR_SMALL_DB = 26.0
"""The same for a rung under the source's size (44p at 6 CRF steps more: about 29 dB)."""
TONE_HZ = 15.0
AAC_FRAME_S = 1024 / 48000
CUES = [(0.5, 1.5, "Hello from the start."), (1.6, 1.9, "Still the first half.")]


@dataclass
class Run:
    root: Path
    out: Path
    good: str
    cpl: str

    @property
    def title(self) -> Path:
        return self.out / "Feature_Film-v1"


def _good_cpl() -> CplSpec:
    """Frames 0-23 of v1, then its frames 12-23 twice; audio and text alike; markers."""
    return CplSpec("Feature Film", [
        Seg(image=[Res("v1", duration=24)],
            audio=[[Res("en", duration=24)], [Res("fr", duration=24)]],
            subtitles=[Res("sub", duration=24)], markers=[("FFOC", 0), ("FFTC", 2)]),
        Seg(image=[Res("v1", entry=12, duration=12, repeat=2)],
            audio=[[Res("en", entry=12, duration=12, repeat=2)],
                   [Res("fr", entry=12, duration=12, repeat=2)]],
            subtitles=[Res("sub", entry=24, duration=24)],
            markers=[("FFEC", 12), ("LFOC", 23)]),
    ], version="v1")


@pytest.fixture(scope="module")
def imf_run(tmp_path_factory) -> Run:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline
    from transforms.ingest import expand_sources

    root = tmp_path_factory.mktemp("imf-e2e")
    factory = ImfFactory(str(root))
    factory.image("v1", "good", FRAMES)
    factory.audio("en", "good", FRAMES, language="en")
    factory.audio("fr", "good", FRAMES, language="fr", frequency=660)
    factory.imsc1("sub", "good", FRAMES, CUES, language="en")
    spec = _good_cpl()
    good = factory.package("good", [spec])
    factory.audio("de", "supp", FRAMES, language="de", frequency=550)
    supp = factory.package("supp", [CplSpec("Feature Film", [
        Seg(image=[Res("v1")], audio=[[Res("en")], [Res("de")]])], version="v1-de")])
    factory.image("v2", "missing", 24)
    factory.audio("a2", "missing", 24)
    missing = factory.package("missing", [CplSpec("Missing Asset", [
        Seg(image=[Res("v2")], audio=[[Res("a2")]])])])
    os.remove(os.path.join(missing, "a2.mxf"))
    factory.image("v3", "hash", 24)
    damaged = factory.package("hash", [CplSpec("Bad Hash", [Seg(image=[Res("v3")])])])
    with open(os.path.join(damaged, "v3.mxf"), "r+b") as handle:  # same size, other bytes
        handle.seek(os.path.getsize(handle.name) // 2)
        byte = handle.read(1)
        handle.seek(-1, io.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    out = tmp_path_factory.mktemp("imf-e2e-out")
    config = JobConfig(output_root=str(out), ladder="fixed", max_renditions=2,
                       chunk_segments=1, segment_s=1, score_vmaf=False,
                       encode=EncodeSettings(preset="veryfast"),
                       imf_assetmaps=(good,)).validate()
    sources = expand_sources(f"{good}/,{supp},{missing},{damaged}")
    assert sources == [good, supp, missing, damaged]  # a package folder is one source
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]), blocking=True) as p:
        outputs = build_pipeline(p, sources, config)
        assert_that(outputs.published | beam.Map(lambda t: t.title_id),
                    equal_to(["Feature_Film-v1", "Feature_Film-v1-de"]))
    cpl = os.path.join(good, f"CPL_{spec.id[9:]}.xml")
    return Run(Path(root), Path(out), good, cpl)


def _track_bytes(folder: Path) -> bytes:
    return (folder / "init.mp4").read_bytes() + b"".join(
        p.read_bytes() for p in sorted(folder.glob("seg-*.m4s")))


def _gray_frames(source, *input_args) -> list[np.ndarray]:
    with av.open(source, *input_args) as container:
        return [f.to_ndarray(format="gray").astype(np.float64)
                for f in container.decode(container.streams.video[0])]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _composed_reference(run: Run, tmp_path: Path) -> list[np.ndarray]:
    """FFmpeg's own composition of the CPL (its imf demuxer), decoded to gray frames."""
    path = tmp_path / "reference.nut"
    ffmpeg.run(ffmpeg.ffmpeg_argv("-f", "imf", "-i", run.cpl, "-map", "0:v:0",
                                  "-c:v", "rawvideo", "-pix_fmt", "gray", str(path)))
    return _gray_frames(str(path))


def test_every_rendition_has_the_cpl_frames_exactly(imf_run, tmp_path):
    reference = _composed_reference(imf_run, tmp_path)
    assert len(reference) == FRAMES
    renditions = sorted((imf_run.title / "video").iterdir())
    assert len(renditions) == 2
    own = _gray_frames(os.path.join(imf_run.good, "v1.mxf"))
    for track in renditions:
        frames = _gray_frames(io.BytesIO(_track_bytes(track)))
        assert len(frames) == FRAMES, track.name
        # A rung under the source's size (the fixed ladder's second) against the
        # composition scaled to it.
        shape = frames[0].shape
        scores = [_psnr(a, _scaled(b, shape)) for a, b in zip(frames, reference, strict=True)]
        least = MIN_PSNR_DB if shape == reference[0].shape else MIN_PSNR_SMALL_DB
        assert np.mean(scores) >= least, (track.name, np.mean(scores))
        # Frame 36 shows v1's frame 12 again (the repeat): it matches the composition's
        # frame 36, not the track file's own frame 36.
        assert (_psnr(frames[36], _scaled(reference[36], shape))
                > _psnr(frames[36], _scaled(own[36], shape)) + 3)


def _scaled(frame: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A gray frame at `shape` (FFmpeg's scaler, as the encode's)."""
    if frame.shape == shape:
        return frame
    image = av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="gray")
    return image.reformat(width=shape[1], height=shape[0]).to_ndarray().astype(np.float64)


def _dominant_hz(data: bytes) -> tuple[float, float]:
    """(strongest frequency, duration in seconds) of an AAC track's decoded samples."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        mono = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])
    window = mono[rate // 4: rate // 4 + rate]
    spectrum = np.abs(np.fft.rfft(window))
    return float(np.argmax(spectrum) * rate / len(window)), len(mono) / rate


def test_each_audio_language_is_a_track_with_its_tag(imf_run):
    master = (imf_run.title / "master.m3u8").read_text()
    languages = re.findall(r'#EXT-X-MEDIA:TYPE=AUDIO,.*?LANGUAGE="([\w-]+)"', master)
    assert languages == ["en", "fr"]
    tones = {}
    for folder in sorted((imf_run.title / "audio").iterdir()):
        tones[folder.name], seconds = _dominant_hz(_track_bytes(folder))
        assert abs(seconds - FRAMES / 24) <= 2 * AAC_FRAME_S, (folder.name, seconds)
    assert list(tones) == ["aac-en-0", "aac-fr-1"]
    assert abs(tones["aac-en-0"] - 440) <= TONE_HZ and abs(tones["aac-fr-1"] - 660) <= TONE_HZ


def test_a_supplemental_package_adds_its_language_to_the_original_picture(imf_run):
    """'supp' holds only German audio; its CPL plays the original package's picture and
    English audio, found through --imf_assetmaps."""
    title = imf_run.out / "Feature_Film-v1-de"
    master = (title / "master.m3u8").read_text()
    assert re.findall(r'#EXT-X-MEDIA:TYPE=AUDIO,.*?LANGUAGE="([\w-]+)"', master) == ["en", "de"]
    tone, seconds = _dominant_hz(_track_bytes(title / "audio" / "aac-de-1"))
    assert abs(tone - 550) <= TONE_HZ and abs(seconds - FRAMES / 24) <= 2 * AAC_FRAME_S
    for track in (title / "video").iterdir():
        assert len(_gray_frames(io.BytesIO(_track_bytes(track)))) == FRAMES, track.name


def test_subtitles_are_webvtt_on_the_title_timeline(imf_run):
    master = (imf_run.title / "master.m3u8").read_text()
    assert re.search(r'TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en"', master)
    text = (imf_run.title / "subtitles" / "vtt-en-0" / "subtitles.vtt").read_text()
    assert text.startswith("WEBVTT")
    # The document's first second plays, then its second second from 1 s (segment 2).
    assert "00:00:00.500 --> 00:00:01.000\nHello from the start." in text
    assert "00:00:01.600 --> 00:00:01.900\nStill the first half." in text


def test_report_lists_the_markers_and_the_package(imf_run):
    report = json.loads((imf_run.title / "report.json").read_text())
    assert report["markers"] == [
        {"label": "FFOC", "frame": 0, "seconds": 0.0},
        {"label": "FFTC", "frame": 2, "seconds": round(2 / 24, 6)},
        {"label": "FFEC", "frame": 36, "seconds": 1.5},
        {"label": "LFOC", "frame": 47, "seconds": round(47 / 24, 6)}]
    source = report["source"]
    assert (source["container"], source["frame_count"], source["package_uri"]) == (
        "imf", FRAMES, imf_run.cpl)
    assert source["video_codec"] == "jpeg2000"


def test_bad_packages_are_dead_letters_with_hints(imf_run):
    errors = imf_run.out / "_errors"
    missing = json.loads((errors / "missing.json").read_text())
    assert missing["stage"] == "inspect (IMF)"
    assert "a2.mxf" in missing["error"] and "missing" in missing["error"]
    assert "Upload every file" in missing["hint"]
    damaged = json.loads((errors / "Bad_Hash-v1.json").read_text())
    assert "v3.mxf" in damaged["error"] and "SHA-1" in damaged["error"]
    assert damaged["hint"]
    assert not (imf_run.out / "Bad_Hash-v1").exists()
    assert not (errors / "Feature_Film-v1.json").exists()


def test_work_area_is_cleared_after_publishing(imf_run):
    assert not (imf_run.out / "_work" / "Feature_Film-v1").exists()
