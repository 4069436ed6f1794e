"""Run the pipeline and tell the user, title by title, what became of each source."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from media.core import naming
from media.core.config import JobConfig
from media.core.errors import ConfigurationError
from media.core.ffmpeg import available_cores
from pipeline.graph import (
    Delivery,
    build_event_pipeline,
    build_events_batch,
    build_pipeline,
    own_output_prefix,
)
from pipeline.local_runner import LOCAL_RUNNER, runner_api_round_trip
from pipeline.options import LadderflowOptions, job_config, pubsub_path
from pipeline.watch import watch_in_batches
from transforms import _storage, metrics
from transforms.imf import source_title_ids
from transforms.ingest import check_unique_titles, expand_sources

log = logging.getLogger("ladderflow")


@dataclass(frozen=True)
class TitleOutcome:
    title_id: str
    source_uri: str
    published: bool
    detail: str


def outcomes(config: JobConfig, sources: list[str]) -> list[TitleOutcome]:
    """What the output root says about each source after a run."""
    results = []
    titles = {title: uri for uri in sources  # an IMF package: a title per CPL
              for title in source_title_ids(uri, config.imf_assetmaps, config.imf_cpl)}
    for title, uri in titles.items():
        error_uri = naming.error_record_uri(config.output_root, title)
        master = naming.join(naming.title_root(config.output_root, title), naming.MASTER_PLAYLIST)
        if _storage.exists(error_uri):
            record = _storage.read_json(error_uri)
            detail = f"{record.get('stage')}: {record.get('error')} -- {record.get('hint')}"
            results.append(TitleOutcome(title, uri, False, detail))
        elif _storage.exists(master):
            results.append(TitleOutcome(title, uri, True, master))
        else:
            results.append(TitleOutcome(title, uri, False, "not published (see the log above)"))
    return results


def summary_lines(results: list[TitleOutcome]) -> list[str]:
    lines = []
    for r in results:
        status = "published" if r.published else "FAILED   "
        lines.append(f"{status} {r.title_id}: {r.detail}")
    return lines


def choose_runner(options: PipelineOptions) -> str:
    """With no --runner, name the runner the tests run (`pipeline.local_runner`): Beam's
    DirectRunner would try Prism first, downloaded where the internet is reachable.
    Returns the runner's name, which is logged."""
    standard = options.view_as(StandardOptions)
    if standard.runner is None:
        standard.runner = LOCAL_RUNNER
        log.info("runner: LocalRunner (Beam's Python runners, no Prism; --runner picks "
                 "another)")
    else:
        log.info("runner: %s", standard.runner)
    return standard.runner


def log_metrics(result) -> None:
    """Log what the run did, from its Beam Metrics (`transforms.metrics`)."""
    try:
        query = result.metrics().query()
    except NotImplementedError:  # a runner that keeps no metrics
        return
    for line in metrics.summary_lines(query):
        log.info("metrics: %s", line)


def local_parallelism(argv: list[str], options: PipelineOptions) -> None:
    """On the DirectRunner, run as many bundles at once as there are cores.

    The work is in FFmpeg processes, so threads are enough (no GIL contention), and
    small renditions, which one x264 cannot spread over every core, share the machine
    instead of running one after another. An explicit --direct_num_workers wins.
    """
    if not _on_direct_runner(options) or any(
            a.startswith("--direct_num_workers") for a in argv):
        return
    direct = options.view_as(DirectOptions)
    direct.direct_num_workers = available_cores()
    if not any(a.startswith("--direct_running_mode") for a in argv):
        direct.direct_running_mode = "multi_threading"


def run(argv: list[str], pipeline_options: PipelineOptions | None = None) -> int:
    """Run the job that `argv` describes; return the process exit status."""
    options = pipeline_options or PipelineOptions(argv)
    choose_runner(options)
    local_parallelism(argv, options)
    config = job_config(options)
    opts = options.view_as(LadderflowOptions)
    delivery = Delivery(pubsub_path(opts.notify_topic, "--notify_topic"),
                        pubsub_path(opts.dead_letter_topic, "--dead_letter_topic"))
    if opts.subscription or opts.watch:
        if opts.input:
            raise ConfigurationError("--input names a fixed list of sources; --subscription "
                                     "and --watch read events: give one or the other")
        return run_events(options, config, delivery)
    spec = opts.input
    if not spec:
        raise ConfigurationError("give --input (a path, a glob or a comma-separated list), "
                                 "--subscription or --watch")
    sources = expand_sources(spec)
    check_unique_titles(sources, config.imf_assetmaps, config.imf_cpl)
    log.info("processing %d source(s) into %s", len(sources), config.output_root)
    started = time.monotonic()
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, sources, config, delivery)
    if submits_only(options):
        return _submitted(pipeline.run(), config)
    result = pipeline.run(test_runner_api=runner_api_round_trip(pipeline, options))
    result.wait_until_finish()
    log_metrics(result)
    results = outcomes(config, sources)
    failed = [r for r in results if not r.published]
    print(f"\nladderflow: {len(results) - len(failed)} of {len(results)} title(s) published "
          f"in {time.monotonic() - started:.1f} s", file=sys.stderr)
    for line in summary_lines(results):
        print("  " + line, file=sys.stderr)
    return 1 if failed else 0


