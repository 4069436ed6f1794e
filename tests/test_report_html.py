"""report.html and its SVG charts, from synthetic report.json dicts.

The builders here (`synthetic_plan`, `make_report`) make reports shaped like the ones
media/report/title_report.py writes; tests/test_report_browser.py reuses `synthetic_plan`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from media.plan.hull import TrialPoint, choose_rungs, upper_hull
from media.report import svg
from media.report.html import HLS_JS, HULL_SVG, REPORT_HTML, chart_paths, render_report

NS = {"svg": svg.SVG_NS}
HOSTILE = "<script>alert(1)</script>"
_URL = re.compile(r"https?://[^\s'\"<>)]*")
# (height, width, VMAF at CRF 18, kb/s at CRF 18): a 1080p source's trials.
_TRIAL_RESOLUTIONS = ((1080, 1920, 98.0, 7000.0), (720, 1280, 95.5, 3600.0),
                      (540, 960, 91.0, 2200.0), (360, 640, 82.0, 1000.0))
_TRIAL_CRFS = (18.0, 23.0, 28.0, 33.0)


def trial_points() -> list[TrialPoint]:
    """Trials shaped like x264's: kb/s halves every 6 CRF, VMAF drops faster when small."""
    return [TrialPoint(height, width, crf, round(kbps * 2 ** ((18 - crf) / 6), 1),
                       round(vmaf - (crf - 18) * (0.4 + 0.08 * (crf - 18))
                             * (0.7 + 0.3 * 1080 / height), 3))
            for height, width, vmaf, kbps in _TRIAL_RESOLUTIONS for crf in _TRIAL_CRFS]


def synthetic_plan(top_vmaf: float = 95.0) -> dict:
    """A per-title plan section as media/plan/per_title.py makes it, from the real hull code."""
    points = trial_points()
    return {
        "mode": "per-title", "top_vmaf": top_vmaf, "min_kbps": 200.0, "step_ratio": 1.7,
        "trial_preset": "veryfast", "trial_segments": [0, 3, 6], "trial_cost_s": 412.5,
        "points": [dataclasses.asdict(p) for p in points],
        "hull": [dataclasses.asdict(p) for p in upper_hull(points)],
        "rungs": [dataclasses.asdict(r) for r in choose_rungs(points, top_vmaf=top_vmaf)],
        "scoring": {"frame_sd": 0.152, "scored_frames": 8},
    }


def make_chunk(index: int, kbps: float, vmaf: float | None, crfs=(23.0,),
               target: float | None = None) -> dict:
    chunk = {"index": index, "start_s": 12.0 * index, "duration_s": 12.0, "frames": 300,
             "bitrate_kbps": kbps, "crf": crfs[-1], "reused": False,
             "attempts": [{"crf": c, "kbps": kbps, "vmaf": vmaf} for c in crfs], "vmaf": None}
    if vmaf is not None:
        chunk["vmaf"] = {"mean": vmaf, "harmonic_mean": vmaf - 0.1, "p5": vmaf - 3,
                         "minimum": vmaf - 6, "frame_count": 300}
    if target is not None and vmaf is not None:
        chunk.update(target_vmaf=target, met_target=vmaf >= target - 1.0)
    return chunk


def make_track(track_id: str, height: int, scored: bool = True,
               target: float | None = 93.0) -> dict:
    """Four chunks; with a target, chunk 1 took two encodes and chunk 2 missed it."""
    target = target if scored else None
    chunks = [make_chunk(0, 3000.0, 94.0 if scored else None, target=target),
              make_chunk(1, 3400.0, 93.5 if scored else None, (23.0, 21.5), target=target),
              make_chunk(2, 2600.0, 90.5 if scored else None, target=target),
              make_chunk(3, 2900.0, 94.5 if scored else None, target=target)]
    return {"kind": "video", "id": track_id, "codecs": "avc1.640028", "width": height * 16 // 9,
            "height": height, "frame_rate": "25", "target_vmaf": target,
            "rate_control": {"crf": 23.0, "maxrate_kbps": 4500, "bufsize_kbit": 9000},
            "chunks_missing_target": 1 if target else 0, "chunks": chunks,
            "vmaf": {"mean": 93.1, "worst_chunk_p5": 87.5, "minimum": 84.5} if scored else None}


