"""The figures of `benchmarks/per_title.py --allocation optimal,constant`: per source
and `--allocation` mode, BD-rate against the constant allocation and against Apple's
ladder (mean and harmonic pooling), the worst chunk's 5th percentile per rung, encodes
per chunk, planning (trial and probe) cost over the final encodes, the ladder invariant;
and their table. Plain functions of the runs' report.json dicts.
"""

from __future__ import annotations

import os

from benchmarks.per_title import _by_ladder, final_encode_s, ladder_points, monotonic
from media.quality.bdrate import MIN_POINTS, bd_rate

__all__ = ["ALLOCATION_POOLINGS", "allocation_figures", "grid_figures", "grid_line",
           "print_allocations", "print_grids"]


ALLOCATION_POOLINGS = ("mean", "harmonic")
"""Poolings of the allocation comparison: optimal allocation holds a rung's mean and
moves VMAF between its chunks, so the harmonic mean says what that does to the hard
stretches."""


def ladder_bd_rate(anchor: dict, test: dict, pooling: str = "mean") -> dict:
    """BD-rate (%, `rate`, or why not, `error`) of `test`'s ladder against `anchor`'s
    (reports), VMAF pooled as `pooling` says; the points each curve kept (`points`,
    anchor's then test's), and `coarse` where either kept fewer than MIN_POINTS: a ladder
    of two or three rungs is compared on the rungs there are."""
    a = monotonic(ladder_points(anchor, pooling))
    t = monotonic(ladder_points(test, pooling))
    figure: dict = {"points": (len(a), len(t)), "coarse": min(len(a), len(t)) < MIN_POINTS}
    try:
        figure["rate"] = bd_rate(a, t, min_points=2)
    except ValueError as exc:
        figure["error"] = str(exc)
    return figure


def worst_p5(report: dict) -> list[tuple[str, float]]:
    """Per rung, top first: its id and the lowest of its chunks' 5th-percentile frame
    VMAF, the quality its worst stretch falls to."""
    tracks = {t["id"]: t for t in report["tracks"] if t["kind"] == "video"}
    return [(rung["id"], min(c["vmaf"]["p5"] for c in tracks[rung["id"]]["chunks"]))
            for rung in report["ladder"]]


def encodes_per_chunk(report: dict) -> float:
    """Encodes (a chunk's gate attempts; one where it lists none) per video chunk."""
    counts = [max(1, len(chunk.get("attempts") or ())) for track in report["tracks"]
              if track["kind"] == "video" for chunk in track["chunks"]]
    return sum(counts) / max(1, len(counts))


def allocation_cost(report: dict) -> dict[str, float]:
    """Planning CPU seconds, the trials' and (`--allocation optimal`) the chunks' probes',
    and their sum over the final encodes' CPU seconds (`ratio`)."""
    encode_cpu, _ = final_encode_s(report, "cpu_s")
    trial = report["plan"]["trial_cost_cpu_s"]
    probe = (report.get("allocation") or {}).get("probe_cpu_s", 0.0)
    return {"trial_cpu_s": trial, "probe_cpu_s": probe, "encode_cpu_s": encode_cpu,
            "ratio": (trial + probe) / encode_cpu if encode_cpu else float("nan")}


def allocation_figures(reports: dict[str, dict], apple: dict | None = None) -> dict[str, dict]:
    """Per `--allocation` mode (`reports` by mode, "constant" the anchor): BD-rate against
    constant (not for constant itself) and against Apple's ladder (where given) under
    ALLOCATION_POOLINGS; per rung, top first, the worst chunk's p5 beside constant's
    same-placed rung and the difference; encodes per chunk; planning cost; the measured
    ladder invariant and the chunks that ended under their gate's window."""
    anchor = reports["constant"]
    out = {}
    for mode, report in reports.items():
        out[mode] = {
            "rungs": len(report["ladder"]),
            "vs_constant": {} if mode == "constant" else
            {p: ladder_bd_rate(anchor, report, p) for p in ALLOCATION_POOLINGS},
            "vs_apple": {p: ladder_bd_rate(apple, report, p) for p in ALLOCATION_POOLINGS}
            if apple else {},
            "worst_p5": [{"id": rid, "p5": p5, "constant_id": cid, "constant_p5": cp5,
                          "diff": p5 - cp5}
                         for (rid, p5), (cid, cp5) in zip(worst_p5(report), worst_p5(anchor),
                                                          strict=False)],
            "encodes_per_chunk": encodes_per_chunk(report),
            "cost": allocation_cost(report),
            "invariant": report["ladder_invariant"],
            "under_target": sum(t.get("chunks_missing_target", 0) for t in report["tracks"]),
            "grid": report.get("grid"),
        }
    return out


