"""`--allocation optimal` end to end, against `constant` on the same title.

The title is four scenes of 2 s back to back at 320x180 (still bars, a moving pattern, a
fractal zoom, the pattern under grain): its chunks differ in how many bits a VMAF point
costs, which is where an allocation at equal slope saves bits. Both runs plan the same
ladder; the optimal one probes every chunk, allocates each rung, and gates each chunk to
its own aim. A third run on the optimal run's output reuses its probes and its chunks.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from media.core import ffmpeg
from pipeline.local_runner import LOCAL_RUNNER

TOP_VMAF = 93.0
GATE_BELOW = 1.0
"""The gate keeps a chunk within 1 VMAF under its aim: the rung's mean may fall as far."""
FLOOR_SLACK = 2.0
"""A chunk's worst frames may fall this far under the floor: the gate's window under its
aim, and its probes' gap between mean and 5th percentile measured at the trial preset."""


def _scenes(path: Path) -> str:
    size = "320x180"
    graph = (f"smptebars=size={size}:rate=25:duration=2[a];"
             f"testsrc2=size={size}:rate=25:duration=2[b];"
             f"mandelbrot=size={size}:rate=25,trim=duration=2,setpts=PTS-STARTPTS,"
             "format=yuv420p[c];"
             f"testsrc2=size={size}:rate=25:duration=2,noise=alls=14:allf=t+u[d];"
             "[a][b][c][d]concat=n=4:v=1:a=0")
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", graph, "-c:v", "libx264", "-preset", "veryfast", "-crf", "12",
        "-g", "25", "-pix_fmt", "yuv420p", str(path)))
    return str(path)


def _run(source: str, out: Path, allocation: str, keep_work: bool = False) -> list[str]:
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline

    config = JobConfig(output_root=str(out), segment_s=1.0, chunk_segments=1,
                       top_vmaf=TOP_VMAF, min_kbps=60.0, allocation=allocation,
                       encode=EncodeSettings(preset="faster"), keep_work=keep_work).validate()
    messages: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append(record.getMessage())
    loggers = [logging.getLogger(n) for n in ("transforms", "media", "ladderflow")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.INFO)
        lg.addHandler(handler)
    try:
        with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]),
                          blocking=True) as p:
            build_pipeline(p, [source], config)
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
    return messages


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    source = _scenes(tmp_path_factory.mktemp("allocation-source") / "scenes.mp4")
    out = {name: tmp_path_factory.mktemp(f"allocation-{name}") for name in
           ("constant", "optimal")}
    _run(source, out["constant"], "constant")
    _FIRST[:] = _run(source, out["optimal"], "optimal", keep_work=True)
    # as if the run had stopped before publishing: its chunks and probes are in place
    report = out["optimal"] / "scenes" / "report.json"
    kept = report.read_bytes()
    report.unlink()
    _RESUMED[:] = _run(source, out["optimal"], "optimal", keep_work=True)
    _REPORTS["first"] = json.loads(kept)
    return out


_FIRST: list[str] = []
_RESUMED: list[str] = []
_REPORTS: dict[str, dict] = {}


def _report(root: Path) -> dict:
    return json.loads((root / "scenes" / "report.json").read_text())


def _video(report: dict) -> dict[str, dict]:
    return {t["id"]: t for t in report["tracks"] if t["kind"] == "video"}


def _kbps(track: dict) -> float:
    chunks = track["chunks"]
    return sum(c["size_bytes"] for c in chunks) * 8 / sum(c["duration_s"] for c in chunks) / 1e3


def test_both_allocations_publish_the_same_ladder_on_the_same_grid(runs):
    constant, optimal = (_report(runs[k]) for k in ("constant", "optimal"))
    assert [r["id"] for r in optimal["ladder"]] == [r["id"] for r in constant["ladder"]]
    assert "allocation" not in constant
    for report in (constant, optimal):
        assert report["ladder_invariant"]["holds"], report["ladder_invariant"]
        tracks = _video(report).values()
        # one grid: every rendition's segments start at the same times
        starts = {tuple(s["start_ticks"] if "start_ticks" in s else s["number"]
                        for s in t["segments"]) for t in tracks} if all(
            isinstance(t.get("segments"), list) for t in tracks) else None
        assert starts is None or len(starts) == 1
        assert all(len(t["chunks"]) == 8 for t in tracks)


def test_each_rung_meets_its_target_as_a_title_for_fewer_bits(runs):
    constant, optimal = (_video(_report(runs[k])) for k in ("constant", "optimal"))
    allocation = _report(runs["optimal"])["allocation"]
    assert allocation["probe_cpu_s"] > 0
    for rid, track in optimal.items():
        record = allocation[rid]
        assert record["feasible"], record
        # every rung's calibration measured the final preset: probed at the trial one
        assert record["probe_preset"] == "trial", record
        target = track["target_vmaf"]
        assert record["aim_vmaf"] == pytest.approx(target + 0.5, abs=0.01)
        assert record["floor_vmaf"] == pytest.approx(target - 6.0, abs=0.01)
        # the rung's mean (duration-weighted over its chunks) at its target, within the gate
        assert track["vmaf"]["mean"] >= target - GATE_BELOW, (rid, track["vmaf"])
        # no chunk's worst frames far under the floor
        for chunk in track["chunks"]:
            assert chunk["vmaf"]["p5"] >= record["floor_vmaf"] - FLOOR_SLACK, (rid, chunk)
    # The top rung: the constant gate holds the still bars over target (they cannot go
    # lower) and pays for the fractal at target; the optimal one spends on neither.
    top = next(iter(optimal))
    assert _kbps(optimal[top]) < 0.9 * _kbps(constant[top]), (
        _kbps(optimal[top]), _kbps(constant[top]))


def test_the_chunks_of_a_rung_are_aimed_apart(runs):
    track = next(iter(_video(_report(runs["optimal"])).values()))
    aims = [c["target_vmaf"] for c in track["chunks"]]
    crfs = [c["crf"] for c in track["chunks"]]
    assert max(aims) - min(aims) > 3.0, aims
    assert max(crfs) - min(crfs) > 3.0, crfs
    # each chunk lands in the window around its own aim, or is flagged
    for chunk in track["chunks"]:
        assert chunk["within_gate"] or not chunk["met_target"] or len(chunk["attempts"]) == 3


def test_a_rerun_reuses_the_probes_and_the_chunks(runs):
    reused = [m for m in _RESUMED if "reusing finished chunk" in m]
    tracks = _video(_report(runs["optimal"]))
    assert len(reused) == sum(len(t["chunks"]) for t in tracks.values()), _RESUMED
    assert not [m for m in _RESUMED if "could not be probed" in m or "probes failed" in m]
    probes = sorted((runs["optimal"] / "_work").glob("*/probes/chunk-*.json"))
    assert len(probes) == 8
    # the first run counted each chunk's probes as they came
    counts = [m for m in _FIRST if "chunks probed" in m]
    assert len(counts) == 8 and any("allocate 8/8 chunks probed" in m for m in counts), counts
    # the same allocation, so the same chunks
    assert _report(runs["optimal"])["allocation"] == _REPORTS["first"]["allocation"]
    assert _report(runs["optimal"])["ladder"] == _REPORTS["first"]["ladder"]
