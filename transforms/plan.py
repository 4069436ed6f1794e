"""PlanLadder: choose each title's rungs from trial encodes (per-title encoding).

For each inspected source: trial tasks (sample segments × candidate resolutions × trial
CRFs, evenly spread over the title) fan out across workers like the real encodes, each
encoding one segment with a fast preset and scoring it with VMAF at the display
resolution. Gathered per title, the (rate, VMAF) points give the convex hull and the
rungs (`media.hull`). Emits one `TitlePlan` per title. With `--ladder fixed`, the plan
is the fixed ladder and no trial runs.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from media import naming
from media.chunking import segment_count, segment_frames
from media.config import JobConfig
from media.encode import encode_staged
from media.errors import MediaError
from media.hull import choose_rungs, upper_hull
from media.ladder import apple_ladder, fixed_ladder, vmaf_height
from media.planning import (
    candidate_resolutions,
    next_crf,
    renditions_from_rungs,
    sample_segments,
    trial_points,
)
from media.staging import stage_span
from media.trials import run_trials
from media.types import (
    Attempt,
    ChunkSpan,
    ChunkTask,
    EncodeSettings,
    Rendition,
    SourceInfo,
    TitlePlan,
    TrialResult,
    TrialTask,
)
from media.x264 import chunk_window_s
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for
from transforms.gather import GatherParts, Part
from transforms.progress import ReportTrialProgress

__all__ = ["PlanLadder", "trial_tasks"]

log = logging.getLogger(__name__)
_PLANNED = "planned"


def trial_tasks(source: SourceInfo, config: JobConfig) -> list[TrialTask]:
    """Every trial task of a title: sampled segments × candidate resolutions, each task
    encoding its sample at every trial CRF."""
    frames = segment_frames(source.frame_rate, config.segment_s)
    samples = sample_segments(segment_count(source.frame_count, frames), config.trial_fraction)
    trial_frames = max(1, min(frames, round(config.trial_seconds * source.frame_rate)))
    spans = [ChunkSpan(i, i * frames, min(trial_frames, source.frame_count - i * frames))
             for i in samples]
    grid = [(span, width, height) for span in spans
            for width, height in candidate_resolutions(source)]
    crfs = tuple(config.trial_crfs)
    settings = EncodeSettings(preset=config.trial_preset, threads=config.encode.threads)
    return [
        TrialTask(source=source, width=width, height=height, crfs=crfs, span=span,
                  trial_index=i * len(crfs), trial_count=len(grid) * len(crfs),
                  segment_frames=frames, output_root=config.output_root, settings=settings,
                  vmaf_height=vmaf_height(source), vmaf_subsample=config.trial_vmaf_subsample)
        for i, (span, width, height) in enumerate(grid)
    ]


class _TrialTasksFn(beam.DoFn):
    def __init__(self, config: JobConfig):
        self._config = config

    def process(self, source: SourceInfo):
        if self._config.ladder == "fixed":
            ladder = fixed_ladder(source, crf=self._config.crf,
                                  max_renditions=self._config.max_renditions)
            yield pvalue.TaggedOutput(_PLANNED, TitlePlan(source, tuple(ladder), "fixed"))
            return
        if self._config.ladder == "apple":
            ladder = apple_ladder(source, max_renditions=self._config.max_renditions)
            yield pvalue.TaggedOutput(_PLANNED, TitlePlan(source, tuple(ladder), "apple"))
            return
        tasks = trial_tasks(source, self._config)
        log.info("%s: planning: %d trial encodes (%d resolutions x %d CRFs x %d sample "
                 "segments) in %d tasks", source.title_id, tasks[0].trial_count,
                 len({t.height for t in tasks}), len(self._config.trial_crfs),
                 len({t.span.index for t in tasks}), len(tasks))
        yield from tasks


class _RunTrialFn(beam.DoFn):
    def __init__(self, tool_timeout_s: float):
        self._timeout_s = tool_timeout_s

    def process(self, task: TrialTask):
        record_uri = naming.trial_record_uri(task.output_root, task.title_id, task.height,
                                             task.span.index)
        if _storage.exists(record_uri):
            record = _storage.read_json(record_uri)
            if record.get("task") == _task_key(task):
                yield from _results(task, record["results"])
                return
        try:
            encodes, encode_s, score_s = self._run(task)
        except MediaError as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                task.title_id, task.source.source_uri, "plan (trial encode)", exc))
            return
        share = len(encodes)
        results = [{"crf": e.crf, "size_bytes": e.size_bytes, "frames": e.frames,
                    "vmaf_mean": e.vmaf_mean, "encode_s": encode_s / share,
                    "score_s": score_s / share} for e in encodes]
        _storage.write_json(record_uri, {"task": _task_key(task), "results": results})
        yield from _results(task, results)

    def _run(self, task: TrialTask):
        with tempfile.TemporaryDirectory(prefix="ladderflow-trial-") as scratch:
            with _storage.open_source(task.source.source_uri) as source:
                staged = stage_span(source, *chunk_window_s(task.source, task.span),
                                    f"{scratch}/source-span.mkv",
                                    task.source.source_uri)
            return run_trials(task, staged, scratch, self._timeout_s)


def _results(task: TrialTask, results: list[dict]):
    for i, r in enumerate(results):
        yield TrialResult(task, r["crf"], task.trial_index + i, r["size_bytes"], r["frames"],
                          r["vmaf_mean"], r["encode_s"], r["score_s"])


def _task_key(task: TrialTask) -> dict:
    """What decides a trial's result; a record made for other settings is not reused."""
    return {"source": [task.source.source_uri, task.source.size_bytes],
            "span": dataclasses.asdict(task.span), "size": [task.width, task.height],
            "crfs": list(task.crfs), "preset": task.settings.preset,
            "vmaf": [task.vmaf_height, task.vmaf_subsample]}


