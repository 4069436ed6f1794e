"""The ladder invariant (rungs really apart in rate and VMAF), as planning enforces it on
its predictions and the report checks it on what was measured; the rate prediction; and,
end to end, a still title (one rung) and the fixed ladder on an easy source."""

from __future__ import annotations

import dataclasses
import json
import math
from fractions import Fraction
from pathlib import Path

import pytest

from media.core.types import (
    ChunkSpan,
    EncodeSettings,
    Rendition,
    SegmentGrid,
    SourceInfo,
    TrialResult,
    TrialTask,
)
from media.plan.invariant import LadderRung, ladder_invariant, spaced
from media.plan.planning import predicted_kbps
from media.plan.prediction import predicted_rates, preset_factor, preset_factors
from media.report.title_report import measured_invariant


def _ladder(*rungs) -> list[LadderRung]:
    return [LadderRung(f"r{i}", kbps, vmaf) for i, (kbps, vmaf) in enumerate(rungs)]


@pytest.mark.parametrize("rungs, holds, violations", [
    # a ladder a step of 1.7 apart, VMAF falling
    (((1000, 95), (590, 90), (350, 84)), True, []),
    # the grainy title as published: the lowest rung over the middle one, the same VMAF
    (((260, 94.5), (184, 94.1), (186, 94.1)), False,
     ["r2: 186 kb/s is only 0.99x under r1 (184 kb/s); at least 1.3x",
      "r2: VMAF 94.10 is not under r1 (94.10)"]),
    # 1.29x apart: one violation, on the rate alone
    (((1290, 95), (1000, 90)), False,
     ["r1: 1000 kb/s is only 1.29x under r0 (1290 kb/s); at least 1.3x"]),
    # exactly 1.3x holds
    (((1300, 95), (1000, 90)), True, []),
    # unscored rungs (--no_vmaf): the rates alone are checked
    (((1000, None), (500, None)), True, []),
    # a single rung holds trivially
    (((1000, 95),), True, []),
])
def test_ladder_invariant_known_answers(rungs, holds, violations):
    verdict = ladder_invariant(_ladder(*rungs))
    assert verdict["holds"] is holds
    assert verdict["violations"] == violations
    assert verdict["min_rate_ratio"] == 1.3
    assert len(verdict["rate_ratios"]) == len(rungs) - 1


@pytest.mark.parametrize("rungs, kept, lines", [
    # every rung a real step: all kept
    (((1000, 95), (590, 90), (350, 84)), [0, 1, 2], []),
    # the third too close to the second in rate: dropped, and the fourth is judged
    # against the second (the last kept), 1.9x under it
    (((780, 95), (460, 93.8), (400, 92.7), (240, 89.7)), [0, 1, 3], ["dropped r2: 400"]),
    # VMAF not falling by the step asked: dropped although the rate falls
    (((1000, 95), (500, 94.8), (250, 90)), [0, 2], ["dropped r1: VMAF 94.80"]),
    # every rung under the top too close: the lowest is kept for now (to move or drop)
    (((1000, 95), (900, 94), (850, 93)), [0, 2],
     ["dropped r1: 900", "kept (a second rung) r2: 850"]),
])
def test_planning_drops_rungs_that_are_no_real_step(rungs, kept, lines):
    indexes, why = spaced(_ladder(*rungs), 1.3, 0.5)
    assert indexes == kept
    assert len(why) == len(lines)
    assert all(line.startswith(start) for line, start in zip(why, lines, strict=True))


def test_the_report_checks_the_measured_ladder():
    ladder = [{"id": "180p-1175k", "average_bandwidth_bps": 411_000, "vmaf": {"mean": 96.1}},
              {"id": "180p-691k", "average_bandwidth_bps": 242_000, "vmaf": {"mean": 94.8}},
              {"id": "180p-407k", "average_bandwidth_bps": 188_000, "vmaf": {"mean": 93.7}}]
    verdict = measured_invariant(ladder)
    assert not verdict["holds"]
    assert verdict["violations"] == [
        "180p-407k: 188 kb/s is only 1.29x under 180p-691k (242 kb/s); at least 1.3x"]
    assert measured_invariant(ladder[:2])["holds"]
    # a rung without VMAF (not scored) is judged on its rate
    assert measured_invariant([{**ladder[0], "vmaf": None}, ladder[1]])["holds"]


