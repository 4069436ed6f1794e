"""The per-title benchmark's allocation figures (benchmarks/allocation_figures.py, for
`benchmarks/per_title.py --allocation`), on made-up reports: no pipeline run. Plus the
`scenes` source's graph, made for real at a tiny size.

A constant-allocation ladder of three rungs is the anchor; the "optimal" one scores the
same at 20 % fewer bits per rung, and lifts the worst stretch of its top rung.
"""

from __future__ import annotations

import subprocess

import pytest

from benchmarks.allocation_figures import ALLOCATION_POOLINGS, allocation_figures
from benchmarks.codecs import scaled
from benchmarks.per_title import SOURCES, make_source
from media.core import ffmpeg

BD_TOLERANCE_PCT = 0.1
P5_TOLERANCE = 1e-9
RUNGS = (("1080p-4000k", 4000.0, 95.0), ("720p-2000k", 2000.0, 90.0),
         ("360p-800k", 800.0, 80.0))
"""(id, kb/s, mean VMAF) of the anchor's rungs, top first."""


def _chunk(kbps: float, vmaf: float, p5: float, attempts: int) -> dict:
    return {"duration_s": 2.0, "size_bytes": kbps * 1000 / 8 * 2.0,
            "vmaf": {"mean": vmaf, "harmonic_mean": vmaf - 0.5, "p5": p5, "frame_count": 50},
            "attempts": [{"crf": 23.0, "kbps": kbps, "vmaf": vmaf}] * attempts,
            "encode_s": 1.0, "score_s": 0.5, "encode_cpu_s": 2.5, "score_cpu_s": 1.0}


def _report(rate_scale: float, p5s: dict[str, list[float]], attempts: list[int],
            trial_cpu_s: float, probe_cpu_s: float | None = None) -> dict:
    """Three rungs of two chunks (each chunk's p5 from `p5s`, else 5 under its mean);
    every rung's chunks made with `attempts` encodes."""
    tracks = [{"kind": "video", "id": rid, "chunks_missing_target": 0,
               "chunks": [_chunk(kbps * rate_scale, vmaf, p5, n) for p5, n in
                          zip(p5s.get(rid, [vmaf - 5] * 2), attempts, strict=True)]}
              for rid, kbps, vmaf in RUNGS]
    report = {"ladder": [{"id": rid} for rid, _, _ in RUNGS],
              "tracks": [*tracks, {"kind": "audio", "id": "aac", "chunks": []}],
              "plan": {"trial_cost_cpu_s": trial_cpu_s},
              "ladder_invariant": {"holds": True, "violations": []}}
    if probe_cpu_s is not None:
        report["allocation"] = {"1080p-4000k": {"aim_vmaf": 95.0}, "probe_cpu_s": probe_cpu_s}
    return report


CONSTANT = _report(1.0, {"1080p-4000k": [80.0, 91.0]}, [1, 2], trial_cpu_s=6.0)
OPTIMAL = _report(0.8, {"1080p-4000k": [84.5, 86.0]}, [2, 3], trial_cpu_s=6.0,
                  probe_cpu_s=3.0)
APPLE = {"ladder": [{"id": f"r{i}"} for i in range(5)],
         "tracks": [{"kind": "video", "id": f"r{i}", "chunks": [_chunk(kbps, vmaf, vmaf, 0)]}
                    for i, (kbps, vmaf) in enumerate(
                        [(6000, 96.0), (3000, 91.5), (1500, 85.0), (700, 76.0), (300, 60.0)])],
         "plan": {"mode": "fixed"}, "ladder_invariant": {"holds": True, "violations": []}}


def test_fewer_bits_at_the_same_vmaf_is_a_negative_bd_rate_marked_coarse():
    figures = allocation_figures({"optimal": OPTIMAL, "constant": CONSTANT})
    assert figures["constant"]["vs_constant"] == {}  # the anchor
    for pooling in ALLOCATION_POOLINGS:
        figure = figures["optimal"]["vs_constant"][pooling]
        assert figure["rate"] == pytest.approx(-20.0, abs=BD_TOLERANCE_PCT)
        assert figure["points"] == (3, 3) and figure["coarse"]
    assert figures["optimal"]["vs_apple"] == {}  # no Apple run


