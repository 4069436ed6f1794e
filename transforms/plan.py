"""PlanLadder: choose each title's rungs from trial encodes (per-title encoding).

For each inspected source, trial tasks fan out across workers like the real encodes,
one per sample segment, each decoding its sample once to encode it at its resolutions
and every trial CRF with a fast preset, and scoring each encode with VMAF at the display
resolution (`media.plan.trials`). The samples are chosen by the complexity the inspection
measured (`media.inspect.complexity`: the easiest segment, the hardest, evenly between). Two
rounds: the probe (the sample of middle complexity, at every candidate resolution),
gathered per title, tells which resolutions could carry the ladder it calls for
(`media.plan.planning.heights_to_refine`); the other samples are trialled at those alone.
Gathered per title again, the (rate, VMAF) points (each sample weighed by the segments
it stands for) give the convex hull and the rungs (`media.plan.hull`), each sample's own
curves the CRF changes over the title (`media.plan.planning.crf_offsets`), and a calibration
at the final preset the rungs' CRFs. Emits one `TitlePlan` per title. With `--ladder
fixed` (or `apple`), the plan is that ladder and no trial runs.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from media.core import naming
from media.core.config import JobConfig
from media.core.errors import MediaError
from media.core.types import (
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
from media.encode.chunk import (
    encode_renditions,
    encoded_kbps,
    rendition_scratch,
    scored,
    scored_together,
)
from media.encode.commands import chunk_window_s
from media.encode.staging import stage_span
from media.inspect.complexity import sample_weights, title_complexity
from media.plan.chunking import segment_count, segment_frames
from media.plan.hull import choose_rungs, upper_hull
from media.plan.ladder import apple_ladder, fixed_ladder, vmaf_height
from media.plan.planning import (
    bracketing_attempts,
    calibrated_crf,
    candidate_resolutions,
    chunk_crf,
    complete_results,
    crf_in_range,
    crf_offset_at,
    frame_spread,
    gate_aim,
    heights_to_refine,
    measured_slope,
    next_crf,
    recapped,
    renditions_from_rungs,
    scaled_offsets,
    title_samples,
    trial_points,
)
from media.plan.trials import TRIAL_X264_THREADS, run_trials
from media.quality.vmaf import scored_frames_needed
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for
from transforms.gather import GatherParts, Part
from transforms.progress import ReportTrialProgress

__all__ = ["PlanLadder", "probe_tasks", "sample_spans", "trial_tasks"]

log = logging.getLogger(__name__)
CALIBRATION_ROUNDS = 2
"""Encodes of the calibration sample per rung at most."""
CALIBRATION_TOLERANCE = 0.5
"""How far (VMAF) from its aim a rung's calibration encode may land without a second."""
_PLANNED = "planned"
_PROBED = "probed"
_KEYED = tuple[tuple[str, str], Any]
"""(title id, generation) and a part: trial results gathered per title version."""


def complexity_of(source: SourceInfo, config: JobConfig) -> tuple[float, ...] | None:
    """The title's complexity per segment, where the inspection measured it."""
    return title_complexity(source, segment_frames(source.frame_rate, config.segment_s))


def sample_spans(source: SourceInfo, config: JobConfig) -> tuple[list[ChunkSpan], int]:
    """The title's trial samples (the first `trial_seconds` of the segments
    `media.plan.planning.title_samples` chooses) and the probe sample's segment index."""
    frames = segment_frames(source.frame_rate, config.segment_s)
    samples, probe = title_samples(segment_count(source.frame_count, frames),
                                   config.trial_fraction, complexity_of(source, config),
                                   config.chunk_segments)
    trial_frames = max(1, min(frames, round(config.trial_seconds * source.frame_rate)))
    return [ChunkSpan(i, i * frames, min(trial_frames, source.frame_count - i * frames))
            for i in samples], probe


def trial_tasks(source: SourceInfo, config: JobConfig, spans: list[ChunkSpan],
                heights: list[int] | None = None, first_index: int = 0) -> list[TrialTask]:
    """One trial task per sample of `spans`, each encoding its sample at `heights`
    (default: every candidate resolution) and every trial CRF. Results are numbered from
    `first_index` among the title's results: the tasks' own after those before them."""
    frames = segment_frames(source.frame_rate, config.segment_s)
    sizes = tuple((w, h) for w, h in candidate_resolutions(source)
                  if heights is None or h in heights)
    crfs = tuple(config.trial_crfs)
    per_task = len(sizes) * len(crfs)
    settings = EncodeSettings(preset=config.trial_preset,
                              threads=config.encode.threads or TRIAL_X264_THREADS)
    return [
        TrialTask(source=source, sizes=sizes, crfs=crfs, span=span,
                  trial_index=first_index + i * per_task,
                  trial_count=first_index + len(spans) * per_task,
                  segment_frames=frames, output_root=config.output_root, settings=settings,
                  vmaf_height=vmaf_height(source), vmaf_subsample=config.trial_vmaf_subsample)
        for i, span in enumerate(spans)
    ]


