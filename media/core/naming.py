"""Output naming: every name is a pure function of (title, track, index).

No uuids, no clocks: a retried bundle rewrites the same object, and a re-run finds the
chunks an earlier run finished. Names that come from input are sanitised so that they
stay one path component under the output root.
"""

from __future__ import annotations

import hashlib
import posixpath
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_VIDEO_SUFFIXES = re.compile(r"\.[A-Za-z0-9]{1,5}$")
_PACKAGE_SUFFIX = re.compile(r"\.title\.json$", re.IGNORECASE)
"""A title package (`media.ingest.title_package`): NAME.title.json is title NAME."""
MAX_TITLE_ID_LENGTH = 100

SEGMENT_PATTERN = "seg-{index:05d}.m4s"
"""Media segment file name; DASH's `$Number%05d$` names the same files."""
INIT_NAME = "init.mp4"
PLAYLIST_NAME = "playlist.m3u8"
IFRAME_PLAYLIST_NAME = "iframes.m3u8"
MASTER_PLAYLIST = "master.m3u8"
DASH_MANIFEST = "manifest.mpd"
REPORT_JSON = "report.json"
ERRORS_DIR = "_errors"
WORK_DIR = "_work"


def sanitize_title_id(name: str) -> str:
    """A title id from any string: only [A-Za-z0-9._-], never '.', '..' or empty.

    >>> sanitize_title_id("My Film (2024).mov")
    'My_Film_2024_.mov'
    """
    cleaned = _UNSAFE.sub("_", name).strip("._-")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)[:MAX_TITLE_ID_LENGTH].strip("._-")
    return cleaned or "untitled"


def title_id_for(source_uri: str) -> str:
    """The title id of a source: its file name without the extension, sanitised.

    >>> title_id_for("gs://bucket/in/My Film.final.mp4")
    'My_Film.final'
    """
    base = posixpath.basename(source_uri.rstrip("/").replace("\\", "/"))
    stem = _PACKAGE_SUFFIX.sub("", base) if _PACKAGE_SUFFIX.search(base) else (
        _VIDEO_SUFFIXES.sub("", base) or base)
    return sanitize_title_id(stem)


def join(root: str, *parts: str) -> str:
    """Join a storage root (local path or scheme://bucket/prefix) with relative parts."""
    for part in parts:
        if part.startswith("/") or ".." in part.split("/"):
            raise ValueError(f"refusing to join a path that leaves its root: {part!r}")
    return "/".join([root.rstrip("/"), *[p.strip("/") for p in parts if p]])


def title_root(output_root: str, title_id: str) -> str:
    return join(output_root, title_id)


def track_dir(kind: str, track_id: str, media_dir: str = "") -> str:
    """Folder of a track relative to the title root, e.g. 'video/720p-3000k', or
    'g1700000000000000/video/720p-3000k' for a versioned title."""
    return f"{media_dir}/{kind}/{track_id}" if media_dir else f"{kind}/{track_id}"


def segment_name(number: int) -> str:
    return SEGMENT_PATTERN.format(index=number)


def segment_uri(kind: str, track_id: str, number: int, media_dir: str = "") -> str:
    """Media segment path relative to the title root."""
    return f"{track_dir(kind, track_id, media_dir)}/{segment_name(number)}"


def init_uri(kind: str, track_id: str, media_dir: str = "") -> str:
    return f"{track_dir(kind, track_id, media_dir)}/{INIT_NAME}"


def playlist_uri(kind: str, track_id: str, media_dir: str = "") -> str:
    return f"{track_dir(kind, track_id, media_dir)}/{PLAYLIST_NAME}"


def iframe_playlist_uri(kind: str, track_id: str, media_dir: str = "") -> str:
    """The HLS I-frame playlist of a video track (byte ranges into its segments)."""
    return f"{track_dir(kind, track_id, media_dir)}/{IFRAME_PLAYLIST_NAME}"


SUBTITLE_SEGMENT_PATTERN = "seg-{index:05d}.vtt"
SUBTITLE_SIDECAR = "subtitles.vtt"


