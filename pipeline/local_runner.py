"""The runner a run with no `--runner` gets: Beam's Python runners, named outright.

Beam 2.77's `DirectRunner` first tries the Prism runner, a Go binary it downloads from
GitHub where the internet is reachable, and falls back to its Python runners where it
cannot; it also leaves the FnApiRunner for the one-thread BundleBasedDirectRunner as
soon as a DoFn declares a processing-time timer, as the gathers do for streaming. With
no `--runner` ladderflow names `LocalRunner`, which never tries Prism and picks by the
job: the FnApiRunner for batch (in-process, `--direct_num_workers` bundles at once;
batch sets no timers), the BundleBasedDirectRunner for streaming (`--streaming`, Pub/Sub,
TestStream). `--runner=DirectRunner` asks for Beam's own choice, Prism first;
`--runner=PrismRunner` for Prism; `--runner=FnApiRunner` for the batch engine alone.
"""

from __future__ import annotations

import logging

from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
from apache_beam.pipeline import PipelineVisitor
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.runner import PipelineRunner
from apache_beam.transforms.environments import (
    EmbeddedPythonGrpcEnvironment,
    python_sdk_capabilities,
)

__all__ = ["LOCAL_RUNNER", "LocalRunner", "engine_for", "runner_api_round_trip"]

log = logging.getLogger("ladderflow")

LOCAL_RUNNER = f"{__name__}.LocalRunner"
"""The `--runner` value that names it (Beam builds a runner from its dotted path)."""


class _StreamingParts(PipelineVisitor):
    """Finds what only the BundleBasedDirectRunner runs: Pub/Sub and TestStream."""

    def __init__(self):
        self.found: list[str] = []

    def enter_composite_transform(self, applied_ptransform):
        self.visit_transform(applied_ptransform)

    def visit_transform(self, applied_ptransform):
        from apache_beam.io.gcp.pubsub import ReadFromPubSub, WriteToPubSub
        from apache_beam.testing.test_stream import TestStream

        if isinstance(applied_ptransform.transform, ReadFromPubSub | WriteToPubSub | TestStream):
            self.found.append(type(applied_ptransform.transform).__name__)


def engine_for(pipeline, options) -> str:
    """'FnApiRunner' or 'BundleBasedDirectRunner': which engine runs `pipeline`."""
    if options.view_as(StandardOptions).streaming:
        return "BundleBasedDirectRunner"
    parts = _StreamingParts()
    pipeline.visit(parts)
    return "BundleBasedDirectRunner" if parts.found else "FnApiRunner"


def runner_api_round_trip(pipeline, options) -> bool | str:
    """`Pipeline.run`'s `test_runner_api` for this job: False where LocalRunner runs it on
    the FnApiRunner, else Beam's own choice ('AUTO'). Before a run Beam rebuilds the whole
    graph from its runner-API protos, a check of the protos, unless the runner takes the
    protos anyway; it skips that for Beam's DirectRunner on batch, but not for a runner it
    does not know, and LocalRunner must say it is not Fn API compatible for streaming's
    sake. On the FnApiRunner the graph goes through the protos regardless; the extra round
    trip cost 0.35 s of every run's start (a title package's graph)."""
    runner = options.view_as(StandardOptions).runner
    if runner == LOCAL_RUNNER and engine_for(pipeline, options) == "FnApiRunner":
        return False
    return "AUTO"


class LocalRunner(PipelineRunner):
    """Beam's Python runners, chosen by the job, never Prism (see the module docstring)."""

    def is_fnapi_compatible(self) -> bool:
        return False  # as Beam's DirectRunner: no `beam_fn_api` experiment for streaming

    def run_pipeline(self, pipeline, options):
        engine = engine_for(pipeline, options)
        log.info("runner: LocalRunner on Beam's %s (Prism is not tried)", engine)
        if engine == "BundleBasedDirectRunner":
            return BundleBasedDirectRunner().run_pipeline(pipeline, options)
        return _fn_api_runner(options).run_pipeline(pipeline, options)


WHOLE_ELEMENTS_FLUSH_MS = 24 * 3600 * 1000
"""The threaded FnApiRunner's time-based flush of a bundle's output, in effect never.

Beam's in-process gRPC worker (`--direct_running_mode=multi_threading`) flushes each
output stream every second from a thread of its own, whatever the writer is doing: an
element half encoded goes out in two chunks. Where that output is read by the next
stage on several workers, the runner deals its chunks out to them whole, so the halves
land on different workers and neither can decode its part ("Negative size passed to
PyBytes_FromStringAndSize", "Unknown type tag"): a job crashed so, once, on trial
records joined by a Flatten. Outputs are still flushed by size (10 MB, at an element's
end) and when the bundle ends."""


def _fn_api_runner(options) -> PipelineRunner:
    """The FnApiRunner as Beam's DirectRunner makes it: the job's options provisioned;
    threaded, with `WHOLE_ELEMENTS_FLUSH_MS`."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    if options.view_as(DirectOptions).direct_running_mode != "multi_threading":
        return fn_runner.FnApiRunner(provision_info=provision)
    return _ThreadedFnApiRunner(
        default_environment=EmbeddedPythonGrpcEnvironment(
            data_buffer_time_limit_ms=WHOLE_ELEMENTS_FLUSH_MS,
            capabilities=python_sdk_capabilities(), artifacts=()),
        provision_info=provision)


class _ThreadedFnApiRunner(fn_runner.FnApiRunner):
    """The FnApiRunner on its own environment: its `run_pipeline` would replace it with
    Beam's default one for the threaded mode, so the mode is hidden from it while it
    runs (the worker count and everything else stand)."""

    def run_pipeline(self, pipeline, options):
        direct = options.view_as(DirectOptions)
        mode, direct.direct_running_mode = direct.direct_running_mode, None
        try:
            return super().run_pipeline(pipeline, options)
        finally:
            direct.direct_running_mode = mode