def probe_tasks(source: SourceInfo, config: JobConfig,
                samples: tuple[list[ChunkSpan], int] | None = None) -> list[TrialTask]:
    """The first round: the probe sample at every candidate resolution. `samples`:
    `sample_spans`, where the caller has them already."""
    spans, probe = samples or sample_spans(source, config)
    return trial_tasks(source, config, [s for s in spans if s.index == probe])


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
        spans, probe = sample_spans(source, self._config)
        tasks = probe_tasks(source, self._config, (spans, probe))
        log.info("%s: planning: probe sample (segment %d) at %d resolutions x %d CRFs; "
                 "then %d more sample segments at the resolutions its hull calls for",
                 source.title_id, probe, len(tasks[0].sizes),
                 len(self._config.trial_crfs), len(spans) - 1)
        yield from tasks


class _RunTrialFn(beam.DoFn):
    def __init__(self, tool_timeout_s: float):
        self._timeout_s = tool_timeout_s

    def process(self, task: TrialTask):
        record_uri = naming.trial_record_uri(task.output_root, task.title_id, task.span.index)
        if _storage.exists(record_uri):
            record = _storage.read_json(record_uri)
            if record.get("task") == _task_key(task):
                yield from _results(task, record["results"])
                return
        try:
            encodes, encoding, scoring = self._run(task)
        except MediaError as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                task.title_id, task.source.source_uri, "plan (trial encode)", exc))
            return
        # The encode process's seconds are shared among the encodes by pixels per frame;
        # the score process's evenly (each scores the same frames at the same size).
        pixels = sum(e.width * e.height for e in encodes)
        shares = [e.width * e.height / pixels for e in encodes]
        results = [{"size": [e.width, e.height], "crf": e.crf, "size_bytes": e.size_bytes,
                    "frames": e.frames, "vmaf_mean": e.vmaf_mean,
                    "keyframe_bytes": e.keyframe_bytes, "vmaf_sd": e.vmaf_sd,
                    "encode_s": encoding.wall_s * share,
                    "score_s": scoring.wall_s / len(encodes),
                    "cpu_s": encoding.cpu_s * share + scoring.cpu_s / len(encodes)}
                   for e, share in zip(encodes, shares, strict=True)]
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
        width, height = r["size"]
        yield TrialResult(task, width, height, r["crf"], task.trial_index + i, r["size_bytes"],
                          r["frames"], r["vmaf_mean"], r["encode_s"], r["score_s"],
                          r.get("keyframe_bytes", 0), r.get("cpu_s", 0.0), r.get("vmaf_sd"))


def _task_key(task: TrialTask) -> dict:
    """What decides a trial's result; a record made for other settings is not reused."""
    return {"source": [task.source.source_uri, task.source.size_bytes],
            "span": dataclasses.asdict(task.span), "sizes": [list(s) for s in task.sizes],
            "crfs": list(task.crfs), "preset": task.settings.preset,
            "vmaf": [task.vmaf_height, task.vmaf_subsample]}


class _RefineFn(beam.DoFn):
    """After the probe: trial the other samples at the resolutions the probe's hull calls
    for, and pass the probe's results on, numbered among all the title's results."""

    def __init__(self, config: JobConfig):
        self._config = config

    def process(self, element):
        version, probed = element
        source = probed[0].task.source
        title_id = source.title_id
        cfg = self._config
        probe = probed[0].task.span.index
        spans = [s for s in sample_spans(source, cfg)[0] if s.index != probe]
        heights = heights_to_refine(
            trial_points(probed), top_vmaf=cfg.top_vmaf, max_kbps=cfg.max_kbps or None,
            min_kbps=cfg.min_kbps, step_ratio=cfg.step_ratio, max_rungs=cfg.max_rungs)
        tasks = trial_tasks(source, cfg, spans, heights, first_index=len(probed)) if spans else []
        total = tasks[0].trial_count if tasks else len(probed)
        if tasks:
            left_out = sorted({r.height for r in probed} - set(heights), reverse=True)
            log.info("%s: probe hull calls for %s; trialling %d more sample segments there "
                     "(%d trial encodes)%s", title_id, ", ".join(f"{h}p" for h in heights),
                     len(spans), total - len(probed),
                     f"; left out: {', '.join(f'{h}p' for h in left_out)}" if left_out else "")
        for result in probed:
            yield pvalue.TaggedOutput(_PROBED, (version, Part(result.index, total, result)))
        yield from tasks