def make_report(title_id: str = "film", plan: dict | None = None, scored: bool = True,
                track_ids: tuple[str, ...] = ("1080p-4500k", "720p-2800k")) -> dict:
    tracks = [make_track(tid, h, scored) for tid, h in zip(track_ids, (1080, 720, 540),
                                                              strict=False)]
    audio = {"kind": "audio", "id": "aac-und", "codecs": "mp4a.40.2", "language": "und"}
    return {
        "title_id": title_id, "manifests": {"hls": "master.m3u8", "dash": "manifest.mpd"},
        "source": {"width": 1920, "height": 1080, "frame_rate": "25", "duration_s": 48.0,
                   "video_codec": "h264", "pix_fmt": "yuv420p",
                   "audio": [{"codec": "aac", "channels": 2, "sample_rate_hz": 48000,
                              "language": "und"}]},
        "plan": plan or {"mode": "fixed"},
        "ladder": [{"id": t["id"], "width": t["width"], "height": t["height"], "crf": 23.0,
                    "maxrate_kbps": 4500, "target_vmaf": t["target_vmaf"],
                    "peak_bandwidth_bps": 3_600_000, "average_bandwidth_bps": 2_950_000,
                    "vmaf": t["vmaf"]} for t in tracks],
        "tracks": [*tracks, audio],
    }


