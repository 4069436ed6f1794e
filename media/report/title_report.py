"""The title report (report.json): the ladder, and per chunk its bitrate and VMAF."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from media.core import naming
from media.core.types import ChunkResult, PackagedTrack, Rendition, SegmentGrid, SourceInfo
from media.package import bandwidth
from media.plan.chunking import grid_summary, title_cuts_s
from media.plan.invariant import LadderRung, ladder_invariant
from media.plan.rate_control import held_by_cap


def _chunk_entry(chunk: ChunkResult, rendition: Rendition | None) -> dict:
    entry = {
        "index": chunk.index,
        "start_s": round(float(chunk.start_frame * chunk.duration_s / chunk.frame_count), 6)
        if chunk.frame_count else None,
        "duration_s": round(float(chunk.duration_s), 6),
        "frames": chunk.frame_count,
        "size_bytes": chunk.size_bytes,
        "bitrate_kbps": round(chunk.bitrate_kbps, 1),
        "encode_s": round(chunk.encode_s, 3),
        "score_s": round(chunk.score_s, 3),
        "encode_cpu_s": round(chunk.encode_cpu_s, 3),
        "score_cpu_s": round(chunk.score_cpu_s, 3),
        "reused": chunk.reused,
        "crf": chunk.attempts[chunk.kept].crf if chunk.attempts else None,
        "attempts": [dataclasses.asdict(a) for a in chunk.attempts],
        "retries": list(chunk.retries),
        "vmaf": None,
    }
    if chunk.vmaf:
        entry["vmaf"] = {k: round(v, 3) if isinstance(v, float) else v
                         for k, v in dataclasses.asdict(chunk.vmaf).items()}
        entry["vmaf_log"] = chunk.vmaf_log_uri
    if chunk.target_vmaf and chunk.vmaf:
        target = chunk.target_vmaf
        entry["target_vmaf"] = target
        entry["met_target"] = chunk.vmaf.mean >= target - chunk.gate_below
        entry["within_gate"] = (target - chunk.gate_below <= chunk.vmaf.mean
                                <= target + chunk.gate_above)
        if not entry["met_target"] and chunk.attempts and rendition:
            # Why: the rung's VBV cap held this chunk, so no CRF could reach the target.
            entry["held_by_cap"] = held_by_cap(rendition, chunk.attempts[chunk.kept])
    return entry


def _pooled_vmaf(chunks: Sequence[ChunkResult]) -> dict | None:
    scored = [c for c in chunks if c.vmaf]
    if not scored:
        return None
    frames = sum(c.vmaf.frame_count for c in scored)
    return {
        "mean": round(sum(c.vmaf.mean * c.vmaf.frame_count for c in scored) / frames, 3),
        "worst_chunk_p5": round(min(c.vmaf.p5 for c in scored), 3),
        "minimum": round(min(c.vmaf.minimum for c in scored), 3),
    }


def _track_entry(track: PackagedTrack) -> dict:
    entry = {
        "kind": track.kind,
        "id": track.track_id,
        "codecs": track.codecs,
        "playlist": naming.playlist_uri(track.kind, track.track_id, track.media_dir),
        "init": track.init_uri,
        "segments": len(track.segments),
        "duration_s": round(float(track.duration_s), 6),
        "peak_bandwidth_bps": bandwidth.track_peak_bandwidth_bps(track),
        "average_bandwidth_bps": bandwidth.track_average_bandwidth_bps(track),
    }
    if track.kind != "video":
        entry.update(language=track.language, name=track.name)
    if track.kind == "subtitles":
        entry.update(forced=track.forced, sidecar=track.sidecar_uri)
    if track.kind == "video":
        entry.update(width=track.width, height=track.height,
                     frame_rate=str(track.frame_rate))
        if track.iframe_ranges:
            entry["iframe_playlist"] = naming.iframe_playlist_uri(
                track.kind, track.track_id, track.media_dir)
        if track.rendition:
            entry["rate_control"] = {"crf": track.rendition.crf,
                                     "maxrate_kbps": track.rendition.maxrate_kbps,
                                     "bufsize_kbit": track.rendition.bufsize_kbit}
            entry["target_vmaf"] = track.rendition.target_vmaf or None
        entry["chunks_missing_target"] = sum(
            1 for c in track.chunks if c.target_vmaf and c.vmaf
            and c.vmaf.mean < c.target_vmaf - c.gate_below)
        entry["vmaf"] = _pooled_vmaf(track.chunks)
        entry["chunks"] = [_chunk_entry(c, track.rendition) for c in track.chunks]
    else:
        entry.update(language=track.language, channels=track.channels,
                     sample_rate_hz=track.sample_rate_hz)
    return entry


def measured_invariant(ladder: Sequence[dict]) -> dict:
    """The ladder invariant (`media.plan.invariant`) on a report's ladder as measured:
    each rung's average bandwidth from its written segments and its mean VMAF, in the
    ladder's order (top first)."""
    return ladder_invariant([
        LadderRung(str(rung["id"]), (rung.get("average_bandwidth_bps") or 0) / 1000,
                   (rung.get("vmaf") or {}).get("mean")) for rung in ladder])