# --- the rate prediction ------------------------------------------------------------------

GRID = SegmentGrid(96, Fraction(24))
SOURCE = SourceInfo("g.mp4", "g", "mp4", "h264", 320, 180, Fraction(24), 1440, 0.0, "yuv420p")
# A grainy sample's trial rates (veryfast, 1 s, kb/s with its keyframe): the rate falls
# 7.5x from CRF 19 to 26 while VMAF falls 4.4 (measured on testsrc2 under temporal noise)
TRIAL = {19.0: (1704, 96.7), 26.0: (236, 92.3), 33.0: (131, 79.1)}


def _trials(segment: int = 2, keyframe_share: float = 0.0) -> list[TrialResult]:
    task = TrialTask(SOURCE, ((320, 180),), tuple(TRIAL), ChunkSpan(segment, segment * 96, 24),
                     0, 3, GRID, "/o", EncodeSettings(preset="veryfast"))
    out = []
    for crf, (kbps, vmaf) in TRIAL.items():
        size = round(kbps * 1000 / 8)  # 24 frames: 1 s
        out.append(TrialResult(task, 320, 180, crf, 0, size, 24, vmaf,
                               keyframe_bytes=round(size * keyframe_share)))
    return out


def test_predicted_rate_is_read_at_the_final_crf():
    results = _trials()
    # on the trial curve itself, at a trial CRF, and between two in ln-rate
    assert predicted_kbps(results, 180, 19.0, ()) == pytest.approx(1704, rel=1e-3)
    between = math.exp(math.log(1704) + (math.log(236) - math.log(1704)) * 4.8 / 7)
    assert predicted_kbps(results, 180, 23.8, ()) == pytest.approx(between, rel=1e-3)
    # each sample at its own CRF: a change of +2 on the one sample is CRF 25.8
    middle = 2 * 96 + 12
    assert predicted_kbps(results, 180, 23.8, ((middle, 2.0),)) == pytest.approx(
        predicted_kbps(results, 180, 25.8, ()), rel=1e-6)
    assert predicted_kbps(results, 720, 23.8, ()) is None


RUNG = Rendition("180p-1175k", 320, 180, 21.6, 1175, 2350, target_vmaf=95.0)


def test_the_final_preset_factor_comes_from_the_calibration_encodes():
    sample = _trials()
    # medium spent 0.9x veryfast's rate at CRF 26, 1.1x at 19; the third try's 4000
    # kb/s is at the VBV cap's budget for a 1 s sample (1175 + 0.9 x 2350): left out
    record = {"tries": [[19.0, 97.0, 1704 * 1.1], [26.0, 93.0, 236 * 0.9],
                        [21.0, 96.0, 4000.0]]}
    factors = preset_factors(record, RUNG, sample, 1.0)
    assert [crf for crf, _ in factors] == [19.0, 26.0]
    assert preset_factor(factors, 19.0) == pytest.approx(1.1)
    assert preset_factor(factors, 26.0) == pytest.approx(0.9)
    assert preset_factor(factors, 22.5) == pytest.approx(math.sqrt(1.1 * 0.9))
    assert preset_factor(factors, 40.0) == pytest.approx(0.9)  # the nearest beyond
    assert preset_factor([], 22.0) == 1.0


