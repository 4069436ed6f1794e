"""Sources as users hold them, through the whole pipeline in one run: timestamp gaps
(looped and concatenated by stream copy), an edit list, open GOPs and B-pyramids,
23.976 and 29.97 with timestamp jitter, a size change mid-stream, a long black or frozen
intro, heavy temporal noise, a near-static slideshow, and audio seconds longer or
shorter than the video.

Each case either publishes with the frames its timeline holds (inspection's verdict:
one frame per slot of the nominal rate, from the first frame to the end of the last;
`media.inspect.frame_timing`) and a ladder whose measured rates fall at least 1.3x from
rung to rung, or is refused at inspection with a finding and a hint. None fails after
its encodes were spent.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest

from media.core import ffmpeg
from media.inspect.frame_timing import _timing_facts, _timing_findings
from media.inspect.results import StreamSummary

SIZE = "320x180"
RATE = 25
SEGMENT_S = 1.0
MIN_RATE_RATIO = 1.3
"""Neighbouring rungs' measured average rates at least this far apart."""


def _ff(*args: str) -> None:
    ffmpeg.run(ffmpeg.ffmpeg_argv(*args))


def _clip(path: Path, seconds: float, *, audio_s: float | None = None, rate: str = "25",
          video: str = "", vf: str = "", x264: str = "", size: str = SIZE,
          extra: tuple[str, ...] = ()) -> Path:
    """An H.264 clip (+ AAC, `audio_s` long, the video's length unless told) of a moving
    test pattern, or of the lavfi `video` source given."""
    video = video or f"testsrc2=size={size}:rate={rate}"
    args = ["-f", "lavfi", "-i", f"{video},trim=duration={seconds}"]
    if audio_s != 0:
        args += ["-f", "lavfi", "-i",
                 f"sine=frequency=440:sample_rate=48000:duration={audio_s or seconds}",
                 "-c:a", "aac", "-b:a", "64k"]
    if vf:
        args += ["-vf", vf]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if x264:
        args += ["-x264-params", x264]
    _ff(*args, *extra, str(path))
    return path


# --- the verdict on timestamps, on tables of them ---------------------------------------


def _summary(pts: list[int], time_base: Fraction) -> StreamSummary:
    step = statistics.median_low(b - a for a, b in itertools.pairwise(pts))
    return StreamSummary(
        path="t.mp4", format_name="mov", start_s=0.0, declared_end_s=None, video_index=0,
        codec="h264", width=320, height=180, pix_fmt="yuv420p",
        sample_aspect_ratio=Fraction(1), field_order="progressive", rotation_deg=0,
        color_primaries="bt709", color_transfer="bt709", color_matrix="bt709",
        color_range="tv", time_base=time_base, video_pts=tuple(sorted(pts)),
        video_end_s=float((max(pts) + step) * time_base))


MP4_25 = Fraction(1, 12800)
LOOPED = [loop * (25 * 512 + 384) + k * 512 for loop in range(4) for k in range(25)]
"""Four 1 s loops of 25 fps, each join 30 ms late (384 ticks of 1/12800)."""

# (name, pts, time base, variable, nominal rate, gaps, jitter at least (s))
TIMING_TABLE = [
    ("steady 25", [k * 512 for k in range(100)], MP4_25, False, Fraction(25), 0, 0.0),
    ("looped", LOOPED, MP4_25, False, Fraction(25), 3, 0.0),
    ("25 then 12.5", [k * 512 for k in range(50)] + [25600 + k * 1024 for k in range(50)],
     MP4_25, True, None, 0, 0.0),
    ("23.976 jitter 8 ms", [round(k * 3753.75 + 720 * math.sin(k * 1.7)) for k in range(96)],
     Fraction(1, 90000), False, Fraction(24000, 1001), 0, 0.007),
    ("29.97 in ms", [round(k * 1001 / 30) for k in range(120)], Fraction(1, 1000), False,
     Fraction(30000, 1001), 0, 0.0),
]


@pytest.mark.parametrize("name, pts, time_base, variable, rate, gaps, jitter_s", TIMING_TABLE,
                         ids=[row[0] for row in TIMING_TABLE])
def test_timing_verdict(name, pts, time_base, variable, rate, gaps, jitter_s):
    facts = _timing_facts(_summary(pts, time_base), None)
    assert facts.vfr is variable
    if not variable:
        assert facts.nominal_rate == rate
        assert len(facts.gaps) == gaps
        assert (facts.jitter_s >= jitter_s) if jitter_s else facts.jitter_s == 0.0