def _bd_cell(figure: dict | None) -> str:
    """A `ladder_bd_rate` figure as a table cell."""
    if not figure:
        return "anchor"
    if "rate" not in figure:
        return "n/a"
    return f"{figure['rate']:+.1f} %" + (" ({}/{} rungs)".format(*figure["points"])
                                          if figure["coarse"] else "")


def _invariant(verdict: dict) -> str:
    return "holds" if verdict["holds"] else "BROKEN: " + "; ".join(verdict["violations"])


def print_allocations(rows: list, args) -> None:
    """The allocation comparison's table, per source and mode, then the details per
    source and the averages over sources."""
    print(f"\nallocation modes of the per-title ladder, x264 preset {args.preset}, "
          f"{args.duration:g} s sources, {os.cpu_count()} cores")
    print("BD-rate: VMAF, PCHIP over ln-rate, negative = fewer bits at equal VMAF; "
          "'(n/m rungs)': anchor/test points, fewer than 4, coarse")
    print("planning/encode: trial (+ probe) CPU seconds over the final encodes' CPU seconds")
    print(f"source    mode      rungs  {'vs constant: mean':22s} {'harmonic':22s} "
          f"{'vs Apple: mean':22s} {'harmonic':22s} enc/chunk  planning/encode  invariant")
    for name, _, apple, figures in rows:
        for mode, f in figures.items():
            vs_c = [_bd_cell(f["vs_constant"].get(p)) for p in ALLOCATION_POOLINGS]
            vs_a = [_bd_cell(f["vs_apple"][p]) if apple else "" for p in ALLOCATION_POOLINGS]
            print(f"{name:9s} {mode:9s} {f['rungs']:5d}  {vs_c[0]:22s} {vs_c[1]:22s} "
                  f"{vs_a[0]:22s} {vs_a[1]:22s} {f['encodes_per_chunk']:9.2f} "
                  f"{f['cost']['ratio']:16.2f}  {_invariant(f['invariant'])}")
    for name, reports, apple, figures in rows:
        print(f"\n{name}:")
        for mode, f in figures.items():
            if f.get("grid"):
                print(f"  {mode:9s} grid: {grid_line(f['grid'])}")
        for mode, f in figures.items():
            report, cost = reports[mode], f["cost"]
            ladder = ", ".join(f"{r['id']} {kbps:.0f}k/{vmaf:.1f}" for r, (kbps, vmaf) in
                               zip(report["ladder"], _by_ladder(report), strict=True))
            print(f"  {mode:9s} ({report['_wall_s']:.0f} s): {ladder}; {f['under_target']} "
                  f"chunks under their window; planning CPU s: trial "
                  f"{cost['trial_cpu_s']:.1f} + probe {cost['probe_cpu_s']:.1f} over final "
                  f"encode {cost['encode_cpu_s']:.1f}")
            for pooling, figure in {**f["vs_constant"], **f["vs_apple"]}.items():
                if "error" in figure:
                    print(f"    BD-rate ({pooling}) n/a: {figure['error']}")
        if apple:
            ladder = ", ".join(f"{kbps:.0f}k/{vmaf:.1f}" for kbps, vmaf in _by_ladder(apple))
            print(f"  apple     ({apple['_wall_s']:.0f} s): {ladder}; ladder invariant "
                  f"{_invariant(apple['ladder_invariant'])}")
        for mode, f in figures.items():
            if mode != "constant":
                print(f"  worst chunk p5 per rung, {mode} against constant: " + ", ".join(
                    f"{w['id']} {w['p5']:.1f} vs {w['constant_p5']:.1f} ({w['diff']:+.1f})"
                    + (f" [{w['constant_id']}]" if w["constant_id"] != w["id"] else "")
                    for w in f["worst_p5"]))
    print_allocation_averages([figures for *_, figures in rows])


