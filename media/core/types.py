"""The small, frozen values that flow between the pipeline's stages.

Elements carry URIs, times and numbers, never frames or media bytes. Exact times are
frame counts or ticks of a named timescale (or `Fraction`s of a second), never floats
that drift over a long title.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction


@dataclass(frozen=True)
class IngestEvent:
    """A source announced to the pipeline."""

    source_uri: str
    """Where the source lives: a local path or any Beam FileSystems URI (gs://...)."""
    title_id: str
    """The title's id: safe as one path component ([A-Za-z0-9._-], never '..')."""
    generation: str = ""
    """Version of the source object the event announces (a Cloud Storage object
    generation, or a watched file's modification time in microseconds); '' for sources
    named on the command line. A new generation is a new version of the title."""
    event_id: str = ""
    """Id of the message that announced it (Pub/Sub message id), for the log."""

    @property
    def dedup_key(self) -> str:
        """One key per source version: an event delivered twice has the same one."""
        return f"{self.source_uri}#{self.generation}"


@dataclass(frozen=True)
class AudioStreamInfo:
    """One audio stream of a source, as inspection found it."""

    stream_index: int
    """Index of the stream in the source container."""
    codec: str
    channels: int
    sample_rate_hz: int
    language: str = "und"
    """ISO 639 language from the stream's tags, 'und' when untagged."""
    uri: str = ""
    """The file the stream is in, when not the video source (a title package's audio)."""
    name: str = ""
    """Display name (a title package's "name"); '' lets the player show the language."""


@dataclass(frozen=True)
class SubtitleTrack:
    """One subtitle file of a title (SRT or WebVTT), from its title package."""

    uri: str
    language: str
    name: str = ""
    forced: bool = False


@dataclass(frozen=True)
class SourceInfo:
    """What inspection learned about a decodable source."""

    source_uri: str
    title_id: str
    container: str
    """Container format name as the demuxer reports it (e.g. 'mov,mp4,m4a,3gp,3g2,mj2')."""
    video_codec: str
    width: int
    height: int
    frame_rate: Fraction
    """Frames per second, exact (25, 30000/1001, ...)."""
    frame_count: int
    """Number of video frames the pipeline will deliver (duration × frame rate)."""
    video_start_s: float
    """Presentation time of the first video frame in the source's own timeline."""
    pix_fmt: str
    color_primaries: str = "unknown"
    color_transfer: str = "unknown"
    color_matrix: str = "unknown"
    color_range: str = "unknown"
    audio: tuple[AudioStreamInfo, ...] = ()
    size_bytes: int = 0
    container_start_s: float = 0.0
    """Start of the container's timeline (the earliest stream start); FFmpeg shifts it to 0."""
    generation: str = ""
    """The source version the ingest event announced ('' for command-line sources)."""
    package_uri: str = ""
    """The title package (`*.title.json`) the title came from, '' for a plain video file."""
    subtitles: tuple[SubtitleTrack, ...] = ()
    metadata_json: str = ""
    """The title package's "metadata" object as JSON ('' when none)."""
    coded_width: int = 0
    """Width of the coded frames (`width` is the displayed width: after rotation and
    non-square pixels); 0 when the same."""
    coded_height: int = 0
    interlaced: bool = False
    """Deinterlaced before encoding (`media.encode.conditioning`)."""
    rotation_deg: int = 0
    """Clockwise turn the display matrix asks for (0, 90, 180, 270)."""
    sample_aspect_ratio: Fraction = Fraction(1)
    hdr: str = ""
    """'pq' or 'hlg' for an HDR source (tone-mapped to SDR for the H.264 ladder; kept
    HDR in the other codecs' ladders with `--hdr keep`)."""
    mastering_display: str = ""
    """An HDR10 source's mastering display colour volume, 'G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)'
    in SMPTE ST 2086 units, and ..."""
    content_light: str = ""
    """... its content light level, 'MaxCLL,MaxFALL': read at planning with `--hdr keep`
    (`media.inspect.hdr_metadata`) for its HDR rungs; '' where absent or not read."""
    variable_frame_rate: bool = False
    findings: tuple = ()
    """`media.inspect.Finding`s below fatal: they go into the report."""
    complexity: tuple[int, ...] = ()
    """Bytes of the inspection's complexity analysis encode per run of
    `complexity_bin_frames` frames (`media.inspect.complexity`); empty when not analysed, and once
    the ladder is planned (the plan has used it)."""
    complexity_bin_frames: int = 0
    shot_cuts_s: tuple[float, ...] | None = None
    """Where each shot but the first starts, seconds from the start (inspection's scdet,
    `media.inspect.shots`); None when not looked for. The report lists them."""
    markers: tuple[tuple[str, int, float], ...] = ()
    """(label, frame, seconds) of an IMF composition's markers (FFOC, FFEC, ...): the
    report lists them."""

    @property
    def version_key(self) -> tuple[str, str]:
        """Key of the title's gathers: one per version, so a new generation gathers anew."""
        return self.title_id, self.generation

    @property
    def work_id(self) -> str:
        """The title's work area below `_work/`: one per version, so versions never mix."""
        return f"{self.title_id}/g{self.generation}" if self.generation else self.title_id

    @property
    def media_dir(self) -> str:
        """Folder of this version's tracks below the title root ('' : the root itself).

        A versioned title is published into its own folder and the manifests at the
        title root switch to it last, so a new version never overwrites segments that
        players of the old one are reading."""
        return f"g{self.generation}" if self.generation else ""

    @property
    def duration_s(self) -> Fraction:
        """Duration of the delivered video, exact."""
        return self.frame_count / self.frame_rate


@dataclass(frozen=True)
class Rendition:
    """One rung of a ladder: a resolution and the encoder's rate control for it."""

    rendition_id: str
    """Stable id, a pure function of the rung (e.g. '720p-3000k')."""
    width: int
    height: int
    crf: float
    """x264 constant rate factor (the quality the encoder aims at)."""
    maxrate_kbps: int
    """Cap on the rate (VBV maxrate), kb/s."""
    bufsize_kbit: int
    """VBV buffer size, kbit."""
    target_vmaf: float = 0.0
    """Pooled (mean) VMAF every chunk should reach; 0 means no quality gate."""
    vmaf_per_crf: float = -1.5
    """Slope of VMAF against CRF near `crf` (from the trials): how far a CRF step moves it."""
    target_kbps: int = 0
    """Average-bitrate mode (a fixed-bitrate ladder): aim at this rate instead of a CRF."""
    crf_offsets: tuple[tuple[int, float], ...] = ()
    """(frame, CRF change) at each trial sample of a per-title ladder: how much easier
    (+) or harder (-) to encode the title is there than on average. A chunk's CRF is
    `crf` plus the change at its middle frame (`media.plan.rate_control.chunk_crf`)."""
    encoder: str = ""
    """The encoder of this rung's codec ladder (`media.encode.encoders.codec_encoder`,
    e.g. 'svtav1' or 'auto-av1'); '' for the job's own (`EncodeSettings.encoder`)."""
    hdr: str = ""
    """'pq' or 'hlg': the rung keeps the source's HDR (`--hdr keep`: 10-bit BT.2020, the
    source's transfer, `media.encode.encoders.hdr_options`); '' for SDR (tone-mapped)."""
    calibrated: bool = True
    """Whether the plan's calibration measured the final preset on its sample (its encodes'
    rate followed the CRF), so that `crf` meets the rung's aim there. False where a VBV
    cap or a still picture held the sample's rate: `crf` is the trials' own, read at the
    trial preset (`media.plan.rate_control.calibrate`)."""


@dataclass(frozen=True)
class EncodeSettings:
    """Encoder settings shared by every rendition of a run."""

    preset: str = "medium"
    """x264 preset (mapped onto the other encoders' own presets)."""
    profile: str = "high"
    threads: int = 0
    """Encoder threads per FFmpeg process; 0 lets x264 choose."""
    encoder: str = "x264"
    """`media.encode.encoders` name, or 'auto' (NVENC where a probe encode works, else x264)."""
    decoder: str = "auto"
    """'auto' (NVDEC where a probe decode works, else the CPU), 'cpu' or 'nvdec'."""
    vmaf_backend: str = "auto"
    """How chunks are scored (`media.quality.gpu_vmaf`): 'auto' (vmaf-torch on CUDA where a probe
    score works, else libvmaf), 'libvmaf', or 'torch' (vmaf-torch, on the CPU without a
    GPU). Trial encodes are always scored with libvmaf."""


def even_bounds(start_frame: int, end_frame: int, segment_frames: int) -> list[int]:
    """The first frame of each segment of an even grid from `start_frame`, then
    `end_frame` (the last segment may be shorter).

    >>> even_bounds(100, 250, 60)
    [100, 160, 220, 250]
    """
    return [*range(start_frame, end_frame, segment_frames), end_frame]


@dataclass(frozen=True)
class ChunkSpan:
    """A run of whole segments of the title, on the frame grid shared by every rendition."""

    index: int
    start_frame: int
    frame_count: int
    segment_starts: tuple[int, ...] = ()
    """The first frame of each of its segments, from `start_frame`, where the grid is
    cut at shot changes (`SegmentGrid.starts`); empty where its segments are the grid's
    even ones (every `segment_frames` from `start_frame`)."""
    first_segment: int = 0
    """The title's number of its first segment, 0-based, where `segment_starts` is set."""

    @property
    def end_frame(self) -> int:
        return self.start_frame + self.frame_count

    def segment_bounds(self, segment_frames: int) -> list[int]:
        """The first frame of each of its segments, then its end frame (title frames)."""
        if self.segment_starts:
            return [*self.segment_starts, self.end_frame]
        return even_bounds(self.start_frame, self.end_frame, segment_frames)

    def first_number(self, segment_frames: int) -> int:
        """The title's number of its first segment, 0-based."""
        return self.first_segment if self.segment_starts else self.start_frame // segment_frames


@dataclass(frozen=True)
class SegmentGrid:
    """The title's segment grid, shared by every track: segment k covers frames
    [k * segment_frames, (k + 1) * segment_frames), or, where the grid is cut at shot
    changes, [starts[k], starts[k + 1]). Worked out once, in planning
    (`media.plan.chunking.segment_grid`), and carried by the plan and its tasks.

    >>> SegmentGrid(120, Fraction(30000, 1001), 3).segment_s
    Fraction(1001, 250)
    """

    segment_frames: int
    """Frames per segment, and the most any segment has; every segment starts with an
    IDR frame."""
    frame_rate: Fraction
    """The title's frames per second, exact."""
    chunk_segments: int = 1
    """Whole segments per chunk (the last chunk may have fewer)."""
    timescale: int = 90000
    """Ticks per second of the video tracks: 90 kHz is exact for every common frame rate,
    30000/1001 and 24000/1001 included."""
    starts: tuple[int, ...] | None = ()
    """The first frame of every segment where the grid is cut at shot changes
    (`media.plan.chunking.shot_aligned_starts`); empty where it is even. None where a
    task does without it (`lean`): its chunk carries its own segments."""
    chunk_starts: tuple[int, ...] = ()
    """Where the grid is cut at shot changes: the number (0-based) of each chunk's first
    segment, a chunk ending early on a cut (`media.plan.chunking.shot_chunk_starts`);
    empty: every `chunk_segments`."""

    @property
    def segment_s(self) -> Fraction:
        """The longest segment's duration, exact (4.004 s for 120 frames at 29.97 fps)."""
        return Fraction(self.segment_frames) / self.frame_rate

    @property
    def chunk_frames(self) -> int:
        """Frames per chunk of an even grid (the last may have fewer)."""
        return self.segment_frames * self.chunk_segments

    @property
    def shot_aligned(self) -> bool:
        return self.starts is None or bool(self.starts)

    def segment_bounds(self, frame_count: int) -> list[int]:
        """The first frame of each of the title's segments, then `frame_count`."""
        if self.starts is None:
            raise ValueError("this task's grid was sent without its segment starts")
        if self.starts:
            return [*self.starts, frame_count]
        return even_bounds(0, frame_count, self.segment_frames)

    def segment_starts_s(self, frame_count: int) -> list[Fraction]:
        """The start of each of the title's segments, in seconds, exact."""
        return [Fraction(start) / self.frame_rate
                for start in self.segment_bounds(frame_count)[:-1]]

    def lean(self) -> SegmentGrid:
        """The grid without its list of starts (for tasks whose chunk carries its own)."""
        return replace(self, starts=None, chunk_starts=()) if self.starts else self


@dataclass(frozen=True)
class ChunkTask:
    """The unit of parallel work: encode (and score) one chunk for one rendition."""

    source: SourceInfo
    rendition: Rendition
    chunk: ChunkSpan
    chunk_count: int
    """How many chunks the title has (what the gather waits for)."""
    grid: SegmentGrid
    """The title's segment grid (every segment starts with an IDR frame)."""
    output_root: str
    settings: EncodeSettings = field(default_factory=EncodeSettings)
    score_vmaf: bool = True
    vmaf_height: int = 1080
    """Height at which VMAF is computed: min(1080, source height)."""
    track_position: int = 0
    """Position of the rendition among the title's tracks (video first, then audio)."""
    track_count: int = 1
    """How many tracks (renditions and audio tracks) the title will have."""
    rendition_count: int = 1
    """How many video renditions the title will have."""
    max_attempts: int = 1
    """Encodes allowed for the quality gate (1: no gate)."""
    gate_below: float = 1.0
    """The gate re-encodes a chunk whose VMAF is under target - gate_below ..."""
    gate_above: float = 2.0
    """... or over target + gate_above (bits wasted)."""
    vmaf_subsample: int = 1
    """Score every n-th frame of the chunk (1: every frame; odd n, libvmaf's n_subsample)."""
    allocated_crf: float | None = None
    """The CRF an allocation chose for this chunk (`--allocation optimal`); None: the
    rendition's own, changed by its `crf_offsets` (`media.plan.rate_control.chunk_crf`)."""
    gate_vmaf: float = 0.0
    """The VMAF this chunk's gate holds it to where an allocation aimed it there (0: the
    rendition's `target_vmaf`)."""
    gate_floor: float = 0.0
    """The 5th-percentile VMAF under which the gate does not keep an encode of this chunk
    where another is over it (an allocation's floor; 0: none)."""

    @property
    def title_id(self) -> str:
        return self.source.title_id

    @property
    def segment_frames(self) -> int:
        return self.grid.segment_frames

    @property
    def gate_target(self) -> float:
        """The VMAF the quality gate holds this chunk to (0: no gate target)."""
        return self.gate_vmaf or self.rendition.target_vmaf


@dataclass(frozen=True)
class AudioTask:
    """Encode one span of an audio stream of a title (whole segments of the title's grid)
    to AAC-LC stereo segments, reading only that span's packets of the source."""

    source: SourceInfo
    stream: AudioStreamInfo
    track_id: str
    output_root: str
    grid: SegmentGrid
    """The title's segment grid, which the audio segments follow."""
    bitrate_kbps: int = 128
    track_position: int = 0
    track_count: int = 1
    span_index: int = 0
    span_count: int = 1
    """How many spans the track has (what its gather waits for)."""
    first_segment: int = 0
    """The span's audio segments: [first_segment, end_segment) of the track (0-based)."""
    end_segment: int = 0
    start_frame: int = 0
    """The span's AAC frames (1024 samples at 48 kHz) on the track: [start_frame, end_frame)."""
    end_frame: int = 0
    segment_starts: tuple[int, ...] = ()
    """The first AAC frame of each of the span's segments where the video's grid is cut
    at shot changes (`media.encode.audio_spans.AudioSpan.segment_starts`)."""

    @property
    def title_id(self) -> str:
        return self.source.title_id


@dataclass(frozen=True)
class SubtitleTask:
    """Convert one subtitle file to WebVTT and segment it on the title's grid."""

    source: SourceInfo
    track: SubtitleTrack
    track_id: str
    output_root: str
    grid: SegmentGrid
    """The title's segment grid, which the subtitle segments follow."""
    track_position: int = 0
    track_count: int = 1

    @property
    def title_id(self) -> str:
        return self.source.title_id


@dataclass(frozen=True)
class VmafScore:
    """Pooled VMAF over the frames of one chunk."""

    mean: float
    harmonic_mean: float
    p5: float
    """5th percentile of per-frame scores."""
    minimum: float
    frame_count: int


@dataclass(frozen=True)
class Attempt:
    """One encode of a chunk: the CRF used and what it gave."""

    crf: float
    kbps: float
    vmaf: float | None
    p5: float | None = None
    """Its 5th-percentile frame VMAF, where a floor was held to it (`ChunkTask.gate_floor`)."""


@dataclass(frozen=True)
class TrialTask:
    """Trial-encode one sample segment of a title at several resolutions, at every trial
    CRF: one decode of the sample serves them all."""

    source: SourceInfo
    sizes: tuple[tuple[int, int], ...]
    """(width, height) of each resolution trialled, tallest first."""
    crfs: tuple[float, ...]
    span: ChunkSpan
    """The sample: one segment of the title's grid."""
    trial_index: int
    """Index of this task's first result among the title's trial results (its results
    are numbered size by size, CRF by CRF)."""
    trial_count: int
    """How many trial results (samples × sizes × CRFs) the title has."""
    grid: SegmentGrid
    """The title's segment grid (a final encode's GOP is one segment)."""
    output_root: str
    settings: EncodeSettings = field(default_factory=EncodeSettings)
    vmaf_height: int = 1080
    vmaf_subsample: int = 1
    """Score every n-th frame (odd n keeps sampling from locking onto a GOP pattern)."""
    codec: str = ""
    """The codec ladder these trials plan ('h264', 'hevc', 'av1'); '' for the job's one
    ladder (`--codecs h264`, encoded with `--encoder`)."""
    hdr: str = ""
    """'pq' or 'hlg' where these trials plan an HDR ladder (`Rendition.hdr`)."""

    @property
    def title_id(self) -> str:
        return self.source.title_id

    @property
    def segment_frames(self) -> int:
        return self.grid.segment_frames


@dataclass(frozen=True)
class TrialResult:
    """What one trial encode (one size and CRF of a trial task) gave."""

    task: TrialTask
    width: int
    height: int
    crf: float
    index: int
    """Position among the title's trial results."""
    size_bytes: int
    frames: int
    vmaf_mean: float
    encode_s: float = 0.0
    score_s: float = 0.0
    keyframe_bytes: int = 0
    """Bytes of the trial's one keyframe, its first frame (0: not measured)."""
    cpu_s: float = 0.0
    """CPU seconds (user + system) of its share of the encode and score processes."""
    vmaf_sd: float | None = None
    """Spread (standard deviation) of its frame scores (None: not measured)."""

    @property
    def title_id(self) -> str:
        return self.task.title_id


@dataclass(frozen=True)
class TitlePlan:
    """A title with the ladder planned for it, ready to split into tasks."""

    source: SourceInfo
    renditions: tuple[Rendition, ...]
    mode: str
    """'per-title', 'fixed' or 'apple'."""
    grid: SegmentGrid
    """The segment grid every track of the title follows."""
    trial_cost_s: float = 0.0
    """Wall seconds the trial encodes and their scoring took, summed."""
    scored_frames: int = 0
    """Frames each final chunk needs scored (`media.quality.vmaf.scored_frames_needed`; 0: the
    default, `media.quality.vmaf.MIN_SCORED_FRAMES`)."""


@dataclass(frozen=True)
class ChunkGroup:
    """The tasks of every rendition of one chunk of a title, tallest first: encoded in one
    FFmpeg process that decodes the chunk once (then scored, and gated, one by one)."""

    tasks: tuple[ChunkTask, ...]

    @property
    def title_id(self) -> str:
        return self.tasks[0].title_id


@dataclass(frozen=True)
class ChunkResult:
    """An encoded chunk, with its measurements and its final CMAF media segments, which
    the chunk's encode wrote under their published names: a slim record (what the
    rendition's gather, assembly, the report and progress read), its size independent
    of the title's length. Only the first chunk (index 0) carries its whole `task`, for
    the track's rendition and the title's source."""

    title_id: str
    rendition_id: str
    index: int
    chunk_count: int
    chunk_uri: str
    """The chunk's own init segment, in the work area (its media segments are published)."""
    frame_count: int
    size_bytes: int
    duration_s: Fraction
    vmaf: VmafScore | None = None
    vmaf_log_uri: str = ""
    encode_s: float = 0.0
    """Wall seconds the encode took (for a reused chunk: as the run that encoded it recorded)."""
    score_s: float = 0.0
    reused: bool = False
    """True when a finished chunk from an earlier run was reused."""
    task: ChunkTask | None = None
    """The task this chunk answers, on the first chunk (index 0) only: the rendition and
    the title's source, once per track (`slim_result` drops it from the others)."""
    attempts: tuple[Attempt, ...] = ()
    """Every encode of the chunk, in order."""
    kept: int = -1
    """Index in `attempts` of the encode that was kept."""
    encoder: str = "x264"
    """The encoder that made it (`auto` resolved on the worker)."""
    retries: tuple[str, ...] = ()
    """Why each try before the one that made it failed (transient faults), in order."""
    encode_cpu_s: float = 0.0
    """CPU seconds (user + system) of the encodes, every try (0 in records before them)."""
    score_cpu_s: float = 0.0
    """CPU seconds of their scoring."""
    generation: str = ""
    """The title version (`SourceInfo.generation`): with `title_id`, the gathers' key."""
    start_frame: int = 0
    """The chunk's first frame on the title's grid."""
    rendition_count: int = 1
    """How many video renditions the title has (progress counts chunks × renditions)."""
    target_vmaf: float = 0.0
    """The rendition's target VMAF (0: no quality gate), and the gate's window below ..."""
    gate_below: float = 1.0
    gate_above: float = 2.0
    """... and above it."""
    segments: tuple[Segment, ...] = ()
    """The chunk's CMAF media segments as written (numbered and timed in the track)."""
    iframe_ranges: tuple[tuple[int, int], ...] = ()
    """(offset, length) of each segment's IDR frame in its file (I-frame playlist)."""
    init_key: str = ""
    """`media.package.cmaf.sample_entry_key` of the chunk's init segment: the chunks of
    a rendition must share it to play from one init segment."""

    @property
    def bitrate_kbps(self) -> float:
        return float(self.size_bytes * 8 / self.duration_s / 1000) if self.duration_s else 0.0


@dataclass(frozen=True)
class Segment:
    """One CMAF media segment as written."""

    number: int
    """1-based position in its track."""
    uri: str
    """Path relative to the title root (e.g. 'video/720p-3000k/seg-00001.m4s')."""
    start_ticks: int
    """baseMediaDecodeTime of the segment, in the track's timescale."""
    duration_ticks: int
    size_bytes: int
    sync_first: bool = True
    """Its first sample is a sync sample (an IDR frame for video), as read where it was
    cut: what assembly checks from the records."""


@dataclass(frozen=True)
class PackagedTrack:
    """One assembled CMAF track (a video rendition or an audio track), ready to list."""

    kind: str
    """'video' or 'audio'."""
    track_id: str
    codecs: str
    """RFC 6381 codecs string (e.g. 'avc1.64001f', 'mp4a.40.2')."""
    timescale: int
    init_uri: str
    """Init segment path, relative to the title root."""
    segments: tuple[Segment, ...]
    width: int = 0
    height: int = 0
    frame_rate: Fraction | None = None
    language: str = "und"
    name: str = ""
    channels: int = 0
    sample_rate_hz: int = 0
    chunks: tuple[ChunkResult, ...] = ()
    """The chunks the track was assembled from (video only), for the report."""
    rendition: Rendition | None = None
    track_position: int = 0
    track_count: int = 1
    media_dir: str = ""
    """Version folder of the track below the title root (`SourceInfo.media_dir`)."""
    forced: bool = False
    """Subtitles: forced (shown with no subtitles chosen, for foreign dialogue)."""
    sidecar_uri: str = ""
    """Subtitles: the whole WebVTT file (relative to the title root), which DASH lists."""
    iframe_ranges: tuple[tuple[int, int], ...] = ()
    """Video: (offset, length) of each segment's IDR frame in its file (I-frame playlist)."""

    @property
    def duration_s(self) -> Fraction:
        return Fraction(sum(s.duration_ticks for s in self.segments), self.timescale)


@dataclass(frozen=True)
class DeadLetter:
    """A title that will not be published, and what the user can do about it."""

    title_id: str
    source_uri: str
    stage: str
    error: str
    hint: str
    generation: str = ""
    """The source version it concerns ('' when unversioned)."""
    traceback: str = ""
    """Where an unexpected error (a bug, not a fault of the source) was raised: the last
    frame of its traceback; '' for the errors the stages expect."""