CODEC_FAMILIES = {"avc1": "h264", "avc3": "h264", "hvc1": "hevc", "hev1": "hevc",
                  "av01": "av1"}


def video_codec(codecs: str) -> str:
    """'h264', 'hevc' or 'av1' from a video track's RFC 6381 CODECS string."""
    entry = codecs.split(".", 1)[0]
    return CODEC_FAMILIES.get(entry, entry)


def codec_ladders(ladder: Sequence[dict], video: Sequence[PackagedTrack]) -> dict:
    """The report's ladder split by codec, in the order the title lists them: each
    codec's renditions, the encoders that made them and its own measured invariant."""
    out: dict[str, dict] = {}
    for rung, track in zip(ladder, video, strict=True):
        entry = out.setdefault(video_codec(track.codecs),
                               {"renditions": [], "encoders": [], "ladder": []})
        entry["renditions"].append(track.track_id)
        entry["ladder"].append(rung)
        for encoder in sorted({c.encoder for c in track.chunks}):
            if encoder not in entry["encoders"]:
                entry["encoders"].append(encoder)
    for entry in out.values():
        entry["ladder_invariant"] = measured_invariant(entry.pop("ladder"))
    return out


def title_report(title_id: str, source: SourceInfo | None,
                 tracks: Sequence[PackagedTrack], plan: dict | None = None,
                 grid: SegmentGrid | None = None) -> dict:
    """A JSON-ready report of a published title (with the ladder plan when there is one,
    and its segment grid: `media.plan.chunking.grid_summary`)."""
    report = {
        "title_id": title_id,
        "manifests": {"hls": naming.MASTER_PLAYLIST, "dash": naming.DASH_MANIFEST},
        "source": None,
        "plan": plan or {"mode": "fixed"},
        "ladder": [
            {"id": t.track_id, "width": t.width, "height": t.height,
             "maxrate_kbps": t.rendition.maxrate_kbps if t.rendition else None,
             "crf": t.rendition.crf if t.rendition else None,
             "target_vmaf": (t.rendition.target_vmaf or None) if t.rendition else None,
             "peak_bandwidth_bps": bandwidth.track_peak_bandwidth_bps(t),
             "average_bandwidth_bps": bandwidth.track_average_bandwidth_bps(t),
             "vmaf": _pooled_vmaf(t.chunks)}
            for t in tracks if t.kind == "video"
        ],
        "tracks": [_track_entry(t) for t in tracks],
    }
    report["ladder_invariant"] = measured_invariant(report["ladder"])
    video = [t for t in tracks if t.kind == "video"]
    families = {video_codec(t.codecs) for t in video}
    if len(families) > 1:  # codec ladders: each its own ladder, its own invariant
        report["codecs"] = codec_ladders(report["ladder"], video)
        report["ladder_invariant"] = {
            **report["ladder_invariant"],
            "holds": all(c["ladder_invariant"]["holds"] for c in report["codecs"].values()),
            "violations": [f"{codec}: {v}" for codec, c in report["codecs"].items()
                           for v in c["ladder_invariant"]["violations"]]}
    if source:
        data = dataclasses.asdict(source)
        data["frame_rate"] = str(source.frame_rate)
        data["sample_aspect_ratio"] = str(source.sample_aspect_ratio)
        report["inspection"] = data.pop("findings")
        # the complexity measured for planning: per segment in the plan, not per second here
        data.pop("complexity")
        data.pop("complexity_bin_frames")
        cuts = data.pop("shot_cuts_s")
        if cuts is not None:  # the shot changes inspection found, on the title's timeline
            report["shots"] = {"cuts_s": list(cuts), "count": len(cuts)}
        if grid is not None and grid.starts is not None:
            report["grid"] = grid_summary(grid, source.frame_count,
                                          title_cuts_s(source, cuts))
        data["duration_s"] = round(float(source.duration_s), 6)
        report["source"] = data
        if source.markers:  # an IMF composition's markers (FFOC, FFEC, ...), for players
            report["markers"] = [{"label": label, "frame": frame, "seconds": seconds}
                                 for label, frame, seconds in source.markers]
    return report
