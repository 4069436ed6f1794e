"""The job's Beam Metrics, by name, under one namespace (`ladderflow`).

Each is counted in the stage that does the work (`metrics.CHUNKS_ENCODED.inc()`), so it
shows on Dataflow's job page (Job metrics, custom counters) and in the summary a local
run logs at its end (`summary_lines`). Beam's distributions take integers: each
distribution's name carries its unit (`_ms`, `_x100`, `_kbps`).

Ingest's counters of notifications stay under `ladderflow.ingest` (`transforms/events.py`).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence

from apache_beam.metrics import Metrics
from apache_beam.metrics.cells import DistributionData

from media.core.types import ChunkResult

__all__ = [
    "BYTES_WRITTEN",
    "CHUNKS_ENCODED",
    "CHUNKS_REENCODED_BY_GATE",
    "CHUNKS_RETRIED",
    "CHUNKS_REUSED",
    "ENCODE_MS",
    "KBPS",
    "NAMESPACE",
    "TITLES_PUBLISHED",
    "VMAF_X100",
    "count_dead_letter",
    "count_encoded",
    "count_gathered",
    "summary_lines",
    "totals",
]

NAMESPACE = "ladderflow"
DEAD_LETTERS = "dead_letters: "
"""Prefix of the per-stage dead-letter counters (`dead_letters: inspect`, ...)."""
GATHERED_PART = "gathered_part_bytes: "
GATHERED_KEY = "gathered_key_bytes: "
"""Prefixes of the per-gather distributions of pickled sizes: of each part a gather held,
and of all the parts of one key together (its bag state at its largest)."""

CHUNKS_ENCODED = Metrics.counter(NAMESPACE, "chunks_encoded")
"""Chunk-renditions encoded by this run (one per chunk and rendition, whatever its tries)."""
CHUNKS_REUSED = Metrics.counter(NAMESPACE, "chunks_reused")
"""Chunk-renditions a finished earlier run had made (resumed, not encoded again)."""
CHUNKS_RETRIED = Metrics.counter(NAMESPACE, "chunks_retried")
"""Chunk-renditions made after at least one try failed for a transient reason."""
CHUNKS_REENCODED_BY_GATE = Metrics.counter(NAMESPACE, "chunks_reencoded_by_gate")
"""Chunk-renditions the quality gate encoded more than once (outside the VMAF window)."""
TITLES_PUBLISHED = Metrics.counter(NAMESPACE, "titles_published")
"""Title versions whose manifests were written."""
BYTES_WRITTEN = Metrics.counter(NAMESPACE, "bytes_written")
"""Bytes of every object the job writes: chunks, segments, manifests, records, reports."""

ENCODE_MS = Metrics.distribution(NAMESPACE, "encode_ms")
"""Wall milliseconds of a chunk-rendition's encodes (every encode the gate made)."""
VMAF_X100 = Metrics.distribution(NAMESPACE, "vmaf_x100")
"""A chunk-rendition's pooled mean VMAF, times 100 (scored chunks only)."""
KBPS = Metrics.distribution(NAMESPACE, "kbps")
"""A chunk-rendition's average rate, kb/s."""


def count_encoded(result: ChunkResult) -> None:
    """Count a chunk-rendition this run encoded, with its seconds, VMAF and rate."""
    CHUNKS_ENCODED.inc()
    if result.retries:
        CHUNKS_RETRIED.inc()
    if len(result.attempts) > 1:
        CHUNKS_REENCODED_BY_GATE.inc()
    ENCODE_MS.update(round(result.encode_s * 1000))
    if result.vmaf is not None:
        VMAF_X100.update(round(result.vmaf.mean * 100))
    KBPS.update(round(result.bitrate_kbps))


def count_dead_letter(stage: str) -> None:
    """Count a reject under its stage, without what failed in it ("encode (720p, chunk 3)"
    counts as "encode"). A title rejected by several parts counts once per reject."""
    Metrics.counter(NAMESPACE, DEAD_LETTERS + stage.split(" (", 1)[0]).inc()


def count_gathered(stage: str, parts: Sequence) -> None:
    """Measure the state one key of a gather held when it fired: each part's pickled
    size and their sum, under the gather's `stage`. Called once per key, as it fires."""
    sizes = [len(pickle.dumps(part, pickle.HIGHEST_PROTOCOL)) for part in parts]
    part_bytes = Metrics.distribution(NAMESPACE, GATHERED_PART + stage)
    for size in sizes:
        part_bytes.update(size)
    Metrics.distribution(NAMESPACE, GATHERED_KEY + stage).update(sum(sizes))


def _value(result):
    """A metric's committed value where the runner keeps one, else its attempted one."""
    committed = getattr(result, "committed", None)
    return committed if committed is not None else result.attempted


def totals(query: Mapping[str, Sequence]) -> tuple[dict[str, int], dict[str, DistributionData]]:
    """Our counters and distributions by name, summed over the steps that count them
    (`bytes_written` is counted in several), from `PipelineResult.metrics().query()`."""
    counters: dict[str, int] = {}
    for r in query.get("counters", ()):
        if r.key.metric.namespace == NAMESPACE:
            name = r.key.metric.name
            counters[name] = counters.get(name, 0) + int(_value(r) or 0)
    spreads: dict[str, DistributionData] = {}
    for r in query.get("distributions", ()):
        value = _value(r)
        if r.key.metric.namespace == NAMESPACE and value is not None and value.data.count:
            name = r.key.metric.name
            spreads[name] = spreads[name].combine(value.data) if name in spreads else value.data
    return counters, spreads


def summary_lines(query: Mapping[str, Sequence]) -> list[str]:
    """A few lines on what the run did, from `PipelineResult.metrics().query()`."""
    counters, spreads = totals(query)

    def count(name: str) -> int:
        return counters.get(name, 0)

    dead = sorted((name.removeprefix(DEAD_LETTERS), value) for name, value
                  in counters.items() if name.startswith(DEAD_LETTERS) and value)
    lines = [
        f"chunks encoded {count('chunks_encoded')}, reused {count('chunks_reused')}, "
        f"retried {count('chunks_retried')}, re-encoded by the gate "
        f"{count('chunks_reencoded_by_gate')}",
        f"titles published {count('titles_published')}; dead letters "
        + (", ".join(f"{stage} {n}" for stage, n in dead) if dead else "none"),
        f"bytes written {count('bytes_written'):,}",
    ]
    spread = [text for text in (_spread(spreads.get("encode_ms"), "encode s", 1000, "{:.2f}"),
                                _spread(spreads.get("vmaf_x100"), "VMAF", 100, "{:.1f}"),
                                _spread(spreads.get("kbps"), "kb/s", 1, "{:.0f}")) if text]
    if spread:
        lines.append("per chunk (min/mean/max): " + "; ".join(spread))
    stages = sorted(name.removeprefix(GATHERED_KEY) for name in spreads
                    if name.startswith(GATHERED_KEY) and
                    GATHERED_PART + name.removeprefix(GATHERED_KEY) in spreads)
    gathered = [f"{stage} {spreads[GATHERED_PART + stage].max:,} / "
                f"{spreads[GATHERED_KEY + stage].max:,}" for stage in stages]
    if gathered:
        lines.append("largest gathered part / key, pickled bytes: " + "; ".join(gathered))
    return lines


def _spread(data: DistributionData | None, label: str, scale: float, form: str) -> str:
    if data is None or not data.count:
        return ""
    mean = data.sum / data.count
    low, middle, high = (form.format(x / scale) for x in (data.min, mean, data.max))
    return f"{label} {low}/{middle}/{high}"
