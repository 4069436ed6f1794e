"""A title's per-title ladder from its trials: the rungs, their calibration, the plan record.

The trial points (each sample weighed by the segments it stands for) give the convex
hull and the rungs (`media.plan.hull`), each sample's own curves the CRF changes over
the title (`media.plan.planning.crf_offsets`), and a calibration at the final preset the
rungs' CRFs (`media.plan.rate_control.calibrate`, fed by `SampleRounds`). Plain Python:
the caller passes in how to open the source and stores the record.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from media.core.config import JobConfig
from media.core.errors import MediaError
from media.core.types import ChunkSpan, ChunkTask, Rendition, TitlePlan, TrialResult, TrialTask
from media.encode.chunk import encode_renditions
from media.encode.commands import chunk_window_s
from media.encode.encoded import encoded_kbps, rendition_scratch
from media.encode.encoders import codec_encoder
from media.encode.scoring import scored, scored_together
from media.encode.staging import StagedSpan, stage_span
from media.inspect.complexity import sample_weights
from media.plan.hull import choose_rungs, upper_hull
from media.plan.invariant import MIN_RATE_RATIO, LadderRung, spaced
from media.plan.ladder import codec_id
from media.plan.planning import (
    complete_results,
    frame_spread,
    inter_share,
    recapped,
    renditions_from_rungs,
    trial_points,
)
from media.plan.prediction import predicted_rates, second_rung
from media.plan.rate_control import calibrate
from media.plan.trials import complexity_of
from media.quality.vmaf import scored_frames_needed

log = logging.getLogger(__name__)

PLANNED_RATE_RATIO = MIN_RATE_RATIO * 1.1
"""Least ratio of neighbouring rungs' predicted rates: the invariant's (measured) with
room for a prediction 10 % off (`media.plan.prediction`)."""
PLANNED_VMAF_STEP = 0.5
"""Least fall of the VMAF target from a rung to the next: a gate aims each chunk within
about that of its target, so closer targets could measure in the wrong order."""
NOISY_INTER_SHARE = 0.08
"""A probe whose frames after the keyframe cost this share of it or more
(`media.plan.planning.inter_share`) is calibrated on its whole segment, not its 1 s.
Under temporal noise a 12 s chunk scored 1.0-3.6 VMAF above the 1 s sample at the same
CRF (a third of the noisy titles' first encodes over the gate's window); a segment, one
whole GOP of the chunks', scores as they do (docs/per-title.md)."""

OpenSource = Callable[[str], AbstractContextManager[Any]]
"""Opens a source URI for staging: a local path or a seekable file object."""


class NoLadder(MediaError):
    """The trials could not give a ladder (the hull's reason is in the message)."""


class SampleRounds:
    """The calibration sample, staged once, encoded at the final settings a round at a
    time (`media.plan.rate_control.EncodeRound`): every rendition of a round in one
    process, scored in another. Counts the wall and CPU seconds spent."""

    def __init__(self, first: TrialTask, span: ChunkSpan, staged: StagedSpan, scratch: str,
                 config: JobConfig):
        self._first, self._span, self._staged = first, span, staged
        self._scratch, self._config = scratch, config
        self.spent_s = self.spent_cpu_s = 0.0

    def __call__(self, renditions: list[Rendition]) -> list[tuple[float, float]]:
        cfg, first = self._config, self._first
        tasks = [ChunkTask(source=first.source, rendition=rendition, chunk=self._span,
                           chunk_count=1, grid=first.grid, output_root=cfg.output_root,
                           settings=cfg.encode, vmaf_height=first.vmaf_height,
                           vmaf_subsample=first.vmaf_subsample)
                 for rendition in renditions]
        scores = []
        encodes = encode_renditions(tasks, self._staged, self._scratch, cfg.tool_timeout_s)
        for task, done in zip(tasks, scored_together(tasks, encodes, self._scratch,
                                                     cfg.tool_timeout_s), strict=True):
            if isinstance(done, MediaError):
                raise done
            encoded = scored(task, done, self._staged, rendition_scratch(self._scratch, task),
                             0, cfg.tool_timeout_s, task.vmaf_subsample)
            self.spent_s += encoded.encode_s + encoded.score_s
            self.spent_cpu_s += encoded.encode_cpu_s + encoded.score_cpu_s
            scores.append((encoded.vmaf.mean, encoded_kbps(task, encoded)))
        return scores