def test_the_looped_table_names_each_join_and_counts_its_timeline():
    summary = _summary(LOOPED, MP4_25)
    facts = _timing_facts(summary, None)
    assert facts.gaps == pytest.approx([(1.0, 1.03), (2.03, 2.06), (3.06, 3.09)])
    finding = next(f for f in _timing_findings(summary, facts) if f.code == "timestamp_gaps")
    assert "3 gap(s) of 30 ms" in finding.message and "1.000 s, 2.030 s, 3.060 s" in (
        finding.message)
    assert "100 frames become 102" in finding.hint  # 4.09 s at 25 fps


# --- the cases ----------------------------------------------------------------------------


def looped(folder: Path) -> Path:
    """A 1 s clip whose audio runs 30 ms past its video, looped 4 times by stream copy:
    a 30 ms gap in the video timestamps at each join."""
    clip = _clip(folder / "loop-unit.mp4", 1.0, audio_s=1.03)
    out = folder / "looped.mp4"
    _ff("-stream_loop", "3", "-i", str(clip), "-c", "copy", str(out))
    return out


def concatenated(folder: Path) -> Path:
    """Two masters joined by the concat demuxer (stream copy): the first's audio runs
    2.5 s past its video, so the video stops for 2.5 s, longer than a whole chunk."""
    first = _clip(folder / "part-1.mp4", 2.0, audio_s=4.5)
    second = _clip(folder / "part-2.mp4", 2.0, video=f"mandelbrot=size={SIZE}:rate=25")
    listing = folder / "parts.txt"
    listing.write_text(f"file '{first}'\nfile '{second}'\n")
    out = folder / "concatenated.mp4"
    _ff("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(out))
    return out


def hole(folder: Path) -> Path:
    """Two masters joined by stream copy, the first's audio 12 s past its video: the
    video stops for 12 s, a hole rather than a join."""
    first = _clip(folder / "hole-1.mp4", 1.0, audio_s=13.0)
    second = _clip(folder / "hole-2.mp4", 1.0)
    listing = folder / "hole.txt"
    listing.write_text(f"file '{first}'\nfile '{second}'\n")
    out = folder / "hole.mp4"
    _ff("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(out))
    return out


def edit_list(folder: Path) -> Path:
    """An MP4 cut by stream copy 0.52 s in: the frames from the keyframe before are kept,
    and an edit list hides them."""
    clip = _clip(folder / "edit-unit.mp4", 4.0, x264="keyint=50")
    out = folder / "edit_list.mp4"
    _ff("-ss", "0.52", "-i", str(clip), "-c", "copy", str(out))
    return out


def open_gop(folder: Path) -> Path:
    """Open GOPs (B-frames before an I-frame refer back across it) in MPEG-TS."""
    return _clip(folder / "open_gop.ts", 4.0,
                 x264="open-gop=1:keyint=20:min-keyint=20:bframes=3:scenecut=0",
                 extra=("-preset", "medium"))


def b_pyramid(folder: Path) -> Path:
    """B-frames used as references (a B-pyramid), in MP4."""
    return _clip(folder / "b_pyramid.mp4", 4.0, x264="bframes=3:b-pyramid=normal",
                 extra=("-preset", "medium"))


def jitter_23976(folder: Path) -> Path:
    """23.976 fps, each timestamp off its slot by up to 8 ms (a capture clock), 1/90000."""
    return _clip(folder / "jitter_23976.mp4", 4.0, rate="24000/1001",
                 vf="settb=1/90000,setpts='(N/(24000/1001)+0.008*sin(N*1.7))/TB'",
                 extra=("-fps_mode", "passthrough", "-enc_time_base:v", "1:90000",
                        "-video_track_timescale", "90000"))


def jitter_2997(folder: Path) -> Path:
    """29.97 fps through Matroska's milliseconds (33/34 ms), plus up to 5 ms of jitter."""
    return _clip(folder / "jitter_2997.mkv", 4.0, rate="30000/1001",
                 vf="settb=1/90000,setpts='(N/(30000/1001)+0.005*sin(N*2.3))/TB'",
                 extra=("-fps_mode", "passthrough", "-enc_time_base:v", "1:1000"))


def size_change(folder: Path) -> Path:
    """320x180 for 1.6 s, then 256x144 for 2.4 s, one MPEG-TS stream: the size changes
    inside a chunk."""
    big = _clip(folder / "size-a.ts", 1.6)
    small = _clip(folder / "size-b.ts", 2.4, size="256x144")
    out = folder / "size_change.ts"
    _ff("-i", f"concat:{big}|{small}", "-c", "copy", str(out))
    return out


def black_intro(folder: Path) -> Path:
    """3 s of black, then 2 s of picture."""
    return _clip(folder / "black_intro.mp4", 5.0,
                 vf="drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='lt(t,3)'")


def frozen_intro(folder: Path) -> Path:
    """The first frame held for 3 s, then the picture moves."""
    return _clip(folder / "frozen_intro.mp4", 5.0,
                 video=f"testsrc2=size={SIZE}:rate=25,loop=loop=75:size=1:start=0,"
                       "setpts=N/25/TB")


def noise(folder: Path) -> Path:
    """Heavy temporal noise over the whole picture (film grain at its worst)."""
    return _clip(folder / "noise.mp4", 4.0, vf="noise=alls=40:allf=t")


def slideshow(folder: Path) -> Path:
    """Three stills, 1.5 s each: near-static."""
    return _clip(folder / "slideshow.mp4", 4.5,
                 video=f"testsrc2=size={SIZE}:rate=2/3,fps=25")


def audio_longer(folder: Path) -> Path:
    """Audio 2 s longer than the video."""
    return _clip(folder / "audio_longer.mp4", 3.0, audio_s=5.0)


def audio_shorter(folder: Path) -> Path:
    """Audio 2 s shorter than the video."""
    return _clip(folder / "audio_shorter.mp4", 4.0, audio_s=2.0)


CASES = (looped, concatenated, edit_list, open_gop, b_pyramid, jitter_23976, jitter_2997,
         size_change, black_intro, frozen_intro, noise, slideshow, audio_longer,
         audio_shorter)

FIXED_RUN = (looped, concatenated, edit_list, open_gop, b_pyramid, jitter_23976, jitter_2997,
             size_change, noise, audio_longer, audio_shorter)
"""Through the fixed ladder, rates only (no VMAF): every rung of it is capped apart."""
REFUSED = (hole,)
"""In the fixed run, refused at inspection."""
PER_TITLE_RUN = (black_intro, frozen_intro, slideshow)
"""Through the per-title ladder, VMAF and all: on easy pictures it plans the rungs apart on
their predicted rates, and drops a second rung that no CRF gets 1.43x under the top."""

RATES = {"jitter_23976": Fraction(24000, 1001), "jitter_2997": Fraction(30000, 1001)}
"""Each case's nominal rate (25 fps unless named)."""


# --- what a published title holds -----------------------------------------------------------


@dataclass(frozen=True)
class Rung:
    rendition_id: str
    kbps: float
    """Measured average rate: the written segments' bytes over their duration (video)."""
    vmaf: float | None
    frames: int
    """Frames in the published segments, read back (packets, no decode)."""


def timeline_frames(source: Path, rate: Fraction) -> int:
    """Frames the source's timeline holds at `rate`: from its first presented frame to the
    end of its last (frames an edit list hides are not presented), half a frame up."""
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.duration) for p in container.demux(stream)
                   if p.size and not p.is_discard]
        tb = stream.time_base
    packets.sort()
    first, (last, duration) = packets[0][0], packets[-1]
    duration = duration or (packets[-1][0] - packets[-2][0])
    return math.floor((last + duration - first) * tb * rate + Fraction(1, 2))


