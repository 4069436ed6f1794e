"""Command-line options of the pipeline, as Beam `PipelineOptions`.

Every standard Beam flag (`--runner`, `--direct_num_workers`, ...) passes through;
ours are turned into a validated `JobConfig` before the graph is built, so a bad flag
fails before any work. A flag that neither knows is refused before anything starts
(Beam itself only warns, and runs on with the default).
"""

from __future__ import annotations

import argparse
import difflib
import re

from apache_beam.options.pipeline_options import PipelineOptions

from media.core.config import (
    DEFAULT_DEDUP_RETENTION_S,
    DEFAULT_IMF_SETTLE_S,
    DEFAULT_MAX_DURATION_S,
    DEFAULT_MAX_HEIGHT,
    DEFAULT_MAX_WIDTH,
    DEFAULT_TITLE_TIMEOUT_S,
    LADDERS,
    X264_PRESETS,
    JobConfig,
)
from media.core.errors import ConfigurationError
from media.core.types import EncodeSettings
from media.quality.gpu_vmaf import VMAF_BACKENDS


class LadderflowOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--input", help="Sources: a path, a glob, or a comma-separated "
                            "list of them (local or gs://).")
        parser.add_argument("--output", help="Output root: each title is published under "
                            "OUTPUT/<title_id>/, rejects under OUTPUT/_errors/.")
        parser.add_argument("--segment_seconds", type=float, default=4.0,
                            help="Segment duration (snapped to whole frames). Default 4.")
        parser.add_argument("--chunk_segments", type=int, default=3,
                            help="Segments per encode chunk. Default 3.")
        parser.add_argument("--segment_grid", default="shots", choices=("shots", "even"),
                            help="shots (default): segment and chunk boundaries move onto "
                            "shot changes near them (an IDR on the cut; no segment longer "
                            "than --segment_seconds); even: every --segment_seconds.")
        parser.add_argument("--min_segment_seconds", type=float, default=0.0,
                            help="Shortest segment of a grid cut at shot changes, but the "
                            "last. Default 0: half of --segment_seconds.")
        parser.add_argument("--crf", type=float, default=23.0,
                            help="x264 CRF of every rung (capped by the rung's maxrate).")
        parser.add_argument("--preset", default="medium", choices=X264_PRESETS,
                            help="x264 preset. Default medium.")
        parser.add_argument("--encoder", default="x264",
                            help="Video encoder: x264 (default), x265, svtav1, nvenc-h264, "
                            "nvenc-hevc, nvenc-av1, or auto (NVENC H.264 where a probe "
                            "encode works on the worker, else x264).")
        parser.add_argument("--codecs", default="h264",
                            help="Codec ladders of every title, comma-separated: h264 "
                            "(default), hevc, av1 (e.g. h264,av1: one title offering both, "
                            "each codec with its own ladder, over the same segments).")
        parser.add_argument("--hdr", default="tonemap", choices=("tonemap", "keep"),
                            help="HDR (PQ or HLG) sources: tonemap (default: every ladder "
                            "SDR BT.709) or keep (the ladders of --codecs other than h264, "
                            "or an added hevc one, kept HDR10/HLG in 10 bits, beside the "
                            "tone-mapped h264 ladder).")
        parser.add_argument("--decoder", default="auto", choices=("auto", "cpu", "nvdec"),
                            help="Source decoding: auto (NVDEC where a probe decode works on "
                            "the worker, else the CPU; default), cpu, or nvdec.")
        parser.add_argument("--vmaf_backend", default="auto", choices=VMAF_BACKENDS,
                            help="Chunk VMAF scoring: auto (vmaf-torch on the GPU where a "
                            "probe score works on the worker, else libvmaf; default), libvmaf, "
                            "or torch (vmaf-torch; on the CPU, slowly, without a GPU). Trial "
                            "encodes are scored with libvmaf.")
        parser.add_argument("--vmaf_subsample", type=int, default=15,
                            help="Score every n-th frame of each chunk: 1 (every frame) or an "
                            "odd step, made smaller where a chunk would have fewer than 20 "
                            "frames scored. Default 15 (pooled scores within 0.3 VMAF of "
                            "every frame's; see the README's performance section).")
        parser.add_argument("--encoder_threads", type=int, default=0,
                            help="Threads per FFmpeg process (0: the encoder decides).")
        parser.add_argument("--no_vmaf", action="store_true",
                            help="Skip VMAF scoring (previews, benchmarks).")
        parser.add_argument("--max_renditions", type=int, default=0,
                            help="Keep only the N tallest rungs of the ladder (0: all).")
        parser.add_argument("--audio_kbps", type=int, default=128,
                            help="AAC-LC stereo bitrate. Default 128.")
        parser.add_argument("--keep_work", action="store_true",
                            help="Keep the work area OUTPUT/_work/ (chunk records and "
                                 "init segments, VMAF logs) after publishing.")
        parser.add_argument("--tool_timeout_s", type=float, default=3600.0,
                            help="Longest one FFmpeg process may run. Default 3600.")
        parser.add_argument("--ladder", default="per-title", choices=LADDERS,
                            help="per-title: trial encodes and a rate-VMAF convex hull choose "
                            "each title's rungs (default); fixed: the fixed ladder; apple: "
                            "Apple's authoring-spec ladder at fixed bitrates (a baseline).")
        parser.add_argument("--top_vmaf", type=float, default=95.0,
                            help="VMAF the top rung aims at. Default 95.")
        parser.add_argument("--min_kbps", type=float, default=200.0,
                            help="Rate of the lowest rung. Default 200.")
        parser.add_argument("--max_kbps", type=float, default=8000.0,
                            help="Cap on the top rung's rate (0: none). Default 8000.")
        parser.add_argument("--step_ratio", type=float, default=1.7,
                            help="Rate ratio between neighbouring rungs. Default 1.7.")
        parser.add_argument("--trial_preset", default="veryfast", choices=X264_PRESETS,
                            help="x264 preset of the trial encodes. Default veryfast.")
        parser.add_argument("--allocation", default="constant", choices=("constant", "optimal"),
                            help="How a rung's bits are shared among its chunks: constant "
                            "(every chunk at the rung's VMAF) or optimal (each chunk's CRF "
                            "from probe encodes, so the rung meets its VMAF as a title for "
                            "the fewest bits). Per-title ladders with VMAF. Default constant.")
        parser.add_argument("--allocation_max_drop", type=float, default=6.0,
                            help="With --allocation optimal: how far (VMAF) under the "
                            "rung's target one chunk may be aimed. Default 6.")
        parser.add_argument("--trial_crfs", default="19,26,33",
                            help="CRFs trial-encoded at every resolution. Default 19,26,33.")
        parser.add_argument("--trial_fraction", type=float, default=0.1,
                            help="Share of segments sampled for trials (at least 3; chosen "
                            "by complexity; one for a uniform title). Default 0.1.")
        parser.add_argument("--trial_seconds", type=float, default=1.0,
                            help="Seconds of each sampled segment trial-encoded. Default 1.")
        parser.add_argument("--subscription", default="",
                            help="Read Cloud Storage notifications (OBJECT_FINALIZE, payload "
                            "JSON_API_V1) from projects/P/subscriptions/S and process each "
                            "object they announce (streaming; implies --streaming).")
        parser.add_argument("--watch", default="",
                            help="Poll a local folder or gs:// prefix for new or rewritten "
                            "sources (streaming; for runners without a Python Pub/Sub "
                            "source, such as Flink).")
        parser.add_argument("--watch_interval_s", type=float, default=10.0,
                            help="Seconds between two polls of --watch. Default 10.")
        parser.add_argument("--notify_topic", default="",
                            help="Publish a \"title ready\" message (title id, manifest "
                            "URIs, ladder) on projects/P/topics/T per published title.")
        parser.add_argument("--dead_letter_topic", default="",
                            help="Publish each rejected event or title (why, and what to do) "
                            "on projects/P/topics/T instead of writing OUTPUT/_errors/.")
        parser.add_argument("--max_attempts", type=int, default=3,
                            help="Encodes per chunk at most: a chunk whose VMAF misses its "
                            "rung's target is re-encoded (default 3: two retries).")
        parser.add_argument("--max_duration_s", type=float, default=DEFAULT_MAX_DURATION_S,
                            help="Longest source accepted, in seconds of video; a longer one "
                            "is rejected at inspection, before any encode. Default 21600 "
                            "(6 h).")
        parser.add_argument("--max_width", type=int, default=DEFAULT_MAX_WIDTH,
                            help="Widest coded frame accepted (before rotation); a wider "
                            "source is rejected at inspection. Default 7680.")
        parser.add_argument("--max_height", type=int, default=DEFAULT_MAX_HEIGHT,
                            help="Tallest coded frame accepted (before rotation); a taller "
                            "source is rejected at inspection. Default 4320.")
        parser.add_argument("--max_source_bytes", type=int, default=0,
                            help="Largest source video file accepted, in bytes; a larger one "
                            "is rejected before it is opened (0: no limit, the default).")
        parser.add_argument("--title_timeout_s", type=float, default=DEFAULT_TITLE_TIMEOUT_S,
                            help="Streaming: a title version still incomplete this many "
                            "seconds after its first part reached a gather becomes a dead "
                            "letter naming the missing chunks or tracks, and its state is "
                            "cleared (0: never). Default 86400 (a day). Batch ignores it.")
        parser.add_argument("--dedup_retention_s", type=float,
                            default=DEFAULT_DEDUP_RETENTION_S,
                            help="Streaming: seconds a source version is remembered to drop "
                            "repeated events (0: forever); a repeat after that runs the "
                            "version again, reusing its chunks. Default 604800 (7 days: "
                            "Pub/Sub keeps an unacknowledged message that long by default).")
        parser.add_argument("--imf_assetmaps", default="",
                            help="IMF: comma-separated ASSETMAPs (or package folders) of the "
                            "packages a supplemental package draws track files from.")
        parser.add_argument("--cpl", default="",
                            help="IMF: take only the CPL with this id of each package "
                            "(default: one title per CPL).")
        parser.add_argument("--imf_settle_s", type=float, default=DEFAULT_IMF_SETTLE_S,
                            help="IMF, streaming: seconds an announced .mxf or .xml object in "
                            "a folder with no ASSETMAP waits for one (after the folder's "
                            "latest such object); then an MXF is a source of its own and an "
                            "XML is dropped. 0: never wait. Default 120. Batch never waits.")