def calibration_span(first: TrialTask, results: Sequence[TrialResult]) -> ChunkSpan:
    """The calibration sample: the probe sample (`first`'s), or its whole segment where
    the probe's trials (in `results`) show frames that inter prediction cannot make
    cheap, as temporal noise and grain are (NOISY_INTER_SHARE)."""
    span = first.span
    share = inter_share([r for r in results if r.task.span.index == span.index])
    if share is None or share < NOISY_INTER_SHARE:
        return span
    frames = min(first.grid.segment_frames, first.source.frame_count - span.start_frame)
    return ChunkSpan(span.index, span.start_frame, max(span.frame_count, frames))


def calibrated(renditions: list[Rendition], first: TrialTask, span: ChunkSpan,
               config: JobConfig, open_source: OpenSource
               ) -> tuple[list[Rendition], list[dict], float, float]:
    """`renditions` calibrated at the final preset on `span` (`calibration_span` of the
    probe sample, `first`'s: of middle complexity, or the middle one): the renditions, a
    record each, and the wall and CPU seconds the encodes took."""
    with tempfile.TemporaryDirectory(prefix="ladderflow-calibrate-") as scratch:
        with open_source(first.source.source_uri) as source:
            staged = stage_span(source, *chunk_window_s(first.source, span),
                                f"{scratch}/source-span.mkv", first.source.source_uri)
        rounds = SampleRounds(first, span, staged, scratch, config)
        sample_s = span.frame_count / float(first.source.frame_rate)
        adjusted, records = calibrate(renditions, span, sample_s, config, rounds)
    return adjusted, records, rounds.spent_s, rounds.spent_cpu_s


