"""Bad and unusual sources, all in ONE pipeline run: each case is a file, how it is made
and what must become of it. A bad source is a dead letter (`OUT/_errors/<title>.json`
with the stage, the error and a hint) and nothing else of it is written; an unusual but
usable one is published, and meets the HLS authoring rules. The run never crashes.

Every source is tiny (at most 2 s of at most 320x240, or a few bytes) and made here with
FFmpeg. The run's limits are small (1.5 s, 400x300, 1.5 MB) so that the limit cases are
cheap; the good sources are 1 s of 320x240, well inside them.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from media.core import ffmpeg
from media.core.naming import title_id_for
from media.package.isobmff import iter_boxes
from pipeline.local_runner import LOCAL_RUNNER
from tests.media_factory import make_random_bytes, make_text
from tests.test_inspection import _cut, _make

PUBLISHED, REJECTED = "published", "rejected"
LIMITS = {
    "max_duration_s": 1.5,
    "max_width": 400,
    "max_height": 300,
    "max_source_bytes": 1_500_000,
}


def _ff(*args: str) -> None:
    ffmpeg.run(ffmpeg.ffmpeg_argv(*args))


def _clip(path: Path, **options) -> Path:
    """1 s of 320x240 testsrc + a 440 Hz tone (`tests.test_inspection._make`)."""
    options.setdefault("seconds", 1)
    return Path(_make(str(path), **options))


class Base:
    """Files the makers derive their sources from (kept out of the sources folder)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._clean: Path | None = None

    @property
    def clean(self) -> Path:
        if self._clean is None:
            self._clean = _clip(self.folder / "clean.mp4")
        return self._clean


Maker = Callable[[Path, Base], None]


# --- makers ------------------------------------------------------------------------------


def good(path: Path, base: Base) -> None:
    _clip(path)


def empty(path: Path, base: Base) -> None:
    path.write_bytes(b"")


def truncated(keep: float) -> Maker:
    def make(path: Path, base: Base) -> None:
        _cut(str(base.clean), str(path), keep)

    return make


def random_bytes(path: Path, base: Base) -> None:
    make_random_bytes(str(path))


def text(path: Path, base: Base) -> None:
    make_text(str(path))


def png(path: Path, base: Base) -> None:
    _ff("-f", "lavfi", "-i", "testsrc=size=320x240", "-frames:v", "1", "-c:v", "png",
        "-f", "image2", str(path))  # fmt: skip


def audio_only(path: Path, base: Base) -> None:
    _ff("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
        "-c:a", "aac", "-b:a", "64k", str(path))  # fmt: skip


def zero_frames(path: Path, base: Base) -> None:
    # FFmpeg's MP4 muxer drops a track without samples, so this is Matroska: the video
    # track's header (H.264, 320x240) and not one packet (every one dropped by `noise`).
    _ff("-i", str(base.clean), "-map", "0:v", "-c", "copy", "-bsf:v", "noise=drop=1",
        str(path))  # fmt: skip


def corrupt_middle(path: Path, base: Base) -> None:
    """4 KiB in the middle of the file (inside `mdat`) XORed."""
    data = bytearray(base.clean.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 4096):
        data[i] ^= 0xA5
    path.write_bytes(bytes(data))


def copy_of_clean(path: Path, base: Base) -> None:
    path.write_bytes(base.clean.read_bytes())


def sized(width: int, height: int, seconds: float = 1) -> Maker:
    def make(path: Path, base: Base) -> None:
        # yuv444p: x264 takes odd sizes (1x1, 321x241) only without chroma subsampling.
        pix_fmt = "yuv444p" if width % 2 or height % 2 else "yuv420p"
        _clip(path, vf=f"scale={width}:{height},setsar=1", pix_fmt=pix_fmt, seconds=seconds)

    return make


def too_many_bytes(path: Path, base: Base) -> None:
    # 1 s of uncompressed video in Matroska: 2.9 MB, over the 1.5 MB limit.
    _ff("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=1", "-c:v", "rawvideo",
        "-pix_fmt", "yuv420p", str(path))  # fmt: skip


def mp4_claims_10h(path: Path, base: Base) -> None:
    """The movie, track and media headers (mvhd, tkhd, mdhd) say 36000 times the real
    duration (10 h); the sample tables still hold 1 s."""
    data = bytearray(base.clean.read_bytes())

    def walk(start: int, end: int) -> None:
        for box in iter_boxes(data, start, end):
            if box.type in ("moov", "trak", "mdia"):
                walk(box.payload_start, box.end)
            elif box.type in ("mvhd", "tkhd", "mdhd"):
                assert data[box.payload_start] == 0  # version 0: 32-bit times
                at = box.payload_start + 4 + 8 + (8 if box.type == "tkhd" else 4)
                (duration,) = struct.unpack(">I", data[at : at + 4])
                struct.pack_into(">I", data, at, duration * 36000)

    walk(0, len(data))
    path.write_bytes(bytes(data))