def job_config(options: PipelineOptions) -> JobConfig:
    """The validated JobConfig that the options describe."""
    opts = options.view_as(LadderflowOptions)
    return JobConfig(
        output_root=(opts.output or "").rstrip("/"),
        segment_s=opts.segment_seconds,
        chunk_segments=opts.chunk_segments,
        segment_grid=opts.segment_grid,
        min_segment_s=opts.min_segment_seconds,
        crf=opts.crf,
        encode=EncodeSettings(preset=opts.preset, threads=opts.encoder_threads,
                              encoder=opts.encoder, decoder=opts.decoder,
                              vmaf_backend=opts.vmaf_backend),
        score_vmaf=not opts.no_vmaf,
        vmaf_subsample=opts.vmaf_subsample,
        max_renditions=opts.max_renditions,
        audio_kbps=opts.audio_kbps,
        keep_work=opts.keep_work,
        tool_timeout_s=opts.tool_timeout_s,
        ladder=opts.ladder,
        top_vmaf=opts.top_vmaf,
        min_kbps=opts.min_kbps,
        max_kbps=opts.max_kbps,
        step_ratio=opts.step_ratio,
        trial_preset=opts.trial_preset,
        allocation=opts.allocation,
        allocation_max_drop=opts.allocation_max_drop,
        trial_crfs=_floats(opts.trial_crfs, "--trial_crfs"),
        codecs=tuple(c.strip() for c in opts.codecs.split(",")),
        hdr=opts.hdr,
        trial_fraction=opts.trial_fraction,
        trial_seconds=opts.trial_seconds,
        max_attempts=opts.max_attempts,
        max_duration_s=opts.max_duration_s,
        max_width=opts.max_width,
        max_height=opts.max_height,
        max_source_bytes=opts.max_source_bytes,
        title_timeout_s=opts.title_timeout_s,
        dedup_retention_s=opts.dedup_retention_s,
        imf_assetmaps=tuple(p.strip() for p in opts.imf_assetmaps.split(",") if p.strip()),
        imf_cpl=opts.cpl.strip(),
        imf_settle_s=opts.imf_settle_s,
    ).validate()


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(sorted(float(x) for x in text.split(",") if x.strip()))
    except ValueError as exc:
        raise ConfigurationError(f"{flag} {text!r}: give numbers separated by commas") from exc


