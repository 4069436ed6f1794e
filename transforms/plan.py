"""PlanLadder: choose each title's rungs from trial encodes (per-title encoding).

For each inspected source: its segment grid, worked out once and carried by the plan.
Trial tasks then fan out across workers like the real encodes, one per sample segment
(`media.plan.trials`), in two rounds: the probe (the sample of middle complexity, at
every candidate resolution), gathered per title, tells which resolutions could carry
its ladder; the other samples are trialled at those alone. Gathered per title again,
the results give the rungs and their calibrated CRFs (`media.plan.per_title`). Emits one
`TitlePlan` per title. With `--ladder fixed` (or `apple`), the plan is that ladder and
no trial runs. With codec ladders (`--codecs h264,av1`) each codec is trialled, gathered
and chosen on its own (keyed by title version and codec), and its plans joined per title.
"""

from __future__ import annotations

import dataclasses
import logging
import struct
import tempfile
from typing import Any

import apache_beam as beam
import av
from apache_beam import pvalue

from media.core import naming
from media.core.config import JobConfig
from media.core.errors import MediaError
from media.core.types import SourceInfo, TitlePlan, TrialResult, TrialTask
from media.encode.commands import chunk_window_s
from media.encode.staging import stage_span
from media.inspect.hdr_metadata import read_hdr_metadata
from media.plan.chunking import title_grid
from media.plan.ladder import apple_ladder, codec_ladders, fixed_ladder
from media.plan.per_title import NoLadder, plan_title
from media.plan.trials import (
    lean_result,
    probe_tasks,
    refine_tasks,
    run_trials,
    sample_spans,
    trial_record,
    trial_record_name,
    trial_results,
)
from transforms import _storage
from transforms.dead_letter import DEAD_LETTER, dead_letter_for, dead_letters
from transforms.gather import GatherParts, Part
from transforms.progress import ReportTrialProgress

__all__ = ["PlanLadder"]

log = logging.getLogger(__name__)
_PLANNED = "planned"
_PROBED = "probed"
_KEYED = tuple[tuple[str, str], Any]
"""(title id, generation) and a part: codec ladders (`--codecs`) gathered per title version."""
_KEYED_TRIAL = tuple[tuple[str, str, str], Any]
"""(title id, generation, codec) and a part: trial results gathered per title version and
codec ('' where the run has one codec). A key of fixed shape: Beam's key coder is
deterministic only for those."""
_CODEC_PLAN = "codec_plan"


class _TrialTasksFn(beam.DoFn):
    """The title's segment grid (worked out here, once), then its plan where the ladder
    is fixed, or the probe's trial tasks."""

    def __init__(self, config: JobConfig):
        self._config = config

    @dead_letters("plan")
    def process(self, source: SourceInfo):
        cfg = self._config
        if cfg.keeps_hdr(source.hdr):
            source = _with_hdr_metadata(source)
        grid = title_grid(source, cfg)
        if cfg.ladder in ("fixed", "apple"):
            ladder = (fixed_ladder(source, crf=cfg.crf, max_renditions=cfg.max_renditions)
                      if cfg.ladder == "fixed"
                      else apple_ladder(source, max_renditions=cfg.max_renditions))
            if cfg.multi_codec:
                ladder = codec_ladders(ladder, cfg.title_codecs(source.hdr), cfg.encode.encoder,
                                       source.hdr if cfg.keeps_hdr(source.hdr) else "")
            yield pvalue.TaggedOutput(_PLANNED, TitlePlan(source, tuple(ladder), cfg.ladder,
                                                          grid))
            return
        spans, probe = sample_spans(source, cfg, grid)
        for codec in cfg.title_codecs(source.hdr) if cfg.multi_codec else ("",):
            tasks = probe_tasks(source, cfg, grid, (spans, probe), codec=codec,
                                hdr=cfg.hdr_codec(codec, source.hdr))
            log.info("%s: planning%s: probe sample (segment %d) at %d resolutions x %d "
                     "CRFs; then %d more sample segments at the resolutions its hull calls "
                     "for", source.title_id, f" ({codec})" if codec else "", probe,
                     len(tasks[0].sizes), len(cfg.trial_crfs), len(spans) - 1)
            yield from tasks


def _with_hdr_metadata(source: SourceInfo) -> SourceInfo:
    """The source with its HDR10 metadata (`media.inspect.hdr_metadata`), which its HDR
    rungs keep; as it was (and a warning) where its first frame cannot be read."""
    try:
        with _storage.open_source(source.source_uri) as handle:
            found = read_hdr_metadata(handle)
    except (OSError, av.FFmpegError, IndexError, struct.error) as exc:
        log.warning("%s: HDR metadata not read (%s); its HDR rungs go without mastering "
                    "display and light levels", source.title_id, exc)
        return source
    return dataclasses.replace(source, mastering_display=found.mastering_display,
                               content_light=found.content_light)