def test_predicted_rates_follow_the_calibrated_crf():
    """The grainy title's top rung: planned at CRF 21.6 (the hull's 783 kb/s), calibrated
    to 23.8 (where its final encodes spent 411 kb/s); the prediction reads the trial
    curve at 23.8 and scales it by the final preset's factor, measured at 21.6."""
    sample = _trials()
    calibrated = Rendition("180p-1175k", 320, 180, 23.8, 1175, 2350, target_vmaf=95.0)
    record = {"tries": [[21.6, 96.6, 1087.0]]}
    [rate] = predicted_rates([calibrated], [783.0], sample, None, [record], [RUNG], 2,
                             2 * 96 + 12, 1.0)
    at_216 = math.exp(math.log(1704) + (math.log(236) - math.log(1704)) * 2.6 / 7)
    assert rate == pytest.approx(predicted_kbps(sample, 180, 23.8, ()) * 1087 / at_216,
                                 rel=1e-3)
    assert rate < 0.8 * 783  # 2.2 CRF steps up the curve, where each costs 25 %
    # no calibration (trials at the final preset): the trial curve alone
    [plain] = predicted_rates([calibrated], [783.0], sample, None, [], [], 2, 204, 1.0)
    assert plain == pytest.approx(predicted_kbps(sample, 180, 23.8, ()))


def test_the_html_report_says_what_broke_and_what_planning_dropped():
    from media.report.html import REPORT_HTML, render_report

    ladder = [{"id": "180p-691k", "average_bandwidth_bps": 242_000, "vmaf": {"mean": 94.8}},
              {"id": "180p-407k", "average_bandwidth_bps": 188_000, "vmaf": {"mean": 93.7}}]
    plan = {"mode": "per-title", "rungs": [{"height": 180, "width": 320, "crf": 23.8,
                                            "kbps": 783.0, "predicted_kbps": 397.0,
                                            "vmaf": 95.0}],
            "dropped_rungs": ["dropped 180p-407k: 185 kb/s is only 1.21x under 180p-691k "
                              "(224 kb/s); at least 1.43x"]}
    report = {"title_id": "grain", "ladder": ladder, "tracks": [], "plan": plan,
              "ladder_invariant": measured_invariant(ladder)}
    page = render_report(report)[REPORT_HTML].decode()
    assert "<b>Ladder invariant broken</b>" in page
    assert "180p-407k: 188 kb/s is only 1.29x under 180p-691k (242 kb/s)" in page
    assert "<ul id='dropped-rungs'><li>dropped 180p-407k: 185 kb/s" in page
    assert ">397<" in page  # the predicted rate beside the hull's 783
    report["ladder_invariant"] = measured_invariant(ladder[:1])
    assert "Ladder invariant holds" in render_report(report)[REPORT_HTML].decode()


def test_a_second_rung_too_close_is_moved_down_its_curve():
    """The slideshow's two rungs came out 1.30x apart (88 and 68 kb/s predicted): the
    second is moved to the lowest CRF predicted 1.43x under the top, its target down its
    slope; where 4 steps do not get there, whole steps up the CRF range do, and where no
    CRF does (a rate that is all container cost), it is not moved."""
    from media.plan.prediction import moved_down

    second = Rendition("180p-59k", 320, 180, 30.0, 59, 118, target_vmaf=89.85,
                       vmaf_per_crf=-1.5)

    def predict(r):  # 68 kb/s at CRF 30, 12 % less each step
        return 68.0 * 0.88 ** (r.crf - 30.0)

    moved, kbps = moved_down(second, 88.0, 1.43, predict)
    assert moved.crf == 30.8  # 68 x 0.88^0.8 = 61.4 kb/s, the first tenth under 61.5
    assert kbps == pytest.approx(predict(moved)) and kbps * 1.43 <= 88.0
    assert moved.target_vmaf == pytest.approx(89.85 - 1.5 * 0.8)
    far, kbps = moved_down(second, 55.0, 1.43, predict)  # 4 steps: 40.8 x 1.43 > 55
    assert far.crf == 35.0 and kbps * 1.43 <= 55.0 < predict(dataclasses.replace(
        far, crf=34.0)) * 1.43  # 68 x 0.88^5 = 35.9 kb/s (51.3 x 1.43); at 4 steps 58.3
    assert far.target_vmaf == pytest.approx(89.85 - 1.5 * 5)
    assert moved_down(second, 55.0, 1.43, lambda r: 50.0) is None  # no CRF saves a bit