_TOPIC = re.compile(r"^projects/[^/]+/topics/[A-Za-z][-A-Za-z0-9._~%+]{2,254}$")
_SUBSCRIPTION = re.compile(r"^projects/[^/]+/subscriptions/[A-Za-z][-A-Za-z0-9._~%+]{2,254}$")


def pubsub_path(value: str, flag: str, kind: str = "topics") -> str:
    """`value` checked as a full Pub/Sub topic or subscription path ('' passes)."""
    pattern = _TOPIC if kind == "topics" else _SUBSCRIPTION
    if value and not pattern.match(value):
        raise ConfigurationError(
            f"{flag} {value!r}: give the full path, projects/PROJECT/{kind}/NAME "
            "(NAME: 3 to 255 characters, starting with a letter)")
    return value


class _OptionNames(argparse.ArgumentParser):
    """Collects the flags that options classes declare (never parses: a flag's values are
    for Beam's own parser to check, with its own messages)."""

    def __init__(self):
        # "resolve": a subclass may declare a flag its base declares too.
        super().__init__(add_help=False, allow_abbrev=False, conflict_handler="resolve")

    def add_value_provider_argument(self, *args, **kwargs):
        return self.add_argument(*args, **kwargs)


def known_flags() -> set[str]:
    """Every flag of every `PipelineOptions` subclass defined so far: Beam's (the runners'
    Dataflow, Flink and portable options live in `pipeline_options` too) and ours."""
    parser = _OptionNames()
    classes, seen = list(PipelineOptions.__subclasses__()), set()
    while classes:
        cls = classes.pop()
        if cls not in seen:
            seen.add(cls)
            cls._add_argparse_args(parser)
            classes.extend(cls.__subclasses__())
    return {flag for action in parser._actions for flag in action.option_strings}