def mkv_claims_10h(path: Path, base: Base) -> None:
    """The Matroska segment's Duration (EBML 0x4489, an 8-byte float) times 36000."""
    clean_mkv = _clip(base.folder / "clean.mkv")
    data = bytearray(clean_mkv.read_bytes())
    at = data.find(b"\x44\x89\x88") + 3
    (duration,) = struct.unpack(">d", data[at : at + 8])
    struct.pack_into(">d", data, at, duration * 36000)
    path.write_bytes(bytes(data))


def vfr(path: Path, base: Base) -> None:
    # 10 frames 40 ms apart, then 10 frames 80 ms apart: 1.2 s.
    _clip(path, seconds=0.8, audio_seconds=1.2, video_opts=("-fps_mode", "vfr"),
          vf="setpts='if(lt(N,10),N*2,20+(N-10)*4)/50/TB'")  # fmt: skip


def interlaced(path: Path, base: Base) -> None:
    _clip(path, rate=50, vf="interlace=scan=tff,setfield=tff",
          video_opts=("-flags", "+ilme+ildct", "-field_order", "tt"))  # fmt: skip


def rotated(path: Path, base: Base) -> None:
    # -display_rotation counts counter-clockwise: 270 is a quarter turn clockwise.
    _ff("-display_rotation", "270", "-i", str(base.clean), "-c", "copy", str(path))


def no_audio(path: Path, base: Base) -> None:
    _clip(path, audio=False)


def package(video: str, subtitles: bytes | None = None, copy_video: bool = True) -> Maker:
    """A title package in its own folder beside the sources: `video` as the package names
    it (the clean clip is copied there as film.mp4 when `copy_video`)."""

    def make(path: Path, base: Base) -> None:
        if copy_video:
            (path.parent / "film.mp4").write_bytes(base.clean.read_bytes())
        doc: dict = {"video": video}
        if subtitles is not None:
            (path.parent / f"{path.name}.srt").write_bytes(subtitles)
            doc["subtitles"] = [{"uri": f"{path.name}.srt", "language": "eng"}]
        path.write_text(json.dumps(doc), encoding="utf-8")

    return make


def hls_playlist(path: Path, base: Base) -> None:
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{base.clean}\n"
                    "#EXT-X-ENDLIST\n")  # fmt: skip


def concat_script(path: Path, base: Base) -> None:
    path.write_text(f"ffconcat version 1.0\nfile '{base.clean}'\n")


# --- what must hold of a published title ------------------------------------------------


def _codes(report: dict) -> set[str]:
    return {f["code"] for f in report["inspection"]}


def _kinds(report: dict) -> list[str]:
    return sorted(t["kind"] for t in report["tracks"])


def _video_track(report: dict) -> dict:
    return next(t for t in report["tracks"] if t["kind"] == "video")


def _size(report: dict) -> tuple[int, int]:
    return report["source"]["width"], report["source"]["height"]


ESCAPE = "../" * 30 + "etc/passwd"  # from the package's folder up to / and down


@dataclass(frozen=True)
class Case:
    source: str
    """The source's file name (a title package: NAME.title.json in a folder of its own)."""
    make: Maker
    outcome: str
    what: str
    """What the case tests."""
    error: str = ""
    """Rejected: a substring of the dead letter's error (case-insensitive)."""
    stage: str = "inspect"
    holds: Callable[[dict], bool] | None = None
    """Published: what must hold of its report.json."""
    title: str = ""
    """The title id it must become (default: `title_id_for(source)`)."""

    @property
    def title_id(self) -> str:
        return self.title or title_id_for(self.source)

    @property
    def is_package(self) -> bool:
        return self.source.endswith(".title.json")