def subtitle_segment_uri(track_id: str, number: int, media_dir: str = "") -> str:
    """A segmented WebVTT file (HLS), relative to the title root."""
    return f"{track_dir('subtitles', track_id, media_dir)}/" + SUBTITLE_SEGMENT_PATTERN.format(
        index=number)


def subtitle_sidecar_uri(track_id: str, media_dir: str = "") -> str:
    """The whole WebVTT file of a subtitle track (DASH), relative to the title root."""
    return f"{track_dir('subtitles', track_id, media_dir)}/{SUBTITLE_SIDECAR}"


def subtitle_track_id(language: str, position: int) -> str:
    """Id of a subtitle track, e.g. 'vtt-eng-0'."""
    return f"vtt-{sanitize_title_id(language)}-{position}"


def rendition_id(height: int, maxrate_kbps: int) -> str:
    """Id of a ladder rung, e.g. '720p-3000k'."""
    return f"{height}p-{maxrate_kbps}k"


def audio_track_id(language: str, position: int) -> str:
    """Id of an audio track, e.g. 'aac-eng-0'."""
    return f"aac-{sanitize_title_id(language)}-{position}"


def chunk_uri(output_root: str, title_id: str, rendition: str, index: int) -> str:
    """Where an encoded chunk is kept until its rendition is assembled."""
    return join(output_root, WORK_DIR, title_id, "chunks", rendition, f"chunk-{index:05d}.mp4")


def chunk_record_uri(output_root: str, title_id: str, rendition: str, index: int) -> str:
    """The JSON record written after a chunk is finished (what a re-run reuses)."""
    return join(output_root, WORK_DIR, title_id, "chunks", rendition, f"chunk-{index:05d}.json")


def work_root(output_root: str, title_id: str) -> str:
    return join(output_root, WORK_DIR, title_id)


def vmaf_log_uri(rendition: str, index: int, media_dir: str = "") -> str:
    """libvmaf's per-frame JSON log of a chunk, relative to the title root."""
    return join(media_dir, f"vmaf/{rendition}/chunk-{index:05d}.json") if media_dir else (
        f"vmaf/{rendition}/chunk-{index:05d}.json")


def error_record_uri(output_root: str, title_id: str) -> str:
    """Dead-letter record of a title that was not published."""
    return join(output_root, ERRORS_DIR, f"{title_id}.json")


def reject_record_uri(output_root: str, title_id: str, stage: str, generation: str = "") -> str:
    """One reject of a title, by the stage and what failed in it (`stage` names both:
    'encode (360p-700k, chunk 4)'), beside the title's dead-letter record.

    >>> reject_record_uri("out", "film", "encode (360p-700k, chunk 4)")
    'out/_errors/film/encode-360p-700k-chunk-4-9b56ba32.json'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", stage.lower()).strip("-")[:80] or "reject"
    digest = hashlib.sha1(f"{stage}\n{generation}".encode()).hexdigest()[:8]
    return join(reject_records_dir(output_root, title_id), f"{slug}-{digest}.json")


def reject_records_dir(output_root: str, title_id: str) -> str:
    """Where a title's rejects are kept, one record each (`reject_record_uri`)."""
    return join(output_root, ERRORS_DIR, title_id)


def trial_record_uri(output_root: str, title_id: str, segment: int) -> str:
    """The JSON record of one finished trial task, one sample segment (reused by a re-run)."""
    name = f"seg{segment:05d}.json"
    return join(output_root, WORK_DIR, title_id, "trials", name)


def probe_record_uri(output_root: str, title_id: str, chunk_index: int) -> str:
    """The probes of one chunk (`--allocation optimal`, reused by a re-run)."""
    return join(output_root, WORK_DIR, title_id, "probes", f"chunk-{chunk_index:05d}.json")


def allocation_record_uri(output_root: str, title_id: str) -> str:
    """The rungs' allocations of a title (`--allocation optimal`), for its report."""
    return join(output_root, WORK_DIR, title_id, "allocation.json")


def plan_record_uri(output_root: str, title_id: str) -> str:
    """The per-title plan: trial points, hull and rungs (read by the report)."""
    return join(output_root, WORK_DIR, title_id, "plan.json")