class _Page(HTMLParser):
    """The tags of an HTML page with their attributes, and the text inside each <hN>."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.headings: list[str] = []
        self._heading: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if re.fullmatch(r"h[1-3]", tag):
            self._heading = []

    def handle_endtag(self, tag):
        if re.fullmatch(r"h[1-3]", tag) and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None

    def handle_data(self, data):
        if self._heading is not None:
            self._heading.append(data)

    def attrs(self, tag: str) -> list[dict]:
        return [a for t, a in self.tags if t == tag]


def _svg(files: dict[str, bytes], path: str) -> ET.Element:
    return ET.fromstring(files[path])


def _role(root: ET.Element, role: str) -> list[ET.Element]:
    return root.findall(f".//svg:g[@data-role='{role}']", NS)


def _markers(groups: list[ET.Element]) -> list[ET.Element]:
    return [m for g in groups for m in g if m.get("class") == "marker"]


def test_hull_chart_marks_every_trial_the_hull_and_each_rung():
    plan = synthetic_plan()
    root = _svg(render_report(make_report(plan=plan)), HULL_SVG)

    trials = _role(root, "trials")
    assert len(_markers(trials)) == len(plan["points"])
    heights = {p["height"] for p in plan["points"]}
    assert sorted(g.get("data-name") for g in trials) == sorted(f"{h}p trials" for h in heights)
    assert len({g.find("svg:polyline", NS).get("stroke") for g in trials}) == len(heights)
    [hull] = _role(root, "hull")
    [line] = hull.findall("svg:polyline", NS)
    assert len(line.get("points").split()) == len(plan["hull"])
    assert float(line.get("stroke-width")) >= 4
    [rungs] = _role(root, "rungs")
    assert len(_markers([rungs])) == len(plan["rungs"]) >= 2
    labels = [t.text for t in rungs.findall("svg:text", NS)]
    assert sorted(labels) == sorted(f"{r['height']}p" for r in plan["rungs"])
    legend = [t.text for t in root.findall(".//svg:g[@class='legend']/svg:text", NS)]
    assert {"convex hull", "chosen rungs"} <= set(legend)
    assert root.find(".//svg:text[@class='axis-label']", NS).text == "bitrate, kb/s (log scale)"


def test_files_are_the_page_a_chart_per_video_track_and_hls_js():
    report = make_report(plan=synthetic_plan())
    files = render_report(report)

    charts = [f"report/{tid}.svg" for tid in ("1080p-4500k", "720p-2800k")]
    assert set(files) == {REPORT_HTML, HULL_SVG, HLS_JS, *charts}
    page = _Page(files[REPORT_HTML].decode())
    assert [a["src"] for a in page.attrs("img")] == [HULL_SVG, *charts]
    assert [a.get("src") for a in page.attrs("script")] == [HLS_JS, None]
    [video] = page.attrs("video")
    assert video["data-src"] == "master.m3u8" and "muted" in video
    assert page.attrs("select")[0]["id"] == "rendition"
    asset = Path(__file__).parents[1] / "media" / "report" / "assets" / "hls.min.js"
    assert files[HLS_JS] == asset.read_bytes()
    assert render_report(report) == files, "the same report renders the same bytes"


def test_rendition_chart_shows_target_retries_and_misses():
    root = _svg(render_report(make_report()), "report/1080p-4500k.svg")

    assert len(root.findall("svg:g[@class='panel']", NS)) == 2
    assert len(_markers(_role(root, "vmaf-mean"))) == 4
    assert len(_markers(_role(root, "vmaf-p5"))) == 4
    assert len(_markers(_role(root, "bitrate"))) == 4
    [target] = _role(root, "target")
    assert target.find("svg:polyline", NS).get("stroke-dasharray")
    assert target.get("data-name") == "target VMAF 93"
    assert [len(_markers([g])) for g in _role(root, "retried")] == [1, 1]  # both panels
    assert len(_markers(_role(root, "missed"))) == 1


def test_hostile_title_is_escaped_and_the_page_links_nothing_outside():
    report = make_report(title_id=HOSTILE, plan=synthetic_plan(),
                         track_ids=(HOSTILE, "720p-2800k"))
    files = render_report(report)
    text = files[REPORT_HTML].decode()

    page = _Page(text)
    assert page.headings[0] == HOSTILE
    assert HOSTILE in page.headings  # the rendition's heading, as text
    assert [a.get("src") for a in page.attrs("script")] == [HLS_JS, None]
    assert HOSTILE not in text
    assert HOSTILE not in files[chart_paths([HOSTILE])[HOSTILE]].decode()
    assert ET.fromstring(files[chart_paths([HOSTILE])[HOSTILE]]).find(
        "svg:title", NS).text.startswith(HOSTILE)
    for path, data in files.items():
        if path != HLS_JS:
            assert set(_URL.findall(data.decode())) <= {svg.SVG_NS}, path
    for attrs in page.tags:
        for name in ("src", "href"):
            value = attrs[1].get(name)
            assert value is None or value == "data:," or not re.match(r"[a-z]+:|//", value)


def test_fixed_ladder_has_no_hull_chart():
    files = render_report(make_report(plan={"mode": "fixed"}))

    assert HULL_SVG not in files
    page = _Page(files[REPORT_HTML].decode())
    assert HULL_SVG not in [a["src"] for a in page.attrs("img")]
    assert "Mode: <b>fixed</b>" in files[REPORT_HTML].decode()


def test_tracks_without_vmaf_render_their_bitrate():
    files = render_report(make_report(scored=False))

    root = _svg(files, "report/1080p-4500k.svg")
    assert len(root.findall("svg:g[@class='panel']", NS)) == 1
    assert _role(root, "vmaf-mean") == [] and _role(root, "target") == []
    assert len(_markers(_role(root, "bitrate"))) == 4
    assert "720p-2800k" in _Page(files[REPORT_HTML].decode()).headings


def test_the_plan_says_how_many_frames_of_a_chunk_were_scored_and_why():
    report = make_report(plan=synthetic_plan())
    text = render_report(report)[REPORT_HTML].decode()
    plan = text[text.index("<section id='plan'>"):]
    assert "8 frames of a chunk at least (trial frame scores spread 0.15 VMAF)" in plan
    del report["plan"]["scoring"]  # a plan from before it was recorded
    text = render_report(report)[REPORT_HTML].decode()
    assert "Chunk scoring" not in text and "<section id='plan'>" in text


def test_the_plan_says_which_segments_were_trialled_and_how_they_were_chosen():
    report = make_report(plan=synthetic_plan())
    report["plan"]["complexity"] = {"segment_bytes_per_frame": [900.0, 1200.0, 1500.0] * 3,
                                    "sample_weights": {"0": 3, "3": 3, "6": 3}}
    text = render_report(report)[REPORT_HTML].decode()
    assert "3: 0, 3, 6 of 9, chosen by complexity" in text
    report["plan"]["trial_segments"] = [4]
    text = render_report(report)[REPORT_HTML].decode()
    assert "1: 4 of 9 (a uniform title: one sample of middle complexity)" in text
    del report["plan"]["complexity"]  # a plan from before complexity was measured
    text = render_report(report)[REPORT_HTML].decode()
    assert "1: 4 (evenly spread)" in text


def test_a_report_from_an_older_run_renders():
    """An earlier report's ladder lacked VMAF and bandwidths: the page takes the track's,
    and shows a dash for what neither has."""
    report = make_report()
    for rung in report["ladder"]:
        for key in ("target_vmaf", "peak_bandwidth_bps", "average_bandwidth_bps", "vmaf"):
            del rung[key]
    del report["plan"]
    report["source"] = None
    files = render_report(report)

    text = files[REPORT_HTML].decode()
    ladder = text[text.index("<section id='ladder'>"):text.index("<section id='plan'>")]
    assert HULL_SVG not in files
    assert "<td class='n'>93.10</td><td class='n'>87.50</td>" in ladder  # the track's VMAF
    assert "<td class='n'>—</td>" in ladder  # no bandwidths anywhere


@pytest.mark.parametrize(
    ("track_ids", "paths"),
    [
        (["540p-1600k"], ["report/540p-1600k.svg"]),
        (["hull"], ["report/hull-2.svg"]),
        (["a/b", "a_b", "a b"], ["report/a_b.svg", "report/a_b-2.svg", "report/a_b-3.svg"]),
        (["../../etc"], ["report/etc.svg"]),
        ([HOSTILE], ["report/script_alert_1_script.svg"]),
    ],
)
def test_chart_paths(track_ids, paths):
    assert list(chart_paths(track_ids).values()) == paths


@pytest.mark.parametrize(
    ("axis", "ticks"),
    [
        (svg.Axis("x", 0, 100), [0, 20, 40, 60, 80, 100]),
        (svg.Axis("x", 0, 12), [0, 2, 4, 6, 8, 10, 12]),
        (svg.Axis("x", 80.5, 97.2), [85, 90, 95]),
        (svg.Axis("x", 90, 5000, log=True), [100, 200, 500, 1000, 2000, 5000]),
        (svg.Axis("x", 250, 900, log=True), [300, 500, 700]),
        (svg.Axis("x", 200, 30000, log=True), [200, 500, 1000, 2000, 5000, 10000, 20000]),
        (svg.Axis("x", 10, 1e6, log=True), [10, 100, 1000, 10000, 100000, 1e6]),
    ],
)
def test_axis_ticks(axis, ticks):
    assert axis.ticks() == pytest.approx(ticks)


@pytest.mark.parametrize(
    ("values", "log", "lo", "hi"),
    [
        ([81.3, 96.1], False, 80, 100),
        ([5.0], False, 4.4, 5.6),
        ([], False, 0, 1),
        ([100.0, 1000.0], True, None, None),
    ],
)
def test_axis_fit_covers_the_values(values, log, lo, hi):
    axis = svg.Axis.fit("y", values, log=log)
    assert all(axis.lo < v < axis.hi for v in values)
    if lo is not None:
        assert (axis.lo, axis.hi) == pytest.approx((lo, hi))


@pytest.mark.parametrize(("lo", "hi", "log"), [(1, 1, False), (2, 1, False), (0, 10, True)])
def test_axis_rejects_an_empty_or_impossible_range(lo, hi, log):
    with pytest.raises(ValueError):
        svg.Axis("x", lo, hi, log)


@pytest.mark.parametrize(("value", "text"), [(1.0, "1"), (2.345, "2.35"), (-0.001, "0"),
                                             (12.5, "12.5"), (1000.0, "1000")])
def test_num(value, text):
    assert svg.num(value) == text


def test_figure_escapes_names_and_parses_as_svg():
    series = svg.Series("a & <b>", ((1.0, 2.0), (3.0, 4.0)), "#000000", labels=("x'y", "\"z\""))
    panel = svg.Panel(svg.Axis("t <s>", 0, 4), svg.Axis("y", 0, 5), (series,))
    root = ET.fromstring(svg.figure("T & <b>", [panel]).encode())

    assert root.find("svg:title", NS).text == "T & <b>"
    assert root.find(".//svg:g[@class='series']", NS).get("data-name") == "a & <b>"
    assert [t.text for t in root.findall(".//svg:text[@class='point-label']", NS)] == [
        "x'y", "\"z\""]


def test_vendored_hls_js_is_the_version_the_browser_tests_pin():
    pinned = json.loads((Path(__file__).parent / "browser" / "package.json").read_text())
    readme = (Path(__file__).parents[1] / "media" / "report" / "assets" / "README.md").read_text()
    assert f"**{pinned['dependencies']['hls.js']}**" in readme


def test_inspection_findings_are_listed_with_what_to_do():
    report = make_report(plan={"mode": "fixed"})
    report["inspection"] = [
        {"severity": "warning", "code": "black", "message": "Black video <for> 2.5 s.",
         "hint": "Check the edit.", "start_s": 1.0, "end_s": 3.5},
        {"severity": "info", "code": "rotated", "message": "Rotated 90°.", "hint": "None.",
         "start_s": None, "end_s": None},
    ]
    text = render_report(report)[REPORT_HTML].decode()
    section = text[text.index("<section id='inspection'>"):]
    section = section[:section.index("</section>")]
    assert "Black video &lt;for&gt; 2.5 s." in section and "Check the edit." in section
    assert "1.0–3.5 s" in section and "Rotated 90°." in section
    assert "<section id='inspection'>" not in render_report(
        make_report(plan={"mode": "fixed"}))[REPORT_HTML].decode()


def test_an_optimal_allocation_is_shown_rung_by_rung_and_nothing_under_constant():
    report = make_report(plan=synthetic_plan())
    text = render_report(report)[REPORT_HTML].decode()
    assert "<section id='allocation'>" not in text
    report["allocation"] = {
        "1080p-5000k": {"aim_vmaf": 95.5, "floor_vmaf": 89.0, "predicted_saving": 0.1234,
                        "crf_range": [21.3, 27.5], "vmaf_range": [91.2, 97.8],
                        "feasible": True, "applied": True, "reason": ""},
        "540p-1200k": {"aim_vmaf": 88.0, "floor_vmaf": 81.5, "predicted_saving": -0.02,
                       "crf_range": [26.0, 26.0], "vmaf_range": [88.0, 88.0],
                       "feasible": True, "applied": False,
                       "reason": f"carried 0% of the way {HOSTILE}"},
        "probe_cpu_s": 42.25}
    text = render_report(report)[REPORT_HTML].decode()
    section = text[text.index("<section id='allocation'>"):]
    section = section[:section.index("</section>")]
    assert "probes took 42.2 CPU s" in section
    assert "<td>1080p-5000k</td><td class='n'>95.50</td><td class='n'>89.00</td>" in section
    assert "21.3–27.5" in section and "91.2–97.8" in section and "12.3 %" in section
    assert "<td>no: carried 0% of the way &lt;script&gt;" in section
    assert HOSTILE not in text


def test_the_source_says_its_shot_changes_and_the_grid_cut_at_them():
    report = make_report(plan={"mode": "fixed"})
    report["shots"] = {"cuts_s": [1.6, 4.0], "count": 2}
    report["grid"] = {"kind": "shots", "segments": 7, "chunks": 3, "min_segment_s": 1.0,
                      "max_segment_s": 1.8, "shot_cuts": 2, "boundaries_on_cuts": 2,
                      "chunk_ends_on_cuts": 2, "chunk_ends_moved_onto_cuts": 1}
    text = render_report(report)[REPORT_HTML].decode()
    section = text[text.index("<section id='source'>"):]
    section = section[:section.index("</section>")]
    assert "Shot changes" in section and ">2<" in section
    assert "7 (cut at shot changes), 1.000 to 1.800 s; 3 chunks, 2 ending on a shot change" \
        in section
    plain = render_report(make_report(plan={"mode": "fixed"}))[REPORT_HTML].decode()
    assert "Shot changes" not in plain and "Segments" not in plain