def test_a_second_rung_that_cannot_be_moved_far_enough_is_dropped():
    """The still bars: their two rungs predicted 9.7 and 8.6 kb/s (1.13x apart), a rate
    that is all container and keyframe cost, which no CRF lowers. `spaced` keeps the
    second all the same; it cannot be moved 1.43x under the top, so it is dropped, the
    title has one rung, and the line says why. A rung whose curve gets there is moved."""
    from media.plan.prediction import second_rung

    top = Rendition("180p-150k", 320, 180, 24.0, 150, 300, target_vmaf=93.0)
    low = Rendition("180p-88k", 320, 180, 30.0, 88, 176, target_vmaf=89.0, vmaf_per_crf=-1.5)
    middle = Rendition("180p-120k", 320, 180, 27.0, 120, 240, target_vmaf=91.0)
    ladder = [top, middle, low]
    rates = [9.7, 9.0, 8.6]
    kept, lines = spaced([LadderRung(r.rendition_id, k, r.target_vmaf)
                          for r, k in zip(ladder, rates, strict=True)], 1.43, 0.5)
    assert kept == [0, 2] and lines[-1].startswith("kept (a second rung) 180p-88k")

    def flat(chosen):  # every CRF: the same rates
        return list(rates)

    renditions, predicted, kept, why = second_rung(ladder, rates, kept, lines, 1.43, flat)
    assert kept == [0]
    assert why[0].startswith("dropped 180p-120k: 9 kb/s is only 1.08x under 180p-150k")
    assert why[1] == ("dropped 180p-88k: 9 kb/s at CRF 30, and no CRF predicted 1.43x under "
                      "180p-150k (10 kb/s): its rate is container and keyframe cost; the "
                      "title has one rung")
    assert renditions == ladder and predicted == rates  # nothing moved

    def curve(chosen):  # the lowest rung's rate falls 12 % a CRF step
        return [*rates[:2], 8.6 * 0.88 ** (chosen[2].crf - 30.0)]

    kept2, lines2 = spaced([LadderRung(r.rendition_id, k, r.target_vmaf)
                            for r, k in zip(ladder, rates, strict=True)], 1.43, 0.5)
    renditions, predicted, kept2, why = second_rung(ladder, rates, kept2, lines2, 1.43, curve)
    assert kept2 == [0, 2] and why[1].startswith(  # 8.6 x 0.88^1.9 = 6.74
        "moved 180p-88k from CRF 30 to 31.9 (target VMAF 89 to 86.15): 7 kb/s, 1.44x")
    assert predicted[2] * 1.43 <= 9.7 and renditions[2].crf == 31.9
    # a ladder whose rungs are apart is left as it is
    assert second_rung([top, low], [20.0, 8.6], [0, 1], [], 1.43, flat) == (
        [top, low], [20.0, 8.6], [0, 1], [])


# --- end to end: a still title, and the fixed ladder on an easy source ----------------------