class _RunTrialFn(_storage.ReleasesKeptSource, beam.DoFn):
    """One trial task, or its stored results where an earlier run made them."""

    def __init__(self, tool_timeout_s: float):
        self._timeout_s = tool_timeout_s

    @dead_letters("plan (trial encode)")
    def process(self, task: TrialTask):
        record_uri = trial_record_name(task, naming.trial_record_uri(
            task.output_root, task.title_id, task.span.index))
        if _storage.exists(record_uri):
            reused = trial_results(task, _storage.read_json(record_uri))
            if reused is not None:
                yield from map(lean_result, reused)
                return
        try:
            with tempfile.TemporaryDirectory(prefix="ladderflow-trial-") as scratch:
                with _storage.open_source(task.source.source_uri) as source:
                    staged = stage_span(source, *chunk_window_s(task.source, task.span),
                                        f"{scratch}/source-span.mkv", task.source.source_uri)
                record = trial_record(task, *run_trials(task, staged, scratch, self._timeout_s))
        except MediaError as exc:
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                task.title_id, task.source.source_uri, "plan (trial encode)", exc))
            return
        _storage.write_json(record_uri, record)
        yield from map(lean_result, trial_results(task, record))


class _RefineFn(beam.DoFn):
    """After the probe: trial the other samples at the resolutions the probe's hull calls
    for, and pass the probe's results on, numbered among all the title's results."""

    def __init__(self, config: JobConfig):
        self._config = config

    @dead_letters("plan (refine)")
    def process(self, element):
        version, probed = element
        tasks, heights = refine_tasks(probed, self._config)
        total = tasks[0].trial_count if tasks else len(probed)
        if tasks:
            left_out = sorted({r.height for r in probed} - set(heights), reverse=True)
            log.info("%s: probe hull calls for %s; trialling %d more sample segments there "
                     "(%d trial encodes)%s", probed[0].title_id,
                     ", ".join(f"{h}p" for h in heights), len(tasks), total - len(probed),
                     f"; left out: {', '.join(f'{h}p' for h in left_out)}" if left_out else "")
        for result in probed:
            yield pvalue.TaggedOutput(_PROBED, (version, Part(result.index, total, result)))
        yield from tasks


class _ChooseLadderFn(_storage.ReleasesKeptSource, beam.DoFn):
    """All of a title's trial results -> its plan (`media.plan.per_title.plan_title`),
    with the record of how it was made stored beside the title's work."""

    def __init__(self, config: JobConfig):
        self._config = config

    @dead_letters("plan (ladder)")
    def process(self, element):
        _, every_result = element
        source = every_result[0].task.source
        codec = every_result[0].task.codec
        try:
            plan, record = plan_title(every_result, self._config, _storage.open_source)
        except MediaError as exc:
            stage = "plan (ladder)" if isinstance(exc, NoLadder) else "plan (calibration)"
            yield pvalue.TaggedOutput(DEAD_LETTER, dead_letter_for(
                source.title_id, source.source_uri, f"{stage} {codec}".strip(), exc))
            return
        if codec:  # one codec's ladder: joined with the others' by _JoinCodecsFn
            codecs = self._config.title_codecs(source.hdr)
            yield pvalue.TaggedOutput(_CODEC_PLAN, (source.version_key, Part(
                codecs.index(codec), len(codecs), (codec, plan, record))))
            return
        _storage.write_json(naming.plan_record_uri(self._config.output_root, source.title_id),
                            record)
        spread = record["scoring"]["frame_sd"]
        log.info("%s: planned %d rungs: %s; chunks scored on %d frames at least "
                 "(trial frame scores spread %s)", source.title_id, len(plan.renditions),
                 ", ".join(f"{r.height}p CRF {r.crf:g} (VMAF {r.target_vmaf:.1f})"
                           for r in plan.renditions), plan.scored_frames,
                 "unknown" if spread is None else f"{spread:.2f}")
        yield plan