class _ChooseLadderFn(beam.DoFn):
    def __init__(self, config: JobConfig):
        self._config = config

    def process(self, element):
        _, every_result = element
        results = complete_results(every_result)
        source = results[0].task.source
        title_id = source.title_id
        cfg = self._config
        complexity = complexity_of(source, cfg)
        samples = sorted({r.task.span.index for r in results})
        weights = sample_weights(complexity, samples) if complexity else None
        points = trial_points(results, weights)
        try:
            rungs = choose_rungs(points, top_vmaf=cfg.top_vmaf, max_kbps=cfg.max_kbps or None,
                                 min_kbps=cfg.min_kbps, step_ratio=cfg.step_ratio,
                                 max_rungs=cfg.max_rungs)
        except ValueError as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                title_id, source.source_uri, "plan (ladder)",
                MediaError(f"no ladder could be planned from the trials: {exc}")))
            return
        renditions = renditions_from_rungs(rungs, points, results, weights)
        probe = every_result[0].task.span.index
        split = {"probe": 0.0, "refine": 0.0, "calibration": 0.0}
        cpu = dict.fromkeys(split, 0.0)
        for r in every_result:
            part = "probe" if r.task.span.index == probe else "refine"
            split[part] += r.encode_s + r.score_s
            cpu[part] += r.cpu_s
        calibration: list[dict] = []
        if cfg.trial_preset != cfg.encode.preset or cfg.encode.encoder != "x264":
            try:
                renditions, calibration, spent, spent_cpu = self._calibrate(
                    results, renditions, every_result[0].task)
            except MediaError as exc:
                yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                    title_id, source.source_uri, "plan (calibration)", exc))
                return
            split["calibration"], cpu["calibration"] = spent, spent_cpu
            # the caps again, for the CRF changes as the calibration carried them over
            renditions = recapped(renditions, rungs, results, weights)
            for record, rendition in zip(calibration, renditions, strict=True):
                record["id"] = rendition.rendition_id
        cost = sum(split.values())
        spread = frame_spread(results, [r.height for r in renditions])
        scored_frames = scored_frames_needed(spread)
        _storage.write_json(naming.plan_record_uri(cfg.output_root, title_id), {
            "mode": "per-title", "top_vmaf": cfg.top_vmaf, "min_kbps": cfg.min_kbps,
            "step_ratio": cfg.step_ratio, "trial_preset": cfg.trial_preset,
            "trial_segments": samples,
            # how hard each segment is to encode (the inspection's analysis encode, mean
            # bytes a frame), and how many segments each sample stands for
            "complexity": None if complexity is None else {
                "segment_bytes_per_frame": [round(v, 1) for v in complexity],
                "sample_weights": {str(k): v for k, v in weights.items()}},
            "trial_cost_s": round(cost, 3),
            "trial_cost_split_s": {k: round(v, 3) for k, v in split.items()},
            # CPU seconds: processes that ran at once do not count their shared seconds twice
            "trial_cost_cpu_s": round(sum(cpu.values()), 3),
            "trial_cpu_split_s": {k: round(v, 3) for k, v in cpu.items()},
            "trial_encodes": len(every_result),
            "probe": _probe_record(every_result),
            "points": [dataclasses.asdict(p) for p in points],
            "hull": [dataclasses.asdict(p) for p in upper_hull(points)],
            # the rungs as the hull predicts them, with the VBV cap their renditions got
            "rungs": [dataclasses.asdict(dataclasses.replace(
                rung, maxrate_kbps=rendition.maxrate_kbps, bufsize_kbit=rendition.bufsize_kbit))
                for rung, rendition in zip(rungs, renditions, strict=True)],
            "calibration": calibration,
            # how much the ladder's trial frame scores vary, and so how many frames of
            # each final chunk are scored (`media.quality.vmaf.chunk_step`)
            "scoring": {"frame_sd": None if spread is None else round(spread, 3),
                        "scored_frames": scored_frames},
        })
        log.info("%s: planned %d rungs: %s; chunks scored on %d frames at least "
                 "(trial frame scores spread %s)", title_id, len(renditions), ", ".join(
                     f"{r.height}p CRF {r.crf:g} (VMAF {r.target_vmaf:.1f})"
                     for r in renditions), scored_frames,
                 "unknown" if spread is None else f"{spread:.2f}")
        # the plan has used the complexity; the chunk tasks need not carry it
        planned = dataclasses.replace(source, complexity=(), complexity_bin_frames=0)
        yield TitlePlan(planned, tuple(renditions), "per-title", cost, scored_frames)

    def _calibrate(self, results: list[TrialResult], renditions: list[Rendition],
                   first: TrialTask):
        """Encode one sample per rung with the final preset and move each rung's CRF to
        where that preset meets the middle of the gate's window (`gate_aim`).

        The trials use a fast preset: the hull's shape (which resolution wins at which
        rate) carries over, but a slower preset gives more quality at the same CRF, so
        without this every chunk would miss its target and be encoded twice. The
        sample is encoded at its own CRF (`crf_offsets`: this calibrates the preset,
        not the sample's difference from the title). A rung more than
        CALIBRATION_TOLERANCE from its aim is encoded once more at the CRF the trial
        curve's slope predicts; the secant through its two scores, the final preset's
        own slope there, then places the rung's CRF and is the slope its quality gate
        steps by. Each round encodes every rung in one process.
        """
        cfg = self._config
        span = first.span  # the probe sample: of middle complexity, or the middle one
        here = [dataclasses.replace(chunk_crf(r, span), crf_offsets=()) for r in renditions]
        aims = [gate_aim(r, cfg) for r in here]
        tries: list[list[Attempt]] = [[] for _ in renditions]
        spent = spent_cpu = 0.0
        with tempfile.TemporaryDirectory(prefix="ladderflow-calibrate-") as scratch:
            with _storage.open_source(first.source.source_uri) as source:
                staged = stage_span(source, *chunk_window_s(first.source, span),
                                    f"{scratch}/source-span.mkv", first.source.source_uri)
            todo = list(range(len(renditions)))
            sample_s = span.frame_count / float(first.source.frame_rate)
            bracketed: dict[int, tuple[Attempt, Attempt]] = {}
            for round_no in range(CALIBRATION_ROUNDS):
                crfs = {i: next_crf(here[i], tries[i], aims[i]) if tries[i] else here[i].crf
                        for i in todo}
                todo = [i for i in todo if not tries[i] or crfs[i] != tries[i][-1].crf]
                if not todo:
                    break
                scored_rates, seconds, cpu_s = self._calibration_round(
                    first, span, staged, scratch,
                    [dataclasses.replace(here[i], crf=crfs[i]) for i in todo])
                spent += seconds
                spent_cpu += cpu_s
                for i, (vmaf, kbps) in zip(todo, scored_rates, strict=True):
                    tries[i].append(Attempt(crfs[i], kbps, vmaf))
                todo = [i for i in todo if abs(tries[i][-1].vmaf - aims[i])
                        > CALIBRATION_TOLERANCE]
                if round_no == 0:
                    # The first round put every rung on its size's curve: a rung whose
                    # aim lies between two of them is placed there, with no more encodes.
                    firsts = [(here[j], tries[j][0]) for j in range(len(here)) if tries[j]]
                    for i in todo:
                        pair = bracketing_attempts(here[i], aims[i], firsts, sample_s)
                        if pair is not None:
                            bracketed[i] = pair
                    todo = [i for i in todo if i not in bracketed]
        adjusted, records = [], []
        for i, (rendition, sample, aim, own) in enumerate(
                zip(renditions, here, aims, tries, strict=True)):
            attempts = list(bracketed.get(i, own))
            measured = measured_slope(attempts)
            slope = round(measured, 3) if measured is not None else rendition.vmaf_per_crf
            # The samples' CRF changes were read off the trial preset's curve; where the
            # final preset's is flatter, the same quality gap takes more CRF steps.
            offsets = scaled_offsets(rendition, rendition.vmaf_per_crf / slope)
            at_sample = crf_offset_at(offsets, span.start_frame + span.frame_count / 2)
            sample_crf = calibrated_crf(sample, attempts, aim)
            crf = crf_in_range(sample_crf - at_sample)
            adjusted.append(dataclasses.replace(offsets, crf=crf, vmaf_per_crf=slope))
            records.append({"id": rendition.rendition_id, "planned_crf": rendition.crf,
                            "sample_crf": sample.crf, "sample_crf_aimed": sample_crf,
                            "vmaf_at_sample_crf": round(own[0].vmaf, 3),
                            "tries": [[a.crf, round(a.vmaf, 3), round(a.kbps, 1)] for a in own],
                            # the two first-round encodes (this rung's or another's of its
                            # size) between which its CRF was placed, if any
                            "bracket": [[a.crf, round(a.vmaf, 3)] for a in bracketed.get(i, ())],
                            "target_vmaf": rendition.target_vmaf, "aim_vmaf": aim,
                            "vmaf_per_crf": slope, "crf_offsets": offsets.crf_offsets,
                            "crf": crf})
        return adjusted, records, spent, spent_cpu

    def _calibration_round(self, first: TrialTask, span: ChunkSpan, staged, scratch: str,
                           renditions: list[Rendition]
                           ) -> tuple[list[tuple[float, float]], float, float]:
        """Encode the sample once per rendition in one process and score them in another:
        the pooled VMAF and the kb/s of each, and the wall and CPU seconds spent."""
        cfg = self._config
        tasks = [ChunkTask(source=first.source, rendition=rendition, chunk=span,
                           chunk_count=1, segment_frames=first.segment_frames,
                           output_root=cfg.output_root, settings=cfg.encode,
                           vmaf_height=first.vmaf_height, vmaf_subsample=first.vmaf_subsample)
                 for rendition in renditions]
        scores, spent, spent_cpu = [], 0.0, 0.0
        encodes = encode_renditions(tasks, staged, scratch, cfg.tool_timeout_s)
        for task, done in zip(tasks, scored_together(tasks, encodes, scratch,
                                                     cfg.tool_timeout_s), strict=True):
            if isinstance(done, MediaError):
                raise done
            encoded = scored(task, done, staged, rendition_scratch(scratch, task), 0,
                             cfg.tool_timeout_s, task.vmaf_subsample)
            spent += encoded.encode_s + encoded.score_s
            spent_cpu += encoded.encode_cpu_s + encoded.score_cpu_s
            scores.append((encoded.vmaf.mean, encoded_kbps(task, encoded)))
        return scores, spent, spent_cpu


