"""The "real sources" cases and the source-format matrix, run as their tests run them,
reported as tables.

    python benchmarks/real_sources.py [--only real,formats] [--work DIR]

`real`: tests/test_real_sources.py's cases, made in `--work`; FIXED_RUN and REFUSED in one
run of the fixed ladder without VMAF, PER_TITLE_RUN in one per-title run (VMAF scored).
Per case: the outcome (published, or refused at inspection with the fatal finding's
code), the frames its timeline holds at its nominal rate, the frames and measured rate
(and mean VMAF) of each published rung, and whether neighbouring rungs are apart
(`ladder_violations`). `formats`: tests/test_source_formats.py's SOURCES in one run, as
its fixture runs them. The definitions and checks are imported from the tests, so the
tables show what the tests assert on; the work folder is emptied first (no reuse).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from media.inspect import FATAL, inspect_file
from tests.test_real_sources import (
    FIXED_RUN,
    PER_TITLE_RUN,
    RATE,
    RATES,
    REFUSED,
    Run,
    _findings,
    _run,
    ladder_violations,
    published_rungs,
    timeline_frames,
)
from tests.test_source_formats import SOURCES, _frames, _make

REAL_HEADER = ("case", "outcome", "frames expected", "frames published",
               "kb/s (VMAF) per rung", "ladder invariant")
FORMATS_HEADER = ("source", "outcome", "frames expected / published", "ladder invariant")


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A markdown table; `|` inside a cell is escaped so a message cannot split it."""
    lines = [header, tuple("---" for _ in header), *rows]
    return "\n".join("| " + " | ".join(str(c).replace("|", "\\|") for c in line) + " |"
                     for line in lines)


def rung_cells(rungs) -> tuple[str, str, str]:
    """Frames per rung, kb/s (and mean VMAF where scored) per rung, and the invariant."""
    frames = ", ".join(str(r.frames) for r in rungs)
    rates = ", ".join(f"{r.rendition_id} {r.kbps:.0f}" + (f" ({r.vmaf:.1f})" if r.vmaf
                                                          is not None else "") for r in rungs)
    violations = ladder_violations(rungs)
    return frames, rates, "holds" if not violations else "; ".join(violations)


def outcome(out: Path, title: str, source: Path, rungs_note: str = "") -> str:
    """'published' (with its warning codes), or 'refused at inspection: CODE' (the code of
    the fatal finding `inspect_file` gives the source: the record names no code; its error
    where no finding refuses it), or the stage and error of any other dead letter."""
    record = out / "_errors" / f"{title}.json"
    if record.is_file():
        letter = json.loads(record.read_text())
        if letter["stage"] != "inspect":
            return f"FAILED at {letter['stage']}: {letter['error']}"
        codes = [f.code for f in inspect_file(str(source))[0] if f.severity == FATAL]
        if codes:
            return f"refused at inspection: {', '.join(codes)}"
        return f"refused at inspection (no finding): {letter['error'].replace(f'{source}: ', '')}"
    if not (out / title / "master.m3u8").is_file():
        return "NOT PUBLISHED, no record"
    warnings = [code for code, f in _findings(Run(out, {}), title).items()
                if f["severity"] == "warning"]
    return "published" + (f" (warnings: {', '.join(warnings)})" if warnings else "") + rungs_note


def real_rows(run: Run) -> list[tuple[str, ...]]:
    rows = []
    for case, source in run.sources.items():
        expected = timeline_frames(source, RATES.get(case, Fraction(RATE)))
        state = outcome(run.out, case, source)
        if not state.startswith("published"):
            rows.append((case, state, str(expected), "-", "-", "-"))
            continue
        plan = json.loads((run.out / case / "report.json").read_text()).get("plan") or {}
        dropped = [line for line in plan.get("dropped_rungs", []) if "no CRF" in line]
        note = "; a rung dropped: no CRF predicted apart" if dropped else ""
        rows.append((case, state + note, str(expected), *rung_cells(published_rungs(
            run.out / case))))
    return rows


def real(work: Path) -> str:
    parts = []
    for name, cases, config in (
            ("fixed ladder, no VMAF", FIXED_RUN + REFUSED,
             {"ladder": "fixed", "score_vmaf": False}),
            ("per-title ladder, VMAF scored", PER_TITLE_RUN, {"ladder": "per-title"})):
        folder = work / ("sources-" + config["ladder"])
        out = work / ("out-" + config["ladder"])
        folder.mkdir(parents=True)
        run = Run(out, {case.__name__: case(folder) for case in cases})
        started = time.monotonic()
        _run(list(run.sources.values()), out, **config)
        parts.append(f"### {name} ({time.monotonic() - started:.0f} s)\n\n"
                     + table(REAL_HEADER, real_rows(run)))
    return "\n\n".join(parts)


def formats(work: Path) -> str:
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline
    from pipeline.local_runner import LOCAL_RUNNER

    folder, out = work / "sources-formats", work / "out-formats"
    folder.mkdir(parents=True)
    for source in SOURCES:
        _make(source, folder / source.name)
    config = JobConfig(output_root=str(out), ladder="fixed", max_renditions=1, chunk_segments=1,
                       encode=EncodeSettings(preset="ultrafast"), score_vmaf=False).validate()
    started = time.monotonic()
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]), blocking=True) as p:
        build_pipeline(p, [str(folder / s.name) for s in SOURCES], config)
    rows = []
    for source in SOURCES:
        path = folder / source.name
        expected = _frames(str(path))
        state = outcome(out, source.title_id, path)
        if not state.startswith("published"):
            rows.append((source.name, state, f"{expected} / -", "-"))
            continue
        published, _, invariant = rung_cells(published_rungs(out / source.title_id))
        rows.append((source.name, state, f"{expected} / {published}", invariant))
    return (f"### source formats, fixed ladder, one rung, no VMAF "
            f"({time.monotonic() - started:.0f} s)\n\n" + table(FORMATS_HEADER, rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="real,formats", help="real, formats or both")
    parser.add_argument("--work", default="/tmp/ladderflow-bench-real-sources")
    args = parser.parse_args()
    picked = args.only.split(",")
    unknown = set(picked) - {"real", "formats"}
    if unknown:
        parser.error(f"unknown --only {sorted(unknown)}")
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    for name, report in (("real", real), ("formats", formats)):
        if name in picked:
            print(report(work), "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