def test_worst_chunk_p5_per_rung_against_constant():
    worst = allocation_figures({"constant": CONSTANT, "optimal": OPTIMAL})["optimal"]["worst_p5"]
    assert [w["id"] for w in worst] == [rid for rid, _, _ in RUNGS]
    top, middle = worst[0], worst[1]
    assert (top["p5"], top["constant_p5"]) == (84.5, 80.0)  # min over each rung's chunks
    assert top["diff"] == pytest.approx(4.5, abs=P5_TOLERANCE)
    assert (middle["p5"], middle["constant_p5"], middle["diff"]) == (85.0, 85.0, 0.0)


def test_encodes_per_chunk_and_planning_cost_with_the_probes():
    figures = allocation_figures({"constant": CONSTANT, "optimal": OPTIMAL})
    assert figures["constant"]["encodes_per_chunk"] == pytest.approx(1.5)
    assert figures["optimal"]["encodes_per_chunk"] == pytest.approx(2.5)
    # 6 chunks of 2.5 encode CPU s each: trials 6 s over 15 s; with 3 s of probes, 9 s
    assert figures["constant"]["cost"]["ratio"] == pytest.approx(0.4)
    assert figures["optimal"]["cost"]["probe_cpu_s"] == 3.0
    assert figures["optimal"]["cost"]["ratio"] == pytest.approx(0.6)
    assert figures["optimal"]["invariant"]["holds"] and figures["optimal"]["under_target"] == 0


def test_each_allocation_against_apple():
    figures = allocation_figures({"constant": CONSTANT, "optimal": OPTIMAL}, APPLE)
    constant, optimal = (figures[m]["vs_apple"]["mean"] for m in ("constant", "optimal"))
    assert constant["points"] == (5, 3) and constant["coarse"]
    # the same curve at 0.8x the rate: the BD-rates differ by that factor
    assert (1 + optimal["rate"] / 100) / (1 + constant["rate"] / 100) == pytest.approx(
        0.8, abs=BD_TOLERANCE_PCT / 100)


def test_the_scenes_source_makes_its_title_at_the_size_asked(tmp_path):
    # at a tiny size, as benchmarks/codecs.py's --scale makes it: all four scenes at it
    video = scaled(SOURCES["scenes"], 64 / 1920)
    assert video == "scenes=size=64x36:rate=25"
    path = str(tmp_path / "scenes.mp4")
    make_source(path, video, 2.0)
    md5 = subprocess.run(ffmpeg.ffmpeg_argv("-i", path, "-f", "framemd5", "-"),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert "#dimensions 0: 64x36" in md5
    frames = [line.rsplit(",", 1)[1] for line in md5 if not line.startswith("#")]
    assert len(frames) == 50  # 2 s at 25 fps
    assert len({frames[0], frames[13], frames[25], frames[38]}) == 4  # one of each scene


def test_the_grid_line_says_the_spread_and_the_chunk_ends_on_cuts():
    from benchmarks.allocation_figures import grid_line

    grid = {"kind": "shots", "segments": 7, "chunks": 7, "min_segment_s": 1.0,
            "max_segment_s": 1.8, "shot_cuts": 4, "boundaries_on_cuts": 4,
            "chunk_ends_on_cuts": 4, "chunk_ends_moved_onto_cuts": 3}
    figures = allocation_figures({"constant": {**CONSTANT, "grid": grid}})
    assert figures["constant"]["grid"] == grid
    assert grid_line(grid) == (
        "shots, 7 segments of 1 to 1.8 s (the last left out of the shortest), 7 chunks; "
        "4 chunk ends on shot cuts (3 moved there from the even grid), 4 of 4 cuts on a "
        "boundary")