def unknown_flags(argv: list[str], known: set[str]) -> list[str]:
    """The flags in `argv` that are not in `known`, as argparse reads them: a token that
    starts with '-' (a negative number aside) is a flag, `--flag=value` is `--flag`, and
    prefixes do not count (Beam parses with `allow_abbrev=False`)."""
    unknown = []
    for token in argv:
        if token == "--":
            break
        flag = token.split("=", 1)[0]
        if not token.startswith("-") or _is_number(token) or " " in flag:
            continue  # a value (argparse takes "-x y" with a space for one too)
        if flag not in known:
            unknown.append(flag)
    return unknown


JOB_SERVER_RUNNERS = frozenset({"FlinkRunner", "SparkRunner", "PortableRunner", "PrismRunner",
                                 "SamzaRunner"})
"""Runners that hand every option, known here or not, to a job server in Java or Go,
which has options of its own (Flink's `--checkpointing_interval`, say)."""


def runner_of(argv: list[str]) -> str:
    """The `--runner` that `argv` names ('' where none), as its last mention gives it."""
    runner = ""
    for i, token in enumerate(argv):
        if token.startswith("--runner="):
            runner = token.split("=", 1)[1]
        elif token == "--runner" and i + 1 < len(argv):
            runner = argv[i + 1]
    return runner.rsplit(".", 1)[-1]


def refuse_unknown_flags(argv: list[str]) -> list[str]:
    """Raise a ConfigurationError that names each flag of `argv` that neither ladderflow
    nor Beam knows, with the nearest known one (`--top-vmaf`: `--top_vmaf`). With a job
    server's runner (JOB_SERVER_RUNNERS) such flags are the job server's to judge: they
    are returned, for the caller to say that they go on to it."""
    known = known_flags()
    unknown = unknown_flags(argv, known)
    if not unknown or runner_of(argv) in JOB_SERVER_RUNNERS:
        return unknown
    # Compared without the dashes, which every name shares.
    names = sorted(flag.lstrip("-") for flag in known)
    said = []
    for flag in unknown:
        bare = flag.lstrip("-")
        near = [bare.replace("-", "_")] if "--" + bare.replace("-", "_") in known else (
            difflib.get_close_matches(bare, names, n=1))
        said.append(f"{flag} (did you mean --{near[0]}?)" if near else flag)
    raise ConfigurationError(
        f"unknown option{'s' if len(said) > 1 else ''}: {', '.join(said)}",
        "Neither ladderflow nor Beam knows it, and Beam would run on with its default. "
        "`python -m pipeline --help` lists ladderflow's options; Beam's are its "
        "PipelineOptions (apache_beam/options/pipeline_options.py).")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
