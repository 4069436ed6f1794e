"""The job's settings as one frozen value, validated where the graph is built."""

from __future__ import annotations

from dataclasses import dataclass, field

from media.core.errors import ConfigurationError, SourceOverLimit
from media.core.types import EncodeSettings

LADDERS = ("per-title", "fixed", "apple")
DEFAULT_MAX_DURATION_S = 6 * 3600.0
DEFAULT_TITLE_TIMEOUT_S = 24 * 3600.0
"""A day: a 2-hour 1080p title on a few workers at a slow preset takes hours, and what a
waiting title keeps in state is small; a title still incomplete after a day is stuck."""
DEFAULT_DEDUP_RETENTION_S = 7 * 24 * 3600.0
"""A week: by default Pub/Sub keeps an unacknowledged message (and may redeliver it) for
7 days."""
DEFAULT_IMF_SETTLE_S = 120.0
"""Two minutes: time for an ASSETMAP uploaded right after a package's other objects, and a
short wait for a standalone MXF master (`transforms.imf_settle`)."""
DEFAULT_MAX_WIDTH, DEFAULT_MAX_HEIGHT = 7680, 4320
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")


@dataclass(frozen=True)
class SourceLimits:
    """The largest source a job takes, checked at inspection before any encode: the
    file's size first (before it is opened), then the coded frame size and the duration
    of the video (from the probe, before the whole file is decoded)."""

    max_duration_s: float = DEFAULT_MAX_DURATION_S
    max_width: int = DEFAULT_MAX_WIDTH
    max_height: int = DEFAULT_MAX_HEIGHT
    max_source_bytes: int = 0
    """0: no limit."""

    def check_bytes(self, uri: str, size_bytes: int) -> None:
        if self.max_source_bytes and size_bytes > self.max_source_bytes:
            raise SourceOverLimit(
                f"{uri} is {size_bytes} bytes, over the source size limit of "
                f"{self.max_source_bytes} bytes (--max_source_bytes)",
                hint="Re-export the source at a lower bit rate, or raise --max_source_bytes "
                     "(0: no limit) if the job should take files this large.")

    def check_video(self, uri: str, width: int, height: int, duration_s: float) -> None:
        if width > self.max_width or height > self.max_height:
            raise SourceOverLimit(
                f"{uri} is {width}x{height}, over the frame size limit of "
                f"{self.max_width}x{self.max_height} (--max_width x --max_height; the coded "
                "size, before rotation)",
                hint=f"Scale the source down to at most {self.max_width}x{self.max_height} "
                     "before submitting it, or raise --max_width/--max_height.")
        if duration_s > self.max_duration_s:
            raise SourceOverLimit(
                f"{uri} is {_hms(duration_s)} ({duration_s:.3f} s) long, over the duration "
                f"limit of {_hms(self.max_duration_s)} ({self.max_duration_s:g} s, "
                "--max_duration_s)",
                hint="Split the source into shorter titles, or raise --max_duration_s if "
                     "the job should take sources this long.")


