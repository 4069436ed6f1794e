"""Package and publish: manifests over the written segments, written last.

Input: (title_id, [PackagedTrack]) once every rendition and audio track of the title is
assembled. Writes each media playlist and `report.json`, then the DASH MPD and, last of
all, the HLS multivariant playlist: a title whose manifests exist is complete
(invariant 4). Clears a stale dead-letter record of the title and, unless asked to
keep it, the title's work area.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import apache_beam as beam

from media import dash, hls, naming
from media.report import title_report
from media.report_html import render_report
from media.types import PackagedTrack
from transforms import _storage

__all__ = ["PackageTitles", "PublishedTitle"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishedTitle:
    title_id: str
    master_uri: str
    mpd_uri: str
    renditions: int
    duration_s: float


class _PackageFn(beam.DoFn):
    def __init__(self, output_root: str, keep_work: bool, fingerprint: str):
        self._output_root = output_root
        self._keep_work = keep_work
        self._fingerprint = fingerprint

    def process(self, element):
        title_id, tracks = element
        tracks: list[PackagedTrack] = sorted(tracks, key=lambda t: t.track_position)
        video = [t for t in tracks if t.kind == "video"]
        audio = [t for t in tracks if t.kind == "audio"]
        root = naming.title_root(self._output_root, title_id)
        for track in tracks:
            _storage.write_bytes(naming.join(root, naming.playlist_uri(track.kind, track.track_id)),
                                 hls.media_playlist(track).encode())
        source = video[0].chunks[0].task.source if video and video[0].chunks else None
        plan_uri = naming.plan_record_uri(self._output_root, title_id)
        plan = _storage.read_json(plan_uri) if _storage.exists(plan_uri) else None
        report = title_report(title_id, source, tracks, plan)
        report["job_fingerprint"] = self._fingerprint
        _storage.write_json(naming.join(root, naming.REPORT_JSON), report)
        for path, data in render_report(report).items():
            _storage.write_bytes(naming.join(root, path), data)
        mpd_uri = naming.join(root, naming.DASH_MANIFEST)
        _storage.write_bytes(mpd_uri, dash.mpd(video, audio, title=title_id).encode())
        master_uri = naming.join(root, naming.MASTER_PLAYLIST)
        _storage.write_bytes(master_uri, hls.multivariant_playlist(video, audio).encode())
        _storage.delete(naming.error_record_uri(self._output_root, title_id))
        if not self._keep_work:
            _storage.delete_tree(naming.work_root(self._output_root, title_id))
        duration = float(max(t.duration_s for t in tracks))
        log.info("%s: published %d renditions, %.1f s: %s", title_id, len(video), duration,
                 master_uri)
        yield PublishedTitle(title_id, master_uri, mpd_uri, len(video), duration)


class PackageTitles(beam.PTransform):
    """PCollection[(title_id, [PackagedTrack])] -> PCollection[PublishedTitle]."""

    def __init__(self, output_root: str, keep_work: bool = False, fingerprint: str = ""):
        super().__init__()
        self._output_root = output_root
        self._keep_work = keep_work
        self._fingerprint = fingerprint

    def expand(self, gathered):
        return gathered | "WriteManifests" >> beam.ParDo(
            _PackageFn(self._output_root, self._keep_work, self._fingerprint))