def published_rungs(title_dir: Path) -> list[Rung]:
    """The video rungs of a published title in its ladder's order (top first): rate and
    mean VMAF as its report.json measured them, frames read back from its segments."""
    report = json.loads((title_dir / "report.json").read_text())
    inits = {t["id"]: t["init"] for t in report["tracks"] if t["kind"] == "video"}
    rungs = []
    for rung in report["ladder"]:
        folder = title_dir / inits[rung["id"]].rsplit("/", 1)[0]
        media = (folder / "init.mp4").read_bytes() + b"".join(
            (folder / line).read_bytes()
            for line in (folder / "playlist.m3u8").read_text().splitlines()
            if line.endswith(".m4s"))
        joined = title_dir.parent / f"{title_dir.name}-{rung['id']}.mp4"
        joined.write_bytes(media)
        with av.open(str(joined)) as container:
            frames = sum(1 for p in container.demux(container.streams.video[0]) if p.size)
        rungs.append(Rung(rung["id"], rung["average_bandwidth_bps"] / 1000,
                          (rung.get("vmaf") or {}).get("mean"), frames))
    return rungs


def ladder_violations(rungs: list[Rung]) -> list[str]:
    """Where neighbouring rungs are not really apart: rates falling by less than
    `MIN_RATE_RATIO`, or (where scored) mean VMAF not falling."""
    out = []
    for above, below in itertools.pairwise(rungs):
        if below.kbps * MIN_RATE_RATIO > above.kbps:
            out.append(f"{below.rendition_id} {below.kbps:.0f} kb/s is not {MIN_RATE_RATIO}x "
                       f"under {above.rendition_id} {above.kbps:.0f} kb/s")
        if above.vmaf is not None and below.vmaf is not None and below.vmaf >= above.vmaf:
            out.append(f"{below.rendition_id} VMAF {below.vmaf} is not under "
                       f"{above.rendition_id} {above.vmaf}")
    return out


