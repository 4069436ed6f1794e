"""Package and publish: manifests over the written segments, written last.

Input: ((title_id, generation), [PackagedTrack]) once every rendition and audio track of
the title is assembled. Writes each media playlist and `report.json`, then the DASH MPD and, last of
all, the HLS multivariant playlist: a title whose manifests exist is complete
(invariant 4). Clears a stale dead-letter record of the title and, unless asked to
keep it, the title's work area.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from fractions import Fraction

import apache_beam as beam

from media.core import naming
from media.core.types import PackagedTrack
from media.core.versions import is_superseded, published_generation, stale_dirs
from media.package import dash, hls
from media.package.iframes import IFrame, iframe_bandwidth_bps, iframe_playlist, iframe_stream_inf
from media.report.html import render_report
from media.report.title_report import title_report
from transforms import _storage, metrics
from transforms.dead_letter import DEAD_LETTER, dead_letters

__all__ = ["PackageTitles", "PublishedTitle"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishedTitle:
    title_id: str
    master_uri: str
    mpd_uri: str
    renditions: int
    duration_s: float
    source_uri: str = ""
    generation: str = ""
    report_uri: str = ""
    ladder: tuple[dict, ...] = ()
    """Per rendition: id, width, height, bandwidth (b/s, peak and average), VMAF."""


class _PackageFn(beam.DoFn):
    def __init__(self, output_root: str, keep_work: bool, fingerprint: str):
        self._output_root = output_root
        self._keep_work = keep_work
        self._fingerprint = fingerprint

    @dead_letters("package")
    def process(self, element):
        (title_id, generation), tracks = element
        tracks: list[PackagedTrack] = sorted(tracks, key=lambda t: t.track_position)
        video = [t for t in tracks if t.kind == "video"]
        audio = [t for t in tracks if t.kind == "audio"]
        subtitles = [t for t in tracks if t.kind == "subtitles"]
        first = video[0].chunks[0].task if video and video[0].chunks else None
        source = first.source if first else None
        root = naming.title_root(self._output_root, title_id)
        report_uri = naming.join(root, naming.REPORT_JSON)
        previous = _storage.read_json(report_uri) if _storage.exists(report_uri) else None
        work_id = source.work_id if source else title_id
        if is_superseded(published_generation(previous), generation):
            log.warning("%s: generation %s is superseded by the published generation %s; "
                        "not published", title_id, generation, published_generation(previous))
            self._clean(work_id, [naming.join(root, f"g{generation}")])
            return
        for track in tracks:
            _storage.write_bytes(
                naming.join(root, naming.playlist_uri(track.kind, track.track_id, track.media_dir)),
                hls.media_playlist(track).encode())
        plan_uri = naming.plan_record_uri(self._output_root, work_id)
        plan = _storage.read_json(plan_uri) if _storage.exists(plan_uri) else None
        report = title_report(title_id, source, tracks, plan, first.grid if first else None)
        report["job_fingerprint"] = self._fingerprint
        allocation_uri = naming.allocation_record_uri(self._output_root, work_id)
        if _storage.exists(allocation_uri):  # --allocation optimal: each rung's, in short
            report["allocation"] = _storage.read_json(allocation_uri)
        if not report["ladder_invariant"]["holds"]:
            log.warning("%s: the ladder's rungs are not all real steps down (report.json "
                        "ladder_invariant): %s", title_id,
                        "; ".join(report["ladder_invariant"]["violations"]))
        _storage.write_json(report_uri, report)
        for path, data in render_report(report).items():
            _storage.write_bytes(naming.join(root, path), data)
        iframe_lines = [_write_iframe_playlist(root, track) for track in video
                        if track.iframe_ranges]
        mpd_uri = naming.join(root, naming.DASH_MANIFEST)
        _storage.write_bytes(mpd_uri, dash.mpd(video, audio, title=title_id,
                                               subtitles=subtitles).encode())
        master_uri = naming.join(root, naming.MASTER_PLAYLIST)
        _storage.write_bytes(master_uri, hls.multivariant_playlist(
            video, audio, subtitles, iframe_lines).encode())
        # Published: what the previous version used and this one does not can go.
        track_dirs = {naming.track_dir(t.kind, t.track_id, t.media_dir) for t in tracks}
        stale = [naming.join(root, d) for d in stale_dirs(previous, track_dirs)]
        _storage.delete(naming.error_record_uri(self._output_root, title_id))
        _storage.delete_tree(naming.reject_records_dir(self._output_root, title_id))
        self._clean(work_id, stale)
        duration = float(max(t.duration_s for t in tracks))
        version = f" (generation {generation})" if generation else ""
        log.info("%s: published%s %d renditions, %.1f s: %s", title_id, version, len(video),
                 duration, master_uri)
        metrics.TITLES_PUBLISHED.inc()
        yield PublishedTitle(
            title_id, master_uri, mpd_uri, len(video), duration,
            source_uri=source.source_uri if source else "", generation=generation,
            report_uri=report_uri, ladder=tuple(
                {k: entry.get(k) for k in ("id", "width", "height", "peak_bandwidth_bps",
                                           "average_bandwidth_bps", "vmaf")}
                for entry in report.get("ladder", [])))

    def _clean(self, work_id: str, folders: list[str]) -> None:
        for folder in folders:
            _storage.delete_tree(folder)
        if not self._keep_work:
            _storage.delete_tree(naming.work_root(self._output_root, work_id))


def _write_iframe_playlist(root: str, track: PackagedTrack) -> str:
    """Write a video track's I-frame playlist; return its EXT-X-I-FRAME-STREAM-INF line."""
    folder = naming.track_dir(track.kind, track.track_id, track.media_dir)
    iframes = [IFrame(posixpath.relpath(segment.uri, folder), offset, length,
                      Fraction(segment.duration_ticks, track.timescale))
               for segment, (offset, length) in zip(track.segments, track.iframe_ranges,
                                                    strict=True)]
    uri = naming.iframe_playlist_uri(track.kind, track.track_id, track.media_dir)
    text = iframe_playlist(posixpath.relpath(track.init_uri, folder), iframes)
    _storage.write_bytes(naming.join(root, uri), text.encode())
    return iframe_stream_inf(iframe_bandwidth_bps(iframes), track.codecs, track.width,
                             track.height, uri)


class PackageTitles(beam.PTransform):
    """PCollection[((title_id, generation), [PackagedTrack])] -> {'main': PublishedTitle,
    'dead_letter': DeadLetter}."""

    def __init__(self, output_root: str, keep_work: bool = False, fingerprint: str = ""):
        super().__init__()
        self._output_root = output_root
        self._keep_work = keep_work
        self._fingerprint = fingerprint

    def expand(self, gathered):
        return gathered | "WriteManifests" >> beam.ParDo(
            _PackageFn(self._output_root, self._keep_work, self._fingerprint)).with_outputs(
                DEAD_LETTER, main="main")