def run_events(options: PipelineOptions, config: JobConfig, delivery: Delivery) -> int:
    """Run the event-driven (streaming) job until it is cancelled (Ctrl-C on the
    DirectRunner; `gcloud dataflow jobs drain` on Dataflow)."""
    opts = options.view_as(LadderflowOptions)
    subscription = pubsub_path(opts.subscription, "--subscription", "subscriptions")
    if opts.watch and _on_direct_runner(options):
        if subscription:
            raise ConfigurationError("on the DirectRunner, give --subscription or --watch, "
                                     "not both (run two jobs)")
        return watch_locally(options, config, delivery)
    options.view_as(StandardOptions).streaming = True
    pipeline = beam.Pipeline(options=options)
    build_event_pipeline(pipeline, config, subscription=subscription, watch=opts.watch,
                         watch_interval_s=opts.watch_interval_s, delivery=delivery)
    fronts = " and ".join(x for x in (subscription and f"notifications from {subscription}",
                                      opts.watch and f"new files under {opts.watch}") if x)
    log.info("streaming: processing %s into %s (Ctrl-C stops)", fronts, config.output_root)
    result = pipeline.run()
    if submits_only(options):
        return _submitted(result, config)
    try:
        result.wait_until_finish()
    except KeyboardInterrupt:
        log.info("stopping: cancelling the pipeline")
        result.cancel()
    return 0


def submits_only(options: PipelineOptions) -> bool:
    """Dataflow jobs are submitted and left to run: a Flex Template launcher must exit
    once its job is created, and the job's outcome is on Dataflow and under OUTPUT."""
    runner = options.view_as(StandardOptions).runner
    return str(runner or "").endswith("DataflowRunner")


def _submitted(result, config: JobConfig) -> int:
    job = getattr(result, "job_id", None)
    job_id = job() if callable(job) else job
    print(f"\nladderflow: submitted Dataflow job {job_id or '(id unknown)'}; titles will "
          f"appear under {config.output_root}, rejects under {config.output_root}/_errors/",
          file=sys.stderr)
    return 0


def _on_direct_runner(options: PipelineOptions) -> bool:
    return options.view_as(StandardOptions).runner in (None, "DirectRunner", LOCAL_RUNNER)


def _stop_on_signals(batch_running=lambda: False) -> Callable[[], None]:
    """Ctrl-C (SIGINT) and a service manager's SIGTERM stop the watcher between batches,
    also where it was started with SIGINT ignored or blocked (a script's background job
    inherits both): the signals are unblocked and raise KeyboardInterrupt. One that comes
    while a batch runs lets the batch finish first (raising inside the runner can leave
    its threads waiting, and the process with them); a second one stops at once."""
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread may set handlers; a caller's thread keeps its own.
        return lambda: None
    asked = []

    def stop(signum, frame):
        name = signal.Signals(signum).name
        if batch_running() and not asked:
            asked.append(name)
            log.info("%s: stopping once this batch is done (again to stop now)", name)
            return
        raise KeyboardInterrupt(name)

    def between_batches():
        if asked:
            raise KeyboardInterrupt(asked[0])

    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    return between_batches


def watch_locally(options: PipelineOptions, config: JobConfig, delivery: Delivery,
                  polls: int | None = None) -> int:
    """`--watch` on the DirectRunner: a batch job per poll that found new sources
    (see `pipeline.watch`). Runs until Ctrl-C."""
    opts = options.view_as(LadderflowOptions)
    options.view_as(StandardOptions).streaming = False

    running = []

    def run_batch(events):
        started = time.monotonic()
        pipeline = beam.Pipeline(options=options)
        build_events_batch(pipeline, events, config, delivery)
        running.append(True)
        try:
            result = pipeline.run(test_runner_api=runner_api_round_trip(pipeline, options))
            result.wait_until_finish()
        finally:
            running.clear()
        log_metrics(result)
        results = outcomes(config, [e.source_uri for e in events])
        log.info("batch of %d source(s) done in %.1f s", len(events),
                 time.monotonic() - started)
        for line in summary_lines(results):
            log.info("  %s", line)
        stop_if_asked()

    log.info("watching %s every %g s into %s (Ctrl-C stops)", opts.watch,
             opts.watch_interval_s, config.output_root)
    stop_if_asked = _stop_on_signals(lambda: bool(running))
    try:
        watch_in_batches(opts.watch, opts.watch_interval_s, own_output_prefix(config.output_root),
                         run_batch, polls)
    except KeyboardInterrupt:
        log.info("stopped watching %s", opts.watch)
    return 0
