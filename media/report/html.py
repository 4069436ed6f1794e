"""The title report for people: report.html and its charts, beside report.json.

`render_report(report)` takes the dict that media/report/title_report.py builds and
returns the files to write under the title root, by path relative to it:

    report.html               source, ladder, plan, per-rendition charts and chunk tables,
                              and a player of master.m3u8 with a rendition picker
    report/hull.svg           per-title plans only: trials, convex hull and chosen rungs
    report/<rendition>.svg    VMAF and bitrate of each chunk over time
    report/hls.min.js         the vendored hls.js (media/report/assets/README.md)

The page is self-contained: inline CSS and script, relative URLs only, so it works from a
bucket, a CDN or a laptop with no network. Every string from the report is escaped (a
title id is user input), and the same report always renders the same bytes.
"""

from __future__ import annotations

import importlib.resources
import math
import posixpath
from collections.abc import Sequence

from media.core import naming
from media.report import svg
from media.report.svg import Axis, Panel, Series, esc

__all__ = ["HLS_JS", "HULL_SVG", "REPORT_HTML", "chart_paths", "hull_svg", "render_report",
           "rendition_svg"]

REPORT_HTML = "report.html"
REPORT_DIR = "report"
HULL_SVG = f"{REPORT_DIR}/hull.svg"
HLS_JS = f"{REPORT_DIR}/hls.min.js"
_RESERVED = {"hull", "hls.min"}
"""Chart names that would overwrite the report's other files."""
_TARGET_COLOUR = "#e15759"
_RETRY_COLOUR = "#f28e2b"
_RUNG_COLOUR = "#111111"
_DASH = "6 4"
_CHUNK_TABLE_OPEN_UP_TO = 30
"""Longer chunk tables start folded, so a two-hour title's page stays readable."""


def render_report(report: dict) -> dict[str, bytes]:
    """The files of the HTML report of `report` (a report.json dict), by relative path."""
    tracks = _video_tracks(report)
    charts = chart_paths([t["id"] for t in tracks])
    files: dict[str, bytes] = {}
    plan = report.get("plan") or {}
    if _has_hull(plan):
        files[HULL_SVG] = hull_svg(plan).encode()
    for track in tracks:
        files[charts[track["id"]]] = rendition_svg(track).encode()
    files[HLS_JS] = (
        importlib.resources.files("media.report.assets").joinpath("hls.min.js").read_bytes()
    )
    files[REPORT_HTML] = _page(report, tracks, charts, _has_hull(plan)).encode()
    return files


def chart_paths(track_ids: Sequence[str]) -> dict[str, str]:
    """`report/<id>.svg` per rendition id, made safe as one file name and unique."""
    paths: dict[str, str] = {}
    used = set(_RESERVED)
    for track_id in track_ids:
        stem = base = naming.sanitize_title_id(str(track_id))
        n = 1
        while stem in used:
            n += 1
            stem = f"{base}-{n}"
        used.add(stem)
        paths[track_id] = f"{REPORT_DIR}/{stem}.svg"
    return paths


def _video_tracks(report: dict) -> list[dict]:
    return [t for t in report.get("tracks") or [] if t.get("kind") == "video"]


def _has_hull(plan: dict) -> bool:
    return plan.get("mode") == "per-title" and bool(plan.get("points"))


# --- charts -------------------------------------------------------------------------

def hull_svg(plan: dict) -> str:
    """Trial points and curves per height, the convex hull, and the chosen rungs."""
    points, hull, rungs = plan["points"], plan.get("hull") or [], plan.get("rungs") or []
    heights = sorted({p["height"] for p in points})
    series = [Series("convex hull", _xy(hull, "kbps", "vmaf"), "#333333", role="hull",
                     markers=False, line_width=5)]
    for i, height in enumerate(heights):
        trials = [p for p in points if p["height"] == height]
        series.append(Series(f"{height}p trials", _xy(trials, "kbps", "vmaf"), svg.colour(i),
                             role="trials", marker_size=3.5))
    series.append(Series("chosen rungs", _xy(rungs, "kbps", "vmaf"), _RUNG_COLOUR,
                         role="rungs", line=False, marker="diamond", marker_size=8,
                         labels=tuple(f"{r['height']}p" for r in _by(rungs, "kbps"))))
    every = [*points, *hull, *rungs]
    panel = Panel(Axis.fit("bitrate, kb/s", (p["kbps"] for p in every), log=True),
                  Axis.fit("VMAF", (p["vmaf"] for p in every), limits=(0, 100)), tuple(series),
                  height=380)
    return svg.figure("Trial encodes, convex hull and chosen rungs", [panel])