class _JoinCodecsFn(beam.DoFn):
    """Every codec's plan of a title -> the title's plan: the codecs' ladders one after
    the other (in `--codecs` order, each cut to `--max_renditions`), and one plan record
    (the first codec's, with every codec's under 'codecs', for the report)."""

    def __init__(self, config: JobConfig):
        self._config = config

    @dead_letters("plan (codecs)")
    def process(self, element):
        _, parts = element
        cfg = self._config
        plans = [plan for _, plan, _ in parts]
        cut = cfg.max_renditions or None
        first = plans[0]
        plan = dataclasses.replace(
            first, renditions=tuple(r for p in plans for r in p.renditions[:cut]),
            trial_cost_s=sum(p.trial_cost_s for p in plans),
            scored_frames=max(p.scored_frames for p in plans))
        record = {**parts[0][2], "codecs": {codec: rec for codec, _, rec in parts}}
        _storage.write_json(naming.plan_record_uri(cfg.output_root, first.source.title_id),
                            record)
        log.info("%s: codec ladders: %s", first.source.title_id, "; ".join(
            f"{codec} {len(p.renditions[:cut])} rungs" for codec, p, _ in parts))
        yield plan


def _by_version(result: TrialResult):
    key = (*result.task.source.version_key, result.task.codec)
    return key, Part(result.index, result.task.trial_count, result)


class PlanLadder(beam.PTransform):
    """PCollection[SourceInfo] -> {'main': TitlePlan, 'dead_letter': DeadLetter}."""

    def __init__(self, config: JobConfig):
        super().__init__()
        self._config = config

    def expand(self, sources):
        fanned = sources | "TrialTasks" >> beam.ParDo(_TrialTasksFn(self._config)).with_outputs(
            _PLANNED, DEAD_LETTER, main="trials")
        timeout_s = self._config.tool_timeout_s
        probe = (
            fanned.trials
            | "SpreadProbe" >> beam.Reshuffle()
            | "ProbeEncode" >> beam.ParDo(_RunTrialFn(timeout_s)).with_outputs(
                DEAD_LETTER, main="main")
        )
        probe_results = (
            probe.main
            | "KeyProbeByTitle" >> beam.Map(_by_version).with_output_types(_KEYED_TRIAL)
            | "GatherProbe" >> GatherParts(self._config.title_timeout_s, "plan (gather probe)",
                                           "trial")
        )
        refine = (
            probe_results.main
            | "Refine" >> beam.ParDo(_RefineFn(self._config)).with_outputs(
                _PROBED, DEAD_LETTER, main="tasks")
        )
        trials = (
            refine.tasks
            | "SpreadTrials" >> beam.Reshuffle()
            | "TrialEncode" >> beam.ParDo(_RunTrialFn(timeout_s)).with_outputs(
                DEAD_LETTER, main="main")
        )
        all_trials = (
            (refine[_PROBED],
             trials.main | "KeyByTitle" >> beam.Map(_by_version).with_output_types(
                 _KEYED_TRIAL))
            | "WithProbe" >> beam.Flatten().with_output_types(_KEYED_TRIAL)
            | "GatherTrials" >> GatherParts(self._config.title_timeout_s, "plan (gather trials)",
                                            "trial")
        )
        chosen = (
            all_trials.main
            | "ChooseRungs" >> beam.ParDo(_ChooseLadderFn(self._config)).with_outputs(
                _CODEC_PLAN, DEAD_LETTER, main="main")
        )
        chosen_plans = [chosen.main]
        joined_dead = []
        if self._config.multi_codec:
            codec_plans = (
                chosen[_CODEC_PLAN]
                | "KeyCodecPlans" >> beam.Map(lambda keyed: keyed).with_output_types(_KEYED)
                | "GatherCodecs" >> GatherParts(self._config.title_timeout_s,
                                                "plan (gather codecs)", "codec ladder")
            )
            joined = codec_plans.main | "JoinCodecs" >> beam.ParDo(
                _JoinCodecsFn(self._config)).with_outputs(DEAD_LETTER, main="main")
            chosen_plans.append(joined.main)
            joined_dead = [codec_plans[DEAD_LETTER], joined[DEAD_LETTER]]
        # Progress in each round's own stage, so that its lines come as the trials finish.
        _ = probe.main | "ProbeProgress" >> ReportTrialProgress()
        _ = trials.main | "TrialProgress" >> ReportTrialProgress()
        planned = (fanned[_PLANNED], *chosen_plans) | "AllPlans" >> beam.Flatten()
        dead = ((fanned[DEAD_LETTER], probe[DEAD_LETTER], probe_results[DEAD_LETTER],
                 refine[DEAD_LETTER], trials[DEAD_LETTER], all_trials[DEAD_LETTER],
                 chosen[DEAD_LETTER], *joined_dead)
                | "PlanRejects" >> beam.Flatten())
        return {"main": planned, DEAD_LETTER: dead}