def plan_title(every_result: Sequence[TrialResult], config: JobConfig,
               open_source: OpenSource) -> tuple[TitlePlan, dict]:
    """The title's plan from all its trial results (the probe's first), and the record
    of how it was made (plan.json). Raises `NoLadder` where the hull gives no ladder,
    a `MediaError` where the calibration's encodes fail."""
    cfg = config
    results = complete_results(every_result)
    first = every_result[0].task
    source = first.source
    complexity = complexity_of(source, first.grid)
    samples = sorted({r.task.span.index for r in results})
    weights = sample_weights(complexity, samples) if complexity else None
    points = trial_points(results, weights)
    try:
        rungs = choose_rungs(points, top_vmaf=cfg.top_vmaf, max_kbps=cfg.max_kbps or None,
                             min_kbps=cfg.min_kbps, step_ratio=cfg.step_ratio,
                             max_rungs=cfg.max_rungs)
    except ValueError as exc:
        raise NoLadder(f"no ladder could be planned from the trials: {exc}") from exc
    renditions = renditions_from_rungs(rungs, points, results, weights)
    codec = first.codec
    final_encoder = codec_encoder(codec, cfg.encode.encoder) if codec else cfg.encode.encoder
    if codec:  # a codec ladder's rungs carry its encoder and HDR, the calibration's included
        renditions = [dataclasses.replace(r, encoder=final_encoder, hdr=first.hdr)
                      for r in renditions]
    split, cpu = _trial_costs(every_result)
    calibration: list[dict] = []
    before = renditions
    span = calibration_span(first, results)
    trial_encoder_name = first.settings.encoder
    if cfg.trial_preset != cfg.encode.preset or final_encoder != trial_encoder_name:
        renditions, calibration, split["calibration"], cpu["calibration"] = calibrated(
            renditions, first, span, cfg, open_source)
        # the caps again, for the CRF changes as the calibration carried them over
        renditions = recapped(renditions, rungs, results, weights)
        for entry, rendition in zip(calibration, renditions, strict=True):
            entry["id"] = rendition.rendition_id
    def predict(chosen: Sequence[Rendition]) -> list[float]:
        return predicted_rates(
            chosen, [r.kbps for r in rungs], results, weights, calibration, before,
            span.index, span.start_frame + span.frame_count / 2,
            span.frame_count / float(source.frame_rate))

    predicted = predict(renditions)
    kept, dropped = spaced([LadderRung(r.rendition_id, kbps, r.target_vmaf)
                            for r, kbps in zip(renditions, predicted, strict=True)],
                           PLANNED_RATE_RATIO, PLANNED_VMAF_STEP)
    renditions, predicted, kept, dropped = second_rung(
        list(renditions), predicted, kept, dropped, PLANNED_RATE_RATIO, predict)
    for line in dropped:
        log.info("%s: planning %s", source.title_id, line)
    renditions, rungs, predicted = ([seq[i] for i in kept]
                                    for seq in (renditions, rungs, predicted))
    calibration = [calibration[i] for i in kept] if calibration else calibration
    cost = sum(split.values())
    spread = frame_spread(results, [r.height for r in renditions])
    scored_frames = scored_frames_needed(spread)
    record = {
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
        # the rungs as the hull predicts them, with the VBV cap their renditions got and
        # the rate predicted at their final CRFs and preset (`media.plan.prediction`)
        "rungs": [{"id": rendition.rendition_id, **dataclasses.asdict(dataclasses.replace(
            rung, maxrate_kbps=rendition.maxrate_kbps, bufsize_kbit=rendition.bufsize_kbit)),
            "predicted_kbps": round(kbps, 1)}
            for rung, rendition, kbps in zip(rungs, renditions, predicted, strict=True)],
        # rungs left out as no real step under the one above (`media.plan.invariant.
        # spaced`), and a title's second rung moved down its curve or dropped
        "dropped_rungs": dropped,
        "calibration": calibration,
        # the frames the calibration encoded: the probe sample's, or its segment's
        "calibration_frames": span.frame_count if calibration else 0,
        # how much the ladder's trial frame scores vary, and so how many frames of
        # each final chunk are scored (`media.quality.vmaf.chunk_step`)
        "scoring": {"frame_sd": None if spread is None else round(spread, 3),
                    "scored_frames": scored_frames},
    }
    if codec:
        renditions = [dataclasses.replace(r, rendition_id=codec_id(codec, r.rendition_id))
                      for r in renditions]
        record |= {"codec": codec, "trial_encoder": trial_encoder_name,
                   "encoder": final_encoder, "trial_crfs": list(first.crfs)}
        for entry in [*record["rungs"], *record["calibration"]]:
            if "id" in entry:
                entry["id"] = codec_id(codec, entry["id"])
    # the plan has used the complexity; the chunk tasks need not carry it
    planned = dataclasses.replace(source, complexity=(), complexity_bin_frames=0)
    return TitlePlan(planned, tuple(renditions), "per-title", first.grid, cost,
                     scored_frames), record


def _trial_costs(every_result: Sequence[TrialResult]
                 ) -> tuple[dict[str, float], dict[str, float]]:
    """Wall and CPU seconds of the trials, split into the probe's and the refinement's
    (and the calibration's, 0 until it runs)."""
    probe = every_result[0].task.span.index
    split = {"probe": 0.0, "refine": 0.0, "calibration": 0.0}
    cpu = dict.fromkeys(split, 0.0)
    for r in every_result:
        part = "probe" if r.task.span.index == probe else "refine"
        split[part] += r.encode_s + r.score_s
        cpu[part] += r.cpu_s
    return split, cpu


def _probe_record(results: Sequence[TrialResult]) -> dict:
    """The probe sample's own points (every candidate resolution) and what it kept."""
    probe = results[0].task.span.index
    probed = [r for r in results if r.task.span.index == probe]
    return {"segment": probe,
            "points": [dataclasses.asdict(p) for p in trial_points(probed)],
            "kept_heights": sorted({r.height for r in complete_results(results)},
                                   reverse=True)}