def rendition_svg(track: dict) -> str:
    """VMAF (mean, p5, target) and bitrate of each chunk of a rendition over time."""
    chunks = _timed_chunks(track)
    end_s = max((x + (c.get("duration_s") or 0) for x, c in chunks), default=0.0)
    time = Axis("time, s", 0.0, end_s) if end_s > 0 else Axis.fit("time, s", [0.0])
    panels = [p for p in (_vmaf_panel(track, chunks, time), _bitrate_panel(track, chunks, time))
              if p is not None]
    return svg.figure(f"{track['id']}: VMAF and bitrate per chunk", panels)


def _vmaf_panel(track: dict, chunks: list[tuple[float, dict]], time: Axis) -> Panel | None:
    scored = [(x, c) for x, c in chunks if c.get("vmaf")]
    if not scored:
        return None
    step = time.hi
    mean = tuple((x, c["vmaf"]["mean"]) for x, c in scored)
    p5 = tuple((x, c["vmaf"]["p5"]) for x, c in scored if c["vmaf"].get("p5") is not None)
    series = [Series("VMAF mean", mean, svg.colour(0), role="vmaf-mean", step_end=step),
              Series("VMAF p5", p5, svg.colour(4), role="vmaf-p5", step_end=step,
                     dash="3 3", marker="square", marker_size=3)]
    target = track.get("target_vmaf")
    if target is not None:
        series.insert(0, Series(f"target VMAF {target:g}", ((time.lo, target), (time.hi, target)),
                                _TARGET_COLOUR, role="target", markers=False, dash=_DASH))
    series += _flagged(scored, lambda c: c["vmaf"]["mean"])
    values = [y for s in series for _, y in s.points]
    return Panel(time, Axis.fit("VMAF", values, min_span=10, limits=(0, 100)), tuple(series))


def _bitrate_panel(track: dict, chunks: list[tuple[float, dict]], time: Axis) -> Panel:
    rated = [(x, c) for x, c in chunks if c.get("bitrate_kbps") is not None]
    series = [Series("bitrate", tuple((x, c["bitrate_kbps"]) for x, c in rated), svg.colour(2),
                     role="bitrate", step_end=time.hi)]
    maxrate = (track.get("rate_control") or {}).get("maxrate_kbps")
    if maxrate:
        series.insert(0, Series(f"maxrate {maxrate:g} kb/s", ((time.lo, maxrate),
                                (time.hi, maxrate)), "#999999", role="maxrate",
                                markers=False, dash=_DASH))
    series += _flagged(rated, lambda c: c["bitrate_kbps"], missed=False)
    values = [0.0, *(y for s in series for _, y in s.points)]
    return Panel(time, Axis.fit("bitrate, kb/s", values, limits=(0, math.inf)), tuple(series),
                 height=200)


def _flagged(chunks: list[tuple[float, dict]], y, missed: bool = True) -> list[Series]:
    """Rings on chunks that took more than one encode; squares on those below target."""
    retried = tuple((x, y(c)) for x, c in chunks if len(c.get("attempts") or []) > 1)
    flags = [Series("retried (re-encoded)", retried, _RETRY_COLOUR, role="retried",
                    line=False, marker="ring", marker_size=8)]
    if missed:
        below = tuple((x, y(c)) for x, c in chunks if c.get("met_target") is False)
        flags.append(Series("missed target", below, _TARGET_COLOUR, role="missed",
                            line=False, marker="square", marker_size=6))
    return [s for s in flags if s.points]