def _run(sources: list[Path], out: Path, **config) -> None:
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline
    from pipeline.local_runner import LOCAL_RUNNER

    job = JobConfig(**{"output_root": str(out), "segment_s": SEGMENT_S, "chunk_segments": 1,
                       "encode": EncodeSettings(preset="ultrafast"), **config}).validate()
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]), blocking=True) as p:
        build_pipeline(p, [str(s) for s in sources], job)


@dataclass(frozen=True)
class Run:
    out: Path
    sources: dict[str, Path]


@pytest.fixture(scope="module")
def fixed_run(tmp_path_factory) -> Run:
    folder = tmp_path_factory.mktemp("real-sources")
    sources = {case.__name__: case(folder) for case in FIXED_RUN + REFUSED}
    out = tmp_path_factory.mktemp("real-sources-fixed")
    _run(list(sources.values()), out, ladder="fixed", score_vmaf=False)
    return Run(out, sources)


@pytest.fixture(scope="module")
def per_title_run(tmp_path_factory) -> Run:
    folder = tmp_path_factory.mktemp("real-sources-easy")
    sources = {case.__name__: case(folder) for case in PER_TITLE_RUN}
    out = tmp_path_factory.mktemp("real-sources-per-title")
    _run(list(sources.values()), out, ladder="per-title")
    return Run(out, sources)


def _findings(run: Run, title: str) -> dict[str, dict]:
    report = json.loads((run.out / title / "report.json").read_text())
    return {f["code"]: f for f in report["inspection"]}


# --- every case ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", [c.__name__ for c in FIXED_RUN])
def test_each_case_publishes_its_timeline_with_rungs_apart(fixed_run, case):
    rate = RATES.get(case, Fraction(RATE))
    expected = timeline_frames(fixed_run.sources[case], rate)
    report = json.loads((fixed_run.out / case / "report.json").read_text())
    assert Fraction(report["source"]["frame_rate"]) == rate
    assert report["source"]["frame_count"] == expected
    rungs = published_rungs(fixed_run.out / case)
    assert len(rungs) == 2
    assert [r.frames for r in rungs] == [expected] * len(rungs)
    assert not ladder_violations(rungs), ladder_violations(rungs)


def test_a_last_chunk_of_one_frame_half_a_frame_early_holds_it(fixed_run, tmp_path):
    # The concatenated case's second part is half a frame off the first's grid: in
    # segments of 27 frames its last chunk is its last frame alone, which lies half a
    # frame before that chunk's one slot (an `fps` filter that drops it left none).
    source = fixed_run.sources["concatenated"]
    expected = timeline_frames(source, Fraction(RATE))
    assert expected % 27 == 1
    _run([source], tmp_path, ladder="fixed", score_vmaf=False, max_renditions=1,
         segment_s=27 / RATE, segment_grid="even")
    assert [r.frames for r in published_rungs(tmp_path / "concatenated")] == [expected]


@pytest.mark.parametrize("case", [c.__name__ for c in PER_TITLE_RUN])
def test_each_easy_case_publishes_every_frame(per_title_run, case):
    expected = timeline_frames(per_title_run.sources[case], Fraction(RATE))
    rungs = published_rungs(per_title_run.out / case)
    plan = json.loads((per_title_run.out / case / "report.json").read_text())["plan"]
    one_rung = any("no CRF predicted" in line for line in plan["dropped_rungs"])
    assert len(rungs) == 1 if one_rung else len(rungs) >= 2
    assert [r.frames for r in rungs] == [expected] * len(rungs)
    assert all(r.vmaf is not None for r in rungs)