def _hms(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


@dataclass(frozen=True)
class JobConfig:
    """Everything the stages need to know about a run (no Beam options on workers)."""

    output_root: str
    segment_s: float = 4.0
    """Nominal segment duration; snapped to whole frames per title."""
    chunk_segments: int = 3
    """Segments per chunk (the unit of parallel encoding)."""
    segment_grid: str = "shots"
    """'shots': segment boundaries move onto the shot changes inspection found where one
    falls near them (`media.plan.chunking.shot_aligned_starts`); 'even': every
    `segment_s`."""
    min_segment_s: float = 0.0
    """The shortest segment a grid cut at shot changes may have, but the title's last
    (0: half of `segment_s`)."""
    crf: float = 23.0
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    score_vmaf: bool = True
    max_renditions: int = 0
    """Keep only the tallest N rungs (0 keeps all)."""
    audio_kbps: int = 128
    keep_work: bool = False
    """Keep encoded chunks under `_work/` after the title is published."""
    tool_timeout_s: float = 3600.0
    """Longest any one FFmpeg process may run."""
    ladder: str = "per-title"
    """'per-title' (trial encodes, convex hull), 'fixed' (the fixed capped-CRF ladder) or
    'apple' (Apple's authoring-spec ladder at fixed bitrates, a benchmark baseline)."""
    top_vmaf: float = 95.0
    """VMAF the top rung aims at."""
    min_kbps: float = 200.0
    """Rate of the lowest rung (the ladder's floor)."""
    max_kbps: float = 8000.0
    """Cap on the top rung's rate (0: no cap). 8 Mb/s is about where H.264 ladders for
    1080p stop (Apple's top rung is 7.8 Mb/s): grain can otherwise ask for tens of Mb/s."""
    step_ratio: float = 1.7
    """Rate ratio between neighbouring rungs."""
    max_rungs: int = 8
    trial_preset: str = "veryfast"
    trial_crfs: tuple[float, ...] = (19.0, 26.0, 33.0)
    trial_fraction: float = 0.1
    """Share of the title's segments sampled for trials (at least 3; chosen by complexity,
    one for a uniform title: `media.plan.planning.title_samples`)."""
    trial_seconds: float = 1.0
    """Seconds of each sampled segment that are trial-encoded (from its start). Their
    rates are counted as the final GOP would spend them (`media.plan.planning.gop_bytes`), so a
    short sample measures the rate as well as a long one; 1 s costs half of 2 s."""
    vmaf_subsample: int = 15
    """Final chunks score every n-th frame (1: all; an odd n never locks onto a GOP), but
    at least `media.quality.vmaf.MIN_SCORED_FRAMES` of each chunk
    (`media.quality.vmaf.chunk_step`). 15 keeps a 12 s chunk's pooled score close to every
    frame's (docs/performance.md, Scoring)."""
    trial_vmaf_subsample: int = 5
    """Trials score every n-th frame (odd, so it never locks onto a GOP pattern): five of
    a 1 s sample's 25 frames, with their neighbours for motion."""
    gate_below: float = 1.0
    """A chunk under target - this is re-encoded at a lower CRF."""
    gate_above: float = 2.0
    """A chunk over target + this is re-encoded at a higher CRF (saves bits)."""
    max_attempts: int = 3
    """Encodes per chunk at most (the first and two retries)."""
    allocation: str = "constant"
    """How a per-title rung's bits are shared among its chunks: 'constant' (every chunk
    gated to the rung's target VMAF) or 'optimal' (each chunk's CRF chosen from probe
    encodes so the rung meets its target as a title for the fewest bits,
    `transforms.allocate`)."""
    allocation_max_drop: float = 6.0
    """With 'optimal': how far under the rung's target (VMAF) one chunk may be aimed."""
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    """Longest source video accepted (seconds); longer ones are rejected at inspection."""
    max_width: int = DEFAULT_MAX_WIDTH
    max_height: int = DEFAULT_MAX_HEIGHT
    """Largest coded frame accepted (before rotation); larger ones are rejected."""
    max_source_bytes: int = 0
    """Largest source video file accepted, in bytes (0: no limit)."""
    title_timeout_s: float = DEFAULT_TITLE_TIMEOUT_S
    """Streaming: a title version still incomplete this long (processing time) after its
    first part reached a gather becomes a dead letter naming the missing parts, and its
    state is cleared (0: never). Batch ignores it: the input ends, and the state with it."""
    dedup_retention_s: float = DEFAULT_DEDUP_RETENTION_S
    """Streaming: how long a (source, generation) is remembered to drop repeated events
    (0: forever); a repeat after that runs the version again, which reuses its chunks."""
    imf_assetmaps: tuple[str, ...] = ()
    """ASSETMAPs (or package folders) a supplemental IMF package draws track files from."""
    imf_cpl: str = ""
    """The one CPL (its id) to take of each IMF package; '' for one title per CPL."""
    imf_settle_s: float = DEFAULT_IMF_SETTLE_S
    """Streaming: how long an announced `.mxf` or `.xml` object in a folder with no ASSETMAP
    waits for one, after the folder's latest such object (0: never waits; batch never does).
    With an ASSETMAP it is part of that package; else an MXF is a source, an XML dropped."""
    codecs: tuple[str, ...] = ("h264",)
    """The codec ladders of every title ('h264', 'hevc', 'av1'), each planned and gated
    on its own over the one segment grid; ('h264',): one ladder with `--encoder`."""

    hdr: str = "tonemap"
    """What an HDR source (PQ or HLG) gets: 'tonemap' (every ladder SDR BT.709), or 'keep':
    its ladders other than H.264's (HEVC where `codecs` has none) kept HDR, 10-bit
    BT.2020 with its transfer, beside the tone-mapped H.264 ladder (`title_codecs`)."""

    def title_codecs(self, source_hdr: str) -> tuple[str, ...]:
        """The codec ladders of a title whose source has `source_hdr` ('pq', 'hlg' or '').
        `--codecs` but for an HDR source with `--hdr keep` and `--codecs h264`: HEVC too,
        for its HDR ladder."""
        if self.keeps_hdr(source_hdr) and self.codecs == ("h264",):
            return ("h264", "hevc")
        return self.codecs

    def keeps_hdr(self, source_hdr: str) -> bool:
        """Whether a source with `source_hdr` gets HDR ladders (`--hdr keep`)."""
        return bool(source_hdr) and self.hdr == "keep"

    def hdr_codec(self, codec: str, source_hdr: str) -> str:
        """The HDR a `codec` ladder of a title keeps: the source's ('pq', 'hlg') for every
        codec but H.264 with `--hdr keep`, else '' (tone-mapped SDR)."""
        return source_hdr if self.keeps_hdr(source_hdr) and codec != "h264" else ""

    @property
    def multi_codec(self) -> bool:
        """Whether renditions carry their codec's encoder (anything but `--codecs h264`,
        and `--hdr keep`, which may add an HEVC ladder to a title: `title_codecs`)."""
        return self.codecs != ("h264",) or self.hdr == "keep"

    def fingerprint(self) -> str:
        """A digest of the settings that decide a title's output (not where it goes)."""
        import dataclasses
        import hashlib
        import json

        basis = dataclasses.asdict(self)
        if not self.multi_codec:  # the digest of a one-codec job as before --codecs
            basis.pop("codecs")
        if self.hdr == "tonemap":  # the digest of a job as before --hdr
            basis.pop("hdr")
        if self.allocation == "constant":  # the digest of a job as before --allocation
            basis.pop("allocation")
            basis.pop("allocation_max_drop")
        for key in ("output_root", "keep_work", "tool_timeout_s", "title_timeout_s",
                    "dedup_retention_s", "imf_assetmaps", "imf_cpl", "imf_settle_s"):
            basis.pop(key)
        return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def source_limits(self) -> SourceLimits:
        return SourceLimits(self.max_duration_s, self.max_width, self.max_height,
                            self.max_source_bytes)

    @property
    def gates_on(self) -> bool:
        return self.ladder == "per-title" and self.score_vmaf and self.max_attempts > 1

    @property
    def allocates(self) -> bool:
        """Whether chunks are probed and their CRFs allocated (`--allocation optimal`):
        only where a per-title ladder is scored and gated, as the allocation aims each
        chunk at a VMAF its gate then holds."""
        return self.allocation == "optimal" and self.gates_on

    def validate(self) -> JobConfig:
        _check(bool(self.output_root), "--output is required")
        _check(0.5 <= self.segment_s <= 20, f"--segment_seconds {self.segment_s}: use 0.5 to 20")
        _check(1 <= self.chunk_segments <= 100,
               f"--chunk_segments {self.chunk_segments}: use 1 to 100")
        _check(self.segment_grid in ("shots", "even"),
               f"--segment_grid {self.segment_grid!r}: use shots or even")
        _check(0 <= self.min_segment_s <= self.segment_s,
               f"--min_segment_seconds {self.min_segment_s}: use 0 (half a segment) up to "
               f"--segment_seconds ({self.segment_s:g})")
        _check(0 <= self.crf <= 51, f"--crf {self.crf}: x264 takes 0 to 51")
        _check(self.encode.preset in X264_PRESETS,
               f"--preset {self.encode.preset!r}: use one of {', '.join(X264_PRESETS)}")
        from media.encode.encoders import ENCODER_NAMES

        _check(self.encode.decoder in ("auto", "cpu", "nvdec"),
               f"--decoder {self.encode.decoder!r}: use auto, cpu or nvdec")
        _check(self.encode.encoder in ENCODER_NAMES,
               f"--encoder {self.encode.encoder!r}: use one of {', '.join(ENCODER_NAMES)}")
        from media.quality.gpu_vmaf import VMAF_BACKENDS

        _check(self.encode.vmaf_backend in VMAF_BACKENDS,
               f"--vmaf_backend {self.encode.vmaf_backend!r}: use one of "
               f"{', '.join(VMAF_BACKENDS)}")
        _check(self.max_renditions >= 0, "--max_renditions must be 0 or more")
        _check(32 <= self.audio_kbps <= 512, f"--audio_kbps {self.audio_kbps}: use 32 to 512")
        _check(self.tool_timeout_s > 0, "--tool_timeout_s must be positive")
        _check(self.ladder in LADDERS, f"--ladder {self.ladder!r}: use one of {', '.join(LADDERS)}")
        _check(30 <= self.top_vmaf <= 100, f"--top_vmaf {self.top_vmaf}: use 30 to 100")
        _check(self.min_kbps > 0, "--min_kbps must be positive")
        _check(self.max_kbps == 0 or self.max_kbps > self.min_kbps,
               "--max_kbps must be 0 (no cap) or above --min_kbps")
        _check(1.2 <= self.step_ratio <= 4, f"--step_ratio {self.step_ratio}: use 1.2 to 4")
        _check(self.trial_preset in X264_PRESETS, f"--trial_preset {self.trial_preset!r}")
        _check(self.allocation in ("constant", "optimal"),
               f"--allocation {self.allocation!r}: use constant or optimal")
        _check(0 <= self.allocation_max_drop <= 30,
               f"--allocation_max_drop {self.allocation_max_drop}: use 0 to 30")
        _check(self.allocation != "optimal" or self.gates_on,
               "--allocation optimal aims each chunk at a VMAF its quality gate holds: it "
               "needs --ladder per-title, VMAF scored (no --no_vmaf) and --max_attempts 2 "
               "or more")
        _check(len(self.trial_crfs) >= 2 and all(0 <= c <= 51 for c in self.trial_crfs),
               "--trial_crfs needs at least two CRFs in 0..51")
        _check(0 < self.trial_fraction <= 1, "--trial_fraction: use a share in (0, 1]")
        _check(self.trial_vmaf_subsample >= 1, "--trial_vmaf_subsample must be 1 or more")
        _check(self.vmaf_subsample >= 1 and self.vmaf_subsample % 2 == 1,
               f"--vmaf_subsample {self.vmaf_subsample}: use 1 (every frame) or an odd step, "
               "which never locks onto the GOP pattern")
        _check(self.trial_seconds > 0, "--trial_seconds must be positive")
        _check(self.max_attempts >= 1, "--max_attempts must be 1 or more")
        _check(self.gate_below >= 0 and self.gate_above >= 0, "gate tolerances must be >= 0")
        _check(self.max_duration_s > 0, "--max_duration_s must be positive")
        _check(self.max_width >= 1 and self.max_height >= 1,
               "--max_width and --max_height must be 1 or more")
        _check(self.max_source_bytes >= 0, "--max_source_bytes must be 0 (no limit) or more")
        _check(self.title_timeout_s == 0 or self.title_timeout_s >= self.tool_timeout_s,
               f"--title_timeout_s {self.title_timeout_s:g}: use 0 (never) or at least "
               f"--tool_timeout_s ({self.tool_timeout_s:g} s), the longest one FFmpeg "
               "process of the title may run")
        _check(self.dedup_retention_s >= 0, "--dedup_retention_s must be 0 (forever) or more")
        _check(self.imf_settle_s >= 0, "--imf_settle_s must be 0 (never wait) or more")
        from media.encode.encoders import CODECS

        _check(bool(self.codecs) and all(c in CODECS for c in self.codecs)
               and len(set(self.codecs)) == len(self.codecs),
               f"--codecs {','.join(self.codecs)!r}: use a comma-separated list of distinct "
               f"codecs from {', '.join(CODECS)}")
        _check(self.hdr in ("tonemap", "keep"), f"--hdr {self.hdr!r}: use tonemap or keep")
        _check(self.ladder != "apple" or self.hdr == "tonemap",
               "--ladder apple is an H.264 ladder: use it with --hdr tonemap")
        _check(self.ladder != "apple" or not self.multi_codec,
               "--ladder apple is an H.264 ladder: use it with --codecs h264")
        return self


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigurationError(message)