def _publish(folder: Path, pattern: str, ladder: str) -> Path:
    """A 4 s 320x180 `pattern` clip (no audio) published with `ladder`: its title folder."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    from media.core.config import JobConfig
    from pipeline.graph import build_pipeline
    from pipeline.local_runner import LOCAL_RUNNER
    from tests.media_factory import make_clip

    source = make_clip(str(folder / f"{pattern}.mp4"), duration_s=4.0, width=320, height=180,
                       audio=False, pattern=pattern)
    config = JobConfig(output_root=str(folder / "out"), ladder=ladder,
                       keep_work=False).validate()
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]), blocking=True) as p:
        build_pipeline(p, [source], config)
    return folder / "out" / pattern


@pytest.fixture(scope="module")
def still_title(tmp_path_factory) -> Path:
    return _publish(tmp_path_factory.mktemp("still"), "smptebars", "per-title")


@pytest.fixture(scope="module")
def easy_fixed_title(tmp_path_factory) -> Path:
    return _publish(tmp_path_factory.mktemp("easy-fixed"), "testsrc", "fixed")


def test_a_still_title_publishes_one_rung_and_says_why(still_title):
    """Still bars cost their keyframes and their container whatever the CRF: planning
    finds no CRF that puts a second rung 1.43x under the top, drops it, and the title
    publishes one rung, which holds the invariant; HLS and DASH carry the one video
    rendition, and only Apple's 9.9 (two bit rates) is not met."""
    from mpegdash.parser import MPEGDASHParser

    from tests.hls_authoring import check_hls_title

    report = json.loads((still_title / "report.json").read_text())
    assert len(report["ladder"]) == 1
    [line] = report["plan"]["dropped_rungs"]
    assert line.startswith("dropped ") and "no CRF predicted 1.43x under" in line, line
    assert report["ladder_invariant"] == {"holds": True, "min_rate_ratio": 1.3,
                                          "violations": [], "rate_ratios": []}
    assert f"<li>{line}</li>" in (still_title / "report.html").read_text()
    assert [p.name for p in (still_title / "video").iterdir()] == [report["ladder"][0]["id"]]
    mpd = MPEGDASHParser.parse(str(still_title / "manifest.mpd"))
    video = [a for a in mpd.periods[0].adaptation_sets
             if "video" in (a.mime_type or a.content_type or "")]
    assert [len(a.representations) for a in video] == [1]
    assert check_hls_title(still_title, min_variants=1) == []
    assert check_hls_title(still_title) == [
        "master.m3u8: 1 variant(s); 9.9: You MUST provide multiple bit rates of video"]


def test_the_fixed_ladder_on_an_easy_source_holds_the_invariant(easy_fixed_title):
    """testsrc at 320x180 costs about 34 kb/s at CRF 23, far under the 250 and 125 kb/s
    caps of its two fixed rungs; at one height and one CRF they came out alike (1.00x).
    The second rung, at half the height and 6 CRF steps up, measures 1.5-1.6x under."""
    from tests.hls_authoring import check_hls_title

    report = json.loads((easy_fixed_title / "report.json").read_text())
    rungs = [(r["id"], r["height"], r["crf"]) for r in report["ladder"]]
    assert rungs == [("180p-250k", 180, 23.0), ("90p-125k", 90, 29.0)]
    verdict = report["ladder_invariant"]
    assert verdict["holds"], verdict["violations"]
    assert verdict["rate_ratios"][0] >= 1.3
    assert check_hls_title(easy_fixed_title) == []


@pytest.mark.browser
@pytest.mark.usefixtures("chromium")
@pytest.mark.parametrize("player, manifest", [("hls", "master.m3u8"), ("dash", "manifest.mpd")])
def test_a_one_rung_title_plays_to_the_end(player, manifest, still_title, browser_players,
                                           player_page):
    """hls.js and dash.js in Chromium play the still title's one video rendition to its
    end, with no error: a player needs no second rung to play."""
    from urllib.parse import urlencode

    from tests.browser_support import SiteServer

    page, messages = player_page
    query = urlencode({"player": player, "src": f"/title/{manifest}", "rate": 4})
    with SiteServer({"player": browser_players, "title": still_title}) as base:
        page.goto(f"{base}/player/player.html?{query}")
        page.wait_for_function("lf.state.ended || lf.state.errors.length > 0",
                               timeout=90_000, polling=50)
        state = page.evaluate("lf.snapshot()")
    console_errors = [m for m in messages if m.startswith(("console.error", "pageerror"))]
    assert state["errors"] == [] and console_errors == [], (state, messages)
    assert state["ended"] and state["currentTime"] == pytest.approx(4.0, abs=0.5), state
    assert len(state["renditions"]) == 1 and state["videoHeight"] == 180, state