CASES = [
    Case("good.mp4", good, PUBLISHED, "control: 1 s 320x240 H.264 + AAC in MP4",
         holds=lambda r: _size(r) == (320, 240) and _kinds(r) == ["audio", "video", "video"]),
    Case("good-mkv.mkv", good, PUBLISHED, "control: the same in Matroska",
         holds=lambda r: r["source"]["container"] == "matroska,webm"),
    Case("empty.mp4", empty, REJECTED, "a 0-byte file", error="is empty (0 bytes)"),
    Case("cut-10.mp4", truncated(0.1), REJECTED, "an MP4 cut at 10 % (mdat cut, no moov)",
         error="truncated"),
    Case("cut-50.mp4", truncated(0.5), REJECTED, "an MP4 cut at 50 % (mdat cut, no moov)",
         error="truncated"),
    Case("cut-90.mp4", truncated(0.9), REJECTED, "an MP4 cut at 90 % (moov cut)",
         error="truncated"),
    Case("random-bytes.mp4", random_bytes, REJECTED, "64 kB of random bytes",
         error="cannot open"),
    Case("text.mp4", text, REJECTED, "a text file named .mp4", error="cannot open"),
    Case("still-as.mp4", png, REJECTED, "a PNG still named .mp4 (image demuxers are "
         "not on the whitelist)", error="cannot open"),
    Case("still.png", png, REJECTED, "a PNG still", error="cannot open"),
    Case("audio-only.m4a", audio_only, REJECTED, "AAC audio only", error="no video stream"),
    Case("zero-frames.mkv", zero_frames, REJECTED, "a video track header and no packet",
         error="cannot open"),
    Case("corrupt-middle.mp4", corrupt_middle, REJECTED,
         "4 KiB in the middle of mdat damaged", error="decoders reported"),
    Case("mp4-inside.mkv", copy_of_clean, PUBLISHED, "an MP4 named .mkv (the content "
         "decides, not the name)", holds=lambda r: r["source"]["container"].startswith("mov,")),
    Case("one-pixel.mp4", sized(1, 1), PUBLISHED, "1x1 video (yuv444p)",
         holds=lambda r: _size(r) == (1, 1) and _video_track(r)["height"] == 2),
    Case("too-big-640x480.mp4", sized(640, 480), REJECTED, "640x480 against --max_width "
         "400 / --max_height 300", error="over the frame size limit of 400x300"),
    Case("odd-321x241.mp4", sized(321, 241), PUBLISHED, "an odd frame size",
         holds=lambda r: "odd_dimensions" in _codes(r) and _video_track(r)["width"] % 2 == 0),
    Case("too-long-2s.mp4", sized(320, 240, seconds=2), REJECTED, "2 s against "
         "--max_duration_s 1.5", error="over the duration limit"),
    Case("too-many-bytes.mkv", too_many_bytes, REJECTED, "2.9 MB against --max_source_bytes "
         "1500000 (refused before it is opened)", error="over the source size limit"),
    Case("claims-10h-mp4.mp4", mp4_claims_10h, PUBLISHED, "mvhd/tkhd/mdhd durations x36000: "
         "FFmpeg times an MP4 by its sample tables, so the 1 s that is there is what counts "
         "(the duration limit is not fooled either way)",
         holds=lambda r: r["source"]["frame_count"] == 25),
    Case("claims-10h-mkv.mkv", mkv_claims_10h, REJECTED, "Matroska segment Duration x36000: "
         "the streams end 10 h before the declared end", error="container declares"),
    Case("vfr.mp4", vfr, PUBLISHED, "variable frame rate (25 then 12.5 fps)",
         holds=lambda r: "vfr" in _codes(r) and r["source"]["frame_rate"] == "25"),
    Case("interlaced.mp4", interlaced, PUBLISHED, "interlaced, tff, flagged",
         holds=lambda r: r["source"]["interlaced"] is True and "interlaced" in _codes(r)),
    Case("rotated.mp4", rotated, PUBLISHED, "display matrix: a quarter turn",
         holds=lambda r: _size(r) == (240, 320) and "rotated" in _codes(r)),
    Case("no-audio.mp4", no_audio, PUBLISHED, "video only",
         holds=lambda r: _kinds(r) == ["video", "video"]),
    Case("bad-subs/bad-subs.title.json", package("film.mp4", b"1\nnot a time\nhello\n"),
         REJECTED, "a title package whose subtitle file does not parse", error=".srt"),
    Case("missing/missing.title.json", package("nowhere.mp4"), REJECTED,
         "a title package naming a missing file", error="does not exist"),
    Case("Fïlm été 2024.mp4", good, PUBLISHED, "Unicode and spaces in the name",
         title="F_lm_t_2024", holds=lambda r: r["source"]["source_uri"].endswith("été 2024.mp4")),
    Case("a;b$(x)&.mp4", good, PUBLISHED, "shell metacharacters in the name", title="a_b_x",
         holds=lambda r: r["source"]["source_uri"].endswith("a;b$(x)&.mp4")),
    Case("escape-rel/escape-rel.title.json", package(ESCAPE, copy_video=False), REJECTED,
         "a title package whose video is ../../…/etc/passwd", error="/etc/passwd"),
    Case("escape-abs/escape-abs.title.json", package("/etc/passwd", copy_video=False),
         REJECTED, "a title package whose video is /etc/passwd", error="/etc/passwd"),
    Case("playlist.m3u8", hls_playlist, REJECTED, "an HLS playlist naming a good clip",
         error="not a media file"),
    Case("concat-script.txt", concat_script, REJECTED, "an ffconcat script naming a good "
         "clip", error="not a media file"),
]  # fmt: skip