class _ChooseLadderFn(beam.DoFn):
    def __init__(self, config: JobConfig):
        self._config = config

    def process(self, element):
        title_id, results = element
        source = results[0].task.source
        cfg = self._config
        points = trial_points(results)
        try:
            rungs = choose_rungs(points, top_vmaf=cfg.top_vmaf, max_kbps=cfg.max_kbps or None,
                                 min_kbps=cfg.min_kbps, step_ratio=cfg.step_ratio,
                                 max_rungs=cfg.max_rungs)
        except ValueError as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                title_id, source.source_uri, "plan (ladder)",
                MediaError(f"no ladder could be planned from the trials: {exc}")))
            return
        renditions = renditions_from_rungs(rungs, points)
        cost = sum(r.encode_s + r.score_s for r in results)
        calibration: list[dict] = []
        if cfg.trial_preset != cfg.encode.preset:
            try:
                renditions, calibration, spent = self._calibrate(results, renditions)
            except MediaError as exc:
                yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                    title_id, source.source_uri, "plan (calibration)", exc))
                return
            cost += spent
        _storage.write_json(naming.plan_record_uri(cfg.output_root, title_id), {
            "mode": "per-title", "top_vmaf": cfg.top_vmaf, "min_kbps": cfg.min_kbps,
            "step_ratio": cfg.step_ratio, "trial_preset": cfg.trial_preset,
            "trial_segments": sorted({r.task.span.index for r in results}),
            "trial_cost_s": round(cost, 3),
            "points": [dataclasses.asdict(p) for p in points],
            "hull": [dataclasses.asdict(p) for p in upper_hull(points)],
            "rungs": [dataclasses.asdict(r) for r in rungs],
            "calibration": calibration,
        })
        log.info("%s: planned %d rungs: %s", title_id, len(renditions), ", ".join(
            f"{r.height}p CRF {r.crf:g} (VMAF {r.target_vmaf:.1f})" for r in renditions))
        yield TitlePlan(source, tuple(renditions), "per-title", cost)


    def _calibrate(self, results: list[TrialResult], renditions: list[Rendition]):
        """Encode one sample per rung with the final preset and move each rung's CRF to
        where that preset meets the rung's target.

        The trials use a fast preset: the hull's shape (which resolution wins at which
        rate) carries over, but a slower preset gives more quality at the same CRF, so
        without this every chunk would miss its target and be encoded twice.
        """
        cfg = self._config
        spans = sorted({r.task.span for r in results}, key=lambda span: span.index)
        span = spans[len(spans) // 2]
        first = results[0].task
        adjusted, records, spent = [], [], 0.0
        with tempfile.TemporaryDirectory(prefix="ladderflow-calibrate-") as scratch:
            with _storage.open_source(first.source.source_uri) as source:
                staged = stage_span(source, *chunk_window_s(first.source, span),
                                    f"{scratch}/source-span.mkv", first.source.source_uri)
            for i, rendition in enumerate(renditions):
                task = ChunkTask(source=first.source, rendition=rendition, chunk=span,
                                 chunk_count=1, segment_frames=first.segment_frames,
                                 output_root=cfg.output_root, settings=cfg.encode,
                                 vmaf_height=first.vmaf_height)
                encoded = encode_staged(task, staged, scratch, i, cfg.tool_timeout_s,
                                        vmaf_subsample=first.vmaf_subsample)
                spent += encoded.encode_s + encoded.score_s
                crf = next_crf(rendition, [Attempt(rendition.crf, 0.0, encoded.vmaf.mean)])
                adjusted.append(dataclasses.replace(rendition, crf=crf))
                records.append({"id": rendition.rendition_id, "planned_crf": rendition.crf,
                                "vmaf_at_planned_crf": round(encoded.vmaf.mean, 3),
                                "target_vmaf": rendition.target_vmaf, "crf": crf})
        return adjusted, records, spent


def _by_title(result: TrialResult):
    return result.title_id, Part(result.index, result.task.trial_count, result)


class PlanLadder(beam.PTransform):
    """PCollection[SourceInfo] -> {'main': TitlePlan, 'dead_letter': DeadLetter}."""

    def __init__(self, config: JobConfig):
        super().__init__()
        self._config = config

    def expand(self, sources):
        fanned = sources | "TrialTasks" >> beam.ParDo(_TrialTasksFn(self._config)).with_outputs(
            _PLANNED, main="trials")
        trials = (
            fanned.trials
            | "SpreadOverWorkers" >> beam.Reshuffle()
            | "TrialEncode" >> beam.ParDo(_RunTrialFn(self._config.tool_timeout_s)).with_outputs(
                DEAD_LETTER, main="main")
        )
        chosen = (
            trials.main
            | "KeyByTitle" >> beam.Map(_by_title).with_output_types(tuple[str, Any])
            | "GatherTrials" >> GatherParts()
            | "ChooseRungs" >> beam.ParDo(_ChooseLadderFn(self._config)).with_outputs(
                DEAD_LETTER, main="main")
        )
        _ = trials.main | "Progress" >> ReportTrialProgress()
        planned = (fanned[_PLANNED], chosen.main) | "AllPlans" >> beam.Flatten()
        dead = (trials[DEAD_LETTER], chosen[DEAD_LETTER]) | "PlanRejects" >> beam.Flatten()
        return {"main": planned, DEAD_LETTER: dead}