def _probe_record(results: list[TrialResult]) -> dict:
    """The probe sample's own points (every candidate resolution) and what it kept."""
    probe = results[0].task.span.index
    probed = [r for r in results if r.task.span.index == probe]
    return {"segment": probe,
            "points": [dataclasses.asdict(p) for p in trial_points(probed)],
            "kept_heights": sorted({r.height for r in complete_results(results)},
                                   reverse=True)}


def _by_version(result: TrialResult):
    return result.task.source.version_key, Part(result.index, result.task.trial_count, result)


class PlanLadder(beam.PTransform):
    """PCollection[SourceInfo] -> {'main': TitlePlan, 'dead_letter': DeadLetter}."""

    def __init__(self, config: JobConfig):
        super().__init__()
        self._config = config

    def expand(self, sources):
        fanned = sources | "TrialTasks" >> beam.ParDo(_TrialTasksFn(self._config)).with_outputs(
            _PLANNED, main="trials")
        timeout_s = self._config.tool_timeout_s
        probe = (
            fanned.trials
            | "SpreadProbe" >> beam.Reshuffle()
            | "ProbeEncode" >> beam.ParDo(_RunTrialFn(timeout_s)).with_outputs(
                DEAD_LETTER, main="main")
        )
        refine = (
            probe.main
            | "KeyProbeByTitle" >> beam.Map(_by_version).with_output_types(_KEYED)
            | "GatherProbe" >> GatherParts()
            | "Refine" >> beam.ParDo(_RefineFn(self._config)).with_outputs(
                _PROBED, main="tasks")
        )
        trials = (
            refine.tasks
            | "SpreadTrials" >> beam.Reshuffle()
            | "TrialEncode" >> beam.ParDo(_RunTrialFn(timeout_s)).with_outputs(
                DEAD_LETTER, main="main")
        )
        chosen = (
            (refine[_PROBED],
             trials.main | "KeyByTitle" >> beam.Map(_by_version).with_output_types(_KEYED))
            | "WithProbe" >> beam.Flatten().with_output_types(_KEYED)
            | "GatherTrials" >> GatherParts()
            | "ChooseRungs" >> beam.ParDo(_ChooseLadderFn(self._config)).with_outputs(
                DEAD_LETTER, main="main")
        )
        # Progress in each round's own stage, so that its lines come as the trials finish.
        _ = probe.main | "ProbeProgress" >> ReportTrialProgress()
        _ = trials.main | "TrialProgress" >> ReportTrialProgress()
        planned = (fanned[_PLANNED], chosen.main) | "AllPlans" >> beam.Flatten()
        dead = ((probe[DEAD_LETTER], trials[DEAD_LETTER], chosen[DEAD_LETTER])
                | "PlanRejects" >> beam.Flatten())
        return {"main": planned, DEAD_LETTER: dead}