def grid_line(grid: dict) -> str:
    """report.json's `grid` in a line: segments and their spread, chunk ends on cuts."""
    return (f"{grid['kind']}, {grid['segments']} segments of {grid['min_segment_s']:g} to "
            f"{grid['max_segment_s']:g} s (the last left out of the shortest), "
            f"{grid.get('chunks', '?')} chunks; {grid['chunk_ends_on_cuts']} chunk ends on "
            f"shot cuts ({grid['chunk_ends_moved_onto_cuts']} moved there from the even "
            f"grid), {grid['boundaries_on_cuts']} of {grid['shot_cuts']} cuts on a boundary")


def grid_figures(reports: dict[str, dict]) -> dict[str, dict]:
    """Per `--segment_grid` (`reports` by grid, "even" the anchor): BD-rate against the
    even grid under ALLOCATION_POOLINGS, encodes per chunk, the worst chunk's p5 per rung
    and report.json's `grid`."""
    anchor = reports["even"]
    return {grid: {"vs_even": {} if grid == "even" else
                   {p: ladder_bd_rate(anchor, report, p) for p in ALLOCATION_POOLINGS},
                   "encodes_per_chunk": encodes_per_chunk(report),
                   "worst_p5": worst_p5(report), "grid": report.get("grid")}
            for grid, report in reports.items()}


def print_grids(rows: list, args) -> None:
    """The grid comparison's table (rows: source name, reports, `grid_figures`)."""
    print(f"\nsegment grids of the per-title ladder, x264 preset {args.preset}, "
          f"{args.duration:g} s sources, {os.cpu_count()} cores")
    print(f"source    grid    rungs  {'vs even: mean':22s} {'harmonic':22s} enc/chunk")
    for name, reports, figures in rows:
        for grid, f in figures.items():
            cells = [_bd_cell(f["vs_even"].get(p)) for p in ALLOCATION_POOLINGS]
            print(f"{name:9s} {grid:7s} {len(reports[grid]['ladder']):5d}  {cells[0]:22s} "
                  f"{cells[1]:22s} {f['encodes_per_chunk']:9.2f}")
    for name, reports, figures in rows:
        print(f"\n{name}:")
        for grid, f in figures.items():
            ladder = ", ".join(f"{r['id']} {kbps:.0f}k/{vmaf:.1f}" for r, (kbps, vmaf) in
                               zip(reports[grid]["ladder"], _by_ladder(reports[grid]),
                                   strict=True))
            print(f"  {grid:7s} ({reports[grid]['_wall_s']:.0f} s): {ladder}")
            if f["grid"]:
                print(f"          {grid_line(f['grid'])}")
            print("          worst chunk p5 per rung: "
                  + ", ".join(f"{rid} {p5:.1f}" for rid, p5 in f["worst_p5"]))


def print_allocation_averages(per_source: list[dict[str, dict]]) -> None:
    """Mean BD-rates over the sources where one was measured, per mode and pooling."""
    print("\naverage over sources (where measured):")
    for mode in per_source[0] if per_source else ():
        for against in ("vs_constant", "vs_apple"):
            cells = []
            for pooling in ALLOCATION_POOLINGS:
                rates = [f[mode][against][pooling]["rate"] for f in per_source
                         if "rate" in f[mode][against].get(pooling, {})]
                if rates:
                    cells.append(f"{pooling} {sum(rates) / len(rates):+.1f} % "
                                 f"({len(rates)} sources)")
            if cells:
                print(f"  {mode} {against.replace('_', ' ')}: {', '.join(cells)}")