@dataclass
class Run:
    out: Path
    sources: Path
    before: set[Path]
    """Every file under the sources folder before the run."""


def _files(root: Path) -> set[Path]:
    return {Path(d, f) for d, _, files in os.walk(root) for f in files}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline

    titles = [case.title_id for case in CASES]
    assert len(set(titles)) == len(titles), "two cases make one title"
    base = Base(tmp_path_factory.mktemp("bad-inputs-base"))
    sources = tmp_path_factory.mktemp("bad-inputs-sources")
    uris = []
    for case in CASES:
        path = sources / case.source
        path.parent.mkdir(parents=True, exist_ok=True)
        case.make(path, base)
        uris.append(str(path))
    before = _files(sources)
    out = tmp_path_factory.mktemp("bad-inputs-out")
    config = JobConfig(output_root=str(out), ladder="fixed", max_renditions=2,
                       chunk_segments=1, encode=EncodeSettings(preset="ultrafast"),
                       score_vmaf=False, **LIMITS).validate()  # fmt: skip
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]), blocking=True) as p:
        build_pipeline(p, uris, config)
    _print_table(out)
    return Run(out, sources, before)


def _record(out: Path, title: str) -> dict | None:
    path = out / "_errors" / f"{title}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _print_table(out: Path) -> None:
    rows = []
    for case in CASES:
        record = _record(out, case.title_id)
        if record:
            outcome, message = f"rejected at {record['stage']}", record["error"]
        elif (out / case.title_id / "master.m3u8").exists():
            report = json.loads((out / case.title_id / "report.json").read_text())
            codes = sorted(_codes(report) - {"colour_defaulted"})
            outcome, message = "published", f"as {case.title_id}; {', '.join(codes) or '-'}"
        else:
            outcome, message = "NOTHING", ""
        rows.append((case.source, outcome, message.replace(str(out), "OUT")))
    width = max(len(r[0]) for r in rows)
    print("\n" + "\n".join(f"{s:<{width}}  {o:<18} {m}" for s, o, m in rows))


@pytest.mark.parametrize("case", CASES, ids=[c.source for c in CASES])
def test_each_case_has_its_documented_outcome(run, case):
    title, out = case.title_id, run.out
    record = _record(out, title)
    if case.outcome == PUBLISHED:
        assert record is None, record
        assert (out / title / "master.m3u8").exists()
        report = json.loads((out / title / "report.json").read_text())
        assert case.holds is None or case.holds(report), report["source"]
    else:
        assert record is not None, f"no dead letter for {title}"
        assert record["stage"] == case.stage
        assert case.error.lower() in record["error"].lower(), record["error"]
        assert record["hint"].strip()
        assert not (out / title).exists()
        assert not (out / "_work" / title).exists()


def test_the_limits_reject_before_the_source_is_decoded(run):
    for title in ("too-big-640x480", "too-long-2s", "too-many-bytes"):
        record = _record(run.out, title)
        assert "--max_" in record["error"] and "raise --max_" in record["hint"]


def test_every_published_title_meets_the_hls_authoring_rules(run):
    from tests.hls_authoring import check_hls_title

    published = [c.title_id for c in CASES if c.outcome == PUBLISHED]
    problems = {title: check_hls_title(run.out / title) for title in published}
    assert problems == {title: [] for title in published}


def test_everything_written_is_under_the_output_root(run):
    root = run.out.resolve()
    for folder, dirs, files in os.walk(run.out):
        for name in dirs + files:
            path = Path(folder, name)
            assert path.resolve().is_relative_to(root), path
    expected = {c.title_id for c in CASES if c.outcome == PUBLISHED} | {"_errors"}
    assert {p.name for p in run.out.iterdir()} <= expected | {"_work"}
    assert _files(run.sources) == run.before  # nothing written beside the sources


def test_nothing_of_passwd_reaches_a_dead_letter(run):
    for title in ("escape-rel", "escape-abs"):
        record = _record(run.out, title)
        assert "root:" not in json.dumps(record)


@pytest.mark.parametrize("uri", ["/etc/passwd", "../../etc/passwd", "../../other/film.mp4"])
def test_a_package_in_object_storage_names_no_local_file_and_stays_in_its_bucket(uri):
    from media.ingest.title_package import TitlePackageError, parse_title_package

    doc = json.dumps({"video": uri}).encode()
    with pytest.raises(TitlePackageError, match=r"local path|leaves the bucket"):
        parse_title_package(doc, "gs://studio/in/film.title.json")
    assert parse_title_package(
        b'{"video": "../film.mp4"}', "gs://studio/in/f.title.json"
    ).video == ("gs://studio/film.mp4")