@pytest.mark.parametrize("case", [c.__name__ for c in PER_TITLE_RUN])
def test_each_easy_case_has_its_rungs_apart(per_title_run, case):
    rungs = published_rungs(per_title_run.out / case)
    assert not ladder_violations(rungs), ladder_violations(rungs)


@pytest.mark.parametrize("run_name", ["fixed_run", "per_title_run"])
def test_every_case_publishes_but_those_refused_at_inspection(request, run_name):
    """No case fails, least of all after its encodes were spent: each publishes or is
    refused at inspection."""
    run = request.getfixturevalue(run_name)
    refused = {case.__name__ for case in REFUSED} & set(run.sources)
    errors = run.out / "_errors"
    records = [json.loads(p.read_text()) for p in errors.glob("*.json")] if errors.is_dir() else []
    assert {r["title_id"] for r in records} == refused, records
    assert {r["stage"] for r in records} <= {"inspect"}, records
    published = {p.name for p in run.out.iterdir() if (p / "master.m3u8").is_file()}
    assert published == set(run.sources) - refused


def test_a_hole_of_seconds_is_refused_at_inspection_naming_it(fixed_run):
    record = json.loads((fixed_run.out / "_errors" / "hole.json").read_text())
    assert record["stage"] == "inspect"
    assert "The video stops for 12.0 s at 1.0" in record["error"], record
    assert "re-export" in record["hint"]
    assert not (fixed_run.out / "hole").exists()
    assert not (fixed_run.out / "_work" / "hole").exists()


# --- what each case's inspection says ----------------------------------------------------


def test_a_looped_source_names_its_gaps_and_holds_a_frame_across_each(fixed_run):
    gaps = _findings(fixed_run, "looped")["timestamp_gaps"]
    assert gaps["severity"] == "warning"
    # three joins, one a second (the loop is the audio's length, 1.03 s and a little)
    assert "3 gap(s)" in gaps["message"] and "1.0" in gaps["message"]
    assert 1.0 <= gaps["start_s"] < 1.1 and 3.0 < gaps["end_s"] < 3.3
    assert "held" in gaps["hint"] and "100 frames become" in gaps["hint"]
    assert "vfr" not in _findings(fixed_run, "looped")


def test_a_gap_longer_than_a_chunk_holds_the_frame_before_it(fixed_run):
    """The concatenation stops the video for 2.5 s: chunks 2 and 3 lie inside the gap and
    show the last frame of the first part."""
    found = _findings(fixed_run, "concatenated")
    assert "timestamp_gaps" in found and "2500 ms" in found["timestamp_gaps"]["message"]
    assert timeline_frames(fixed_run.sources["concatenated"], Fraction(RATE)) > 150


def test_jitter_keeps_the_nominal_rate_and_every_frame(fixed_run):
    for case, rate in RATES.items():
        found = _findings(fixed_run, case)
        assert "vfr" not in found and "timestamp_jitter" in found
        assert found["timestamp_jitter"]["severity"] == "info"
        source_frames = 96 if rate < 24 else 120
        assert timeline_frames(fixed_run.sources[case], rate) == source_frames


def test_an_edit_list_is_not_taken_for_truncation(fixed_run):
    """The cut hides 13 frames before the keyframe; the title is the 87 presented, and
    it starts with the first of them, not with a hidden one."""
    assert "truncated" not in _findings(fixed_run, "edit_list")
    assert timeline_frames(fixed_run.sources["edit_list"], Fraction(RATE)) == 87
    # the clip it was cut from: frame 13 (0.52 s) is the first shown, frame 0 is hidden
    with av.open(str(fixed_run.sources["edit_list"].parent / "edit-unit.mp4")) as container:
        frames = [f.to_ndarray(format="gray").astype(int)
                  for f, _ in zip(container.decode(video=0), range(14), strict=False)]
    top = published_rungs(fixed_run.out / "edit_list")[0].rendition_id
    with av.open(str(fixed_run.out / f"edit_list-{top}.mp4")) as container:
        published = next(container.decode(video=0)).to_ndarray(format="gray").astype(int)
    assert abs(published - frames[13]).mean() < abs(published - frames[0]).mean() / 4