def _timed_chunks(track: dict) -> list[tuple[float, dict]]:
    """(start in seconds, chunk) in time order; a chunk without start_s follows the last."""
    timed, clock = [], 0.0
    for chunk in sorted(track.get("chunks") or [], key=lambda c: c.get("index", 0)):
        start = chunk.get("start_s")
        start = clock if start is None else float(start)
        timed.append((start, chunk))
        clock = start + float(chunk.get("duration_s") or 0)
    return sorted(timed, key=lambda item: item[0])


def _by(rows: Sequence[dict], key: str) -> list[dict]:
    return sorted(rows, key=lambda r: (r[key], r.get("height", 0)))


def _xy(rows: Sequence[dict], x: str, y: str) -> tuple[tuple[float, float], ...]:
    return tuple((r[x], r[y]) for r in _by(rows, x))


# --- the page -----------------------------------------------------------------------

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;color:#1d1d1f;background:#f6f6f8;margin:0}
main{max-width:1120px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px;overflow-wrap:anywhere}h2{margin:32px 0 10px;font-size:20px}
h3{margin:24px 0 6px;font-size:17px;overflow-wrap:anywhere}
section,article{background:#fff;border:1px solid #ddd;border-radius:8px;padding:4px 18px 16px;
margin:16px 0}
article{margin:12px 0;border-color:#e6e6e6}
.sub,.note{color:#666}.note{font-size:13px}
table{border-collapse:collapse;margin:8px 0;font-size:14px}
th,td{border-bottom:1px solid #e4e4e4;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f0f3;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
table.facts th{background:none;width:13em}
tr.retried td{background:#fff4e6}tr.missed td{background:#fdecec}
img{max-width:100%;height:auto;border:1px solid #eee;border-radius:4px;margin:8px 0}
video{width:100%;max-width:800px;background:#000;border-radius:6px;display:block}
.controls{margin:10px 0;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
code{font-size:13px}details summary{cursor:pointer;margin:6px 0}
"""

# The source comes from data-src: no report text is ever written into the script.
_PLAYER_JS = """
'use strict';
(function () {
  var video = document.getElementById('player');
  var picker = document.getElementById('rendition');
  var status = document.getElementById('player-status');
  function say(text) { status.textContent = text; }
  function describe(level) {
    return level.height + 'p, ' + Math.round(level.bitrate / 1000) + ' kb/s';
  }
  if (window.Hls && window.Hls.isSupported()) {
    var hls = new window.Hls();
    window.reportPlayer = hls;
    hls.on(window.Hls.Events.MANIFEST_PARSED, function (_, data) {
      data.levels.forEach(function (level, index) {
        var option = document.createElement('option');
        option.value = String(index);
        option.textContent = describe(level);
        picker.appendChild(option);
      });
      picker.disabled = false;
      say(data.levels.length + ' renditions');
    });
    hls.on(window.Hls.Events.LEVEL_SWITCHED, function (_, data) {
      say('Playing ' + describe(hls.levels[data.level]) +
          (hls.autoLevelEnabled ? ' (auto)' : ''));
    });
    hls.on(window.Hls.Events.ERROR, function (_, data) {
      if (data.fatal) say('Playback error: ' + data.type + ' / ' + data.details);
    });
    picker.addEventListener('change', function () { hls.currentLevel = Number(picker.value); });
    hls.loadSource(video.dataset.src);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = video.dataset.src;
    say('Native HLS: the browser picks the rendition.');
  } else {
    say('This browser cannot play HLS (no Media Source Extensions).');
  }
})();
"""


def _page(report: dict, tracks: list[dict], charts: dict[str, str], hull: bool) -> str:
    title = esc(report.get("title_id", "untitled"))
    body = [_player_section(), _source_section(report.get("source"), report.get("shots"),
                                               report.get("grid")),
            _inspection_section(report.get("inspection") or []),
            _ladder_section(report.get("ladder") or [], tracks,
                            report.get("ladder_invariant")),
            _codecs_section(report.get("codecs") or {}, report.get("ladder") or []),
            _allocation_section(report.get("allocation") or {}),
            _plan_section(report.get("plan") or {}, hull),
            _renditions_section(tracks, charts)]
    return "\n".join([
        "<!doctype html>", "<html lang='en'>", "<head>", "<meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{title}: ladderflow report</title>",
        "<link rel='icon' href='data:,'>",  # else Chromium asks for /favicon.ico
        f"<style>{_CSS}</style>", "</head>", "<body>", "<main>",
        f"<h1>{title}</h1>",
        f"<p class='sub'>ladderflow title report. Machine-readable: "
        f"<a href='{naming.REPORT_JSON}'>{naming.REPORT_JSON}</a>; manifests: "
        f"<a href='{naming.MASTER_PLAYLIST}'>{naming.MASTER_PLAYLIST}</a> (HLS), "
        f"<a href='{naming.DASH_MANIFEST}'>{naming.DASH_MANIFEST}</a> (DASH).</p>",
        *body, "</main>",
        f"<script src='{HLS_JS}'></script>", f"<script>{_PLAYER_JS}</script>",
        "</body>", "</html>", ""])


def _player_section() -> str:
    return (
        "<section id='playback'><h2>Player</h2>"
        f"<video id='player' controls muted playsinline data-src='{naming.MASTER_PLAYLIST}'>"
        "</video><div class='controls'><label>Rendition "
        "<select id='rendition' disabled><option value='-1'>Auto (ABR)</option></select>"
        "</label><span id='player-status' class='note'>Loading hls.js…</span></div></section>")


def _source_section(source: dict | None, shots: dict | None = None,
                    grid: dict | None = None) -> str:
    if not source:
        return "<section id='source'><h2>Source</h2><p>No source information.</p></section>"
    audio = source.get("audio") or []
    rows = [("Resolution", f"{source.get('width')}×{source.get('height')}"),
            ("Frame rate", f"{source.get('frame_rate')} fps"),
            ("Duration", f"{_f(source.get('duration_s'), 3)} s"),
            ("Video codec", f"{source.get('video_codec')}"
                            + (f" ({source['pix_fmt']})" if source.get("pix_fmt") else "")),
            ("Audio", "; ".join(
                f"{a.get('codec')}, {a.get('channels')} ch, {a.get('sample_rate_hz')} Hz, "
                f"language {a.get('language')}" for a in audio) or "none")]
    if source.get("source_uri"):  # the name only: the rest may be a private bucket's path
        rows.insert(0, ("File", posixpath.basename(str(source["source_uri"]).rstrip("/"))))
    if shots is not None:
        rows.append(("Shot changes", str(shots.get("count", 0))))
    if grid:
        rows.append(("Segments", _grid_fact(grid)))
    return ("<section id='source'><h2>Source</h2>" + _facts(rows) + "</section>")


def _grid_fact(grid: dict) -> str:
    """report.json's `grid` in a line: the segments, and the chunk ends on shot cuts."""
    kind = "cut at shot changes" if grid.get("kind") == "shots" else "even"
    return (f"{grid.get('segments')} ({kind}), {_f(grid.get('min_segment_s'), 3)} to "
            f"{_f(grid.get('max_segment_s'), 3)} s; {grid.get('chunks', '?')} chunks, "
            f"{grid.get('chunk_ends_on_cuts')} ending on a shot change")


def _ladder_section(ladder: list[dict], tracks: list[dict], invariant: dict | None = None
                    ) -> str:
    # Reports written before the ladder carried bandwidths and VMAF: take the track's.
    by_id = {t.get("id"): t for t in tracks}
    ladder = [{**by_id.get(rung.get("id"), {}), **rung} for rung in ladder]
    head = ["Rendition", "Size", "CRF", "Maxrate kb/s", "Target VMAF", "Peak kb/s",
            "Average kb/s", "VMAF mean", "VMAF worst p5"]
    rows = []
    for rung in ladder:
        vmaf = rung.get("vmaf") or {}
        rows.append([rung.get("id"), f"{rung.get('width')}×{rung.get('height')}",
                     _crf(rung.get("crf")), _f(rung.get("maxrate_kbps"), 0),
                     _f(rung.get("target_vmaf"), 2), _kbps(rung.get("peak_bandwidth_bps")),
                     _kbps(rung.get("average_bandwidth_bps")), _f(vmaf.get("mean"), 2),
                     _f(vmaf.get("worst_chunk_p5", vmaf.get("p5")), 2)])
    return "<section id='ladder'><h2>Ladder</h2>" + _table(head, rows, numeric_from=2) + \
        _invariant_note(invariant) + "</section>"


def _codecs_section(codecs: dict, ladder: list[dict]) -> str:
    """Codec ladders (`--codecs`): each codec's rungs side by side, with its encoders and
    whether its own ladder invariant holds. Nothing for a one-codec title."""
    if not codecs:
        return ""
    by_id = {rung.get("id"): rung for rung in ladder}
    columns = []
    for codec, entry in codecs.items():
        rows = []
        for rid in entry.get("renditions") or []:
            rung = by_id.get(rid, {})
            vmaf = rung.get("vmaf") or {}
            rows.append([rid, f"{rung.get('width')}×{rung.get('height')}",
                         _kbps(rung.get("average_bandwidth_bps")), _f(vmaf.get("mean"), 2)])
        holds = (entry.get("ladder_invariant") or {}).get("holds")
        columns.append(
            f"<div class='codec' data-codec='{esc(codec)}'><h3>{esc(codec)}</h3>"
            f"<p class='note'>encoder {esc(', '.join(entry.get('encoders') or []) or '?')}; "
            f"invariant {'holds' if holds else 'broken'}</p>"
            + _table(["Rendition", "Size", "Average kb/s", "VMAF mean"], rows, numeric_from=2)
            + "</div>")
    return ("<section id='codecs'><h2>Codec ladders</h2>"
            "<div style='display:flex;gap:2em;flex-wrap:wrap'>" + "".join(columns)
            + "</div></section>")


def _allocation_section(allocation: dict) -> str:
    """`--allocation optimal`: each rung's allocation (its aim and floor, the CRFs and VMAF
    its chunks were aimed at, the saving the probes predicted, and why a rung kept the
    constant allocation or went only part of the way). Nothing under constant."""
    rungs = {rid: entry for rid, entry in allocation.items() if isinstance(entry, dict)}
    if not rungs:
        return ""
    rows = []
    for rid, entry in rungs.items():
        crfs = entry.get("crf_range") or [None, None]
        vmafs = entry.get("vmaf_range") or [None, None]
        saving = entry.get("predicted_saving")
        rows.append([rid, _f(entry.get("aim_vmaf"), 2), _f(entry.get("floor_vmaf"), 2),
                     f"{_crf(crfs[0])}–{_crf(crfs[1])}",
                     f"{_f(vmafs[0], 1)}–{_f(vmafs[1], 1)}",
                     "—" if saving is None else f"{100 * saving:.1f} %",
                     ("yes" if entry.get("applied", True) else "no")
                     + (f": {entry['reason']}" if entry.get("reason") else "")])
    probe = allocation.get("probe_cpu_s")
    return ("<section id='allocation'><h2>Allocation</h2>"
            "<p class='note'>Each chunk's CRF chosen from its probe encodes so that the rung "
            "meets its aim as a title (duration-weighted mean VMAF), no chunk's worst frames "
            "under the floor, for the fewest bits"
            + (f"; probes took {_f(probe, 1)} CPU s" if probe is not None else "") + ".</p>"
            + _table(["Rendition", "Aim VMAF", "Floor (p5)", "Chunk CRFs", "Chunk VMAF aims",
                      "Predicted saving", "Applied"], rows, numeric_from=1, numeric_to=6)
            + "</section>")


def _invariant_note(invariant: dict | None) -> str:
    """Whether every rung is a real step down from the one above, as measured."""
    if not invariant:
        return ""
    rule = (f"average rate falling at least {_f(invariant.get('min_rate_ratio'), 2)}x and "
            "mean VMAF falling from each rung to the next")
    if invariant.get("holds"):
        return f"<p class='note' id='ladder-invariant'>Ladder invariant holds: {esc(rule)}.</p>"
    items = "".join(f"<li>{esc(v)}</li>" for v in invariant.get("violations") or [])
    return (f"<p id='ladder-invariant'><b>Ladder invariant broken</b> ({esc(rule)}):</p>"
            f"<ul>{items}</ul>")


def _plan_section(plan: dict, hull: bool) -> str:
    mode = plan.get("mode", "fixed")
    out = ["<section id='plan'><h2>Plan</h2>"]
    if mode != "per-title":
        out.append(f"<p>Mode: <b>{esc(mode)}</b>. Every rung was encoded at its configured "
                   "CRF under a VBV cap; no trial encodes, so no hull.</p></section>")
        return "".join(out)
    points = plan.get("points") or []
    out.append(_facts([
        ("Mode", mode), ("Top VMAF", _f(plan.get("top_vmaf"), 2)),
        ("Trial encodes", f"{len(points)} ({len({p['height'] for p in points})} resolutions)"),
        ("Trial segments", _trial_segments(plan)),
        ("Trial cost", f"{_f(plan.get('trial_cost_s'), 1)} s of encode and score"
                       + (f" ({_f(plan['trial_cost_cpu_s'], 1)} CPU s)"
                          if plan.get("trial_cost_cpu_s") else "")),
        ("Rung spacing", f"bitrate ratio {_f(plan.get('step_ratio'), 2)}, "
                         f"floor {_f(plan.get('min_kbps'), 0)} kb/s"),
        ("Trial preset", plan.get("trial_preset") or "—"),
        *_scoring_fact(plan.get("scoring"))]))
    if hull:
        out.append(f"<img src='{HULL_SVG}' alt='Trial encodes: VMAF "
                   "against bitrate per resolution, with the convex hull and chosen rungs'>")
    head = ["Height", "Width", "CRF", "Hull kb/s", "Predicted kb/s", "Predicted VMAF",
            "Maxrate kb/s", "Buffer kbit"]
    out.append("<h3>Chosen rungs</h3>" + _table(head, [
        [r.get("height"), r.get("width"), _crf(r.get("crf")), _f(r.get("kbps"), 0),
         _f(r.get("predicted_kbps"), 0), _f(r.get("vmaf"), 2), r.get("maxrate_kbps"),
         r.get("bufsize_kbit")]
        for r in plan.get("rungs") or []], numeric_from=0))
    out.append("<p class='note'>Hull kb/s: the trials' rate at the rung's trial CRF; "
               "predicted: at its final CRF and preset.</p>")
    dropped = plan.get("dropped_rungs") or []
    if dropped:
        out.append("<h3>Rungs left out</h3><ul id='dropped-rungs'>"
                   + "".join(f"<li>{esc(line)}</li>" for line in dropped) + "</ul>")
    out.append("</section>")
    return "".join(out)


def _trial_segments(plan: dict) -> str:
    """How many segments were trialled, which, and how they were chosen."""
    segments = plan.get("trial_segments") or []
    if not segments:
        return "—"
    text = f"{len(segments)}: " + ", ".join(str(s) for s in segments)
    complexity = plan.get("complexity")
    if not complexity:
        return text + " (evenly spread)"
    values = complexity.get("segment_bytes_per_frame") or []
    if len(segments) == 1 and len(values) > 1:
        return text + f" of {len(values)} (a uniform title: one sample of middle complexity)"
    return text + (f" of {len(values)}, chosen by complexity (the easiest, the hardest and "
                   "between; each stands for the segments nearest it)")


def _scoring_fact(scoring: dict | None) -> list[tuple[str, str]]:
    """How many frames of each chunk were scored, and why (the trials' frame scores)."""
    if not scoring:
        return []
    spread = scoring.get("frame_sd")
    return [("Chunk scoring", f"{scoring.get('scored_frames')} frames of a chunk at least"
             + ("" if spread is None else
                f" (trial frame scores spread {_f(spread, 2)} VMAF)"))]


def _renditions_section(tracks: list[dict], charts: dict[str, str]) -> str:
    out = ["<section id='renditions'><h2>Renditions</h2>"]
    if not tracks:
        out.append("<p>No video renditions.</p>")
    for track in tracks:
        chunks = [c for _, c in _timed_chunks(track)]
        target = track.get("target_vmaf")
        facts = [f"{track.get('width')}×{track.get('height')}", f"codecs {track.get('codecs')}",
                 f"{len(chunks)} chunks"]
        if target is not None:
            facts.append(f"target VMAF {_f(target, 2)}, {track.get('chunks_missing_target', 0)}"
                         " chunks below it")
        out.append(f"<article><h3>{esc(track.get('id'))}</h3>"
                   f"<p class='note'>{esc(', '.join(facts))}</p>"
                   f"<img src='{esc(charts[track['id']])}' alt='VMAF and bitrate per chunk of "
                   f"{esc(track.get('id'))}'>"
                   f"{_chunk_table(chunks)}</article>")
    out.append("</section>")
    return "".join(out)


def _chunk_table(chunks: list[dict]) -> str:
    head = ["Chunk", "Start s", "Length s", "kb/s", "CRF", "VMAF mean", "p5", "min",
            "Target met", "Attempts (CRF → kb/s, VMAF)"]
    rows, classes = [], []
    for c in chunks:
        vmaf = c.get("vmaf") or {}
        attempts = c.get("attempts") or []
        met = c.get("met_target")
        rows.append([c.get("index"), _f(c.get("start_s"), 2), _f(c.get("duration_s"), 2),
                     _f(c.get("bitrate_kbps"), 0), _crf(c.get("crf")), _f(vmaf.get("mean"), 2),
                     _f(vmaf.get("p5"), 2), _f(vmaf.get("minimum"), 2),
                     "—" if met is None else ("yes" if met else
                                              "NO (VBV cap)" if c.get("held_by_cap") else "NO"),
                     "; ".join(f"{_crf(a.get('crf'))} → {_f(a.get('kbps'), 0)}, "
                               f"{_f(a.get('vmaf'), 2)}" for a in attempts) or "—"])
        classes.append("missed" if met is False else "retried" if len(attempts) > 1 else "")
    opened = " open" if len(chunks) <= _CHUNK_TABLE_OPEN_UP_TO else ""
    return (f"<details{opened}><summary>Chunks ({len(chunks)})</summary>"
            + _table(head, rows, numeric_from=0, numeric_to=8, row_classes=classes)
            + "</details>")


def _inspection_section(findings: list[dict]) -> str:
    """What inspection found, most severe first: what it means and what to do."""
    if not findings:
        return ""
    rows = [(f.get("severity"), f.get("code"), f.get("message"), f.get("hint"),
             _span(f.get("start_s"), f.get("end_s"))) for f in findings]
    return ("<section id='inspection'><h2>Inspection</h2>"
            + _table(("Severity", "Finding", "Message", "What to do", "When"), rows,
                     numeric_from=5,
                     row_classes=["missed" if r[0] == "warning" else "" for r in rows])
            + "</section>")


def _span(start: object, end: object) -> str:
    if start is None:
        return "—"
    return f"{_f(start, 1)}–{_f(end, 1)} s" if end is not None else f"from {_f(start, 1)} s"


def _facts(rows: Sequence[tuple[str, object]]) -> str:
    return "<table class='facts'>" + "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows) + "</table>"


def _table(head: Sequence[str], rows: Sequence[Sequence[object]], numeric_from: int,
           numeric_to: int | None = None, row_classes: Sequence[str] = ()) -> str:
    """A table; columns numeric_from..numeric_to (exclusive) are right-aligned numbers."""
    def cls(i: int) -> str:
        numeric = numeric_from <= i < (len(head) if numeric_to is None else numeric_to)
        return " class='n'" if numeric else ""
    out = ["<table><thead><tr>", *(f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(head)),
           "</tr></thead><tbody>"]
    for n, row in enumerate(rows):
        css = row_classes[n] if n < len(row_classes) else ""
        out.append(f"<tr class='{css}'>" if css else "<tr>")
        out.extend(f"<td{cls(i)}>{esc('—' if v is None else v)}</td>" for i, v in enumerate(row))
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _f(value: object, places: int) -> str:
    """A number with `places` decimals, or an em dash when there is none."""
    if value is None or isinstance(value, bool):
        return "—"
    try:
        return f"{float(value):.{places}f}"
    except (TypeError, ValueError):
        return str(value)


def _crf(crf: object) -> str:
    """A CRF as x264 takes it: 23, 21.5, 18.54."""
    return svg.num(crf) if isinstance(crf, (int, float)) else _f(crf, 0)


def _kbps(bps: object) -> str:
    return "—" if bps is None else _f(float(bps) / 1000, 0)
