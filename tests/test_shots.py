"""Shot changes found in inspection's decode (`media.inspect.shots`): listed once each,
alike by a whole decode and by spans (a span starting on a cut finds it, from its
pre-roll's last frame), none inside a grainy shot, and carried into report.json.

Clips are a few seconds of 256x144 at 25 fps, x264 with a keyframe every second and no
keyframes of its own at cuts (so cuts fall both on span bounds and inside spans), built
from FFmpeg's generated sources.
"""

from __future__ import annotations

import json

import pytest

from media.core import ffmpeg
from media.inspect import inspect_file
from media.inspect.decode_pass import ffmpeg_filters
from media.inspect.demux import head_summary
from media.inspect.shots import shot_cuts
from media.inspect.spans import inspect_by_spans, inspect_span, span_plan
from media.report.title_report import title_report
from transforms.inspect import inspect_video

pytestmark = pytest.mark.skipif("scdet" not in ffmpeg_filters(),
                                reason="this FFmpeg has no scdet")

SIZE = "256x144"
SPAN_S = 1.0
"""Forced span length: a span starts at every keyframe, each second."""
GRAIN = "noise=alls=100:allf=t+u"
"""The heaviest temporal grain: each frame differs from the one before by 12 %."""

SHOTS = (  # (lavfi source, filters, seconds): cuts at 2.0, 3.2, 4.0 and 5.6 s
    ("testsrc2", "", 2.0),
    ("mandelbrot", "", 1.2),
    ("smptebars", "", 0.8),
    ("testsrc2", "noise=alls=60:allf=t+u", 1.6),
    ("life=mold=10:ratio=0.1:death_color=#C83232:life_color=#00ff00", "", 0.8),
)
CUTS = (2.0, 3.2, 4.0, 5.6)


def _shots(path: str, shots, audio: bool = False) -> str:
    """`shots` joined, each from its own source (its first `seconds`), x264 ultrafast."""
    args, graph = [], []
    for n, (source, vf, seconds) in enumerate(shots):
        spec = source + (":" if "=" in source else "=")
        args += ["-f", "lavfi", "-i", f"{spec}size={SIZE}:rate=25"]
        chain = [f"trim=duration={seconds}", "setpts=PTS-STARTPTS", *filter(None, [vf]),
                 "format=yuv420p"]
        graph.append(f"[{n}]{','.join(chain)}[s{n}]")
    labels = "".join(f"[s{n}]" for n in range(len(shots)))
    graph.append(f"{labels}concat=n={len(shots)}:v=1:a=0[v]")
    total = round(sum(s for *_, s in shots), 3)
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={total}"]
    args += ["-filter_complex", ";".join(graph), "-map", "[v]"]
    if audio:
        args += ["-map", f"{len(shots)}:a", "-c:a", "aac", "-b:a", "64k"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
             "-x264-params", "scenecut=0", path]
    ffmpeg.run(ffmpeg.ffmpeg_argv(*args))
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("shots")
    return {
        "cuts": _shots(str(root / "cuts.mp4"), SHOTS, audio=True),
        # One shot, grain throughout: scdet scores its second frame by the grain alone.
        "grainy": _shots(str(root / "grainy.mp4"), [("testsrc2", GRAIN, 3.0)]),
        # A still picture, then a grainy shot: the frame after the cut scores by the
        # grain alone too, and is not a second cut.
        "into_grain": _shots(str(root / "into_grain.mp4"),
                             [("smptebars", "", 2.0), ("testsrc2", GRAIN, 2.0)]),
    }


@pytest.mark.parametrize("analyse", [False, True])
def test_the_cuts_are_found_alike_by_a_whole_decode_and_by_spans(clips, analyse):
    # With the complexity analysis encode in the same chain, the cuts are the same.
    _, whole = inspect_file(clips["cuts"], analyse=analyse)
    _, spans = inspect_by_spans(clips["cuts"], span_s=SPAN_S, analyse=analyse)
    assert whole.shot_cuts_s == spans.shot_cuts_s == CUTS
    if not analyse:
        assert spans == whole  # every fact


def test_a_cut_on_a_span_bound_is_found_once_by_the_span_it_starts(clips):
    path = clips["cuts"]
    head = head_summary(path)
    plan = span_plan(head, SPAN_S)
    results = [inspect_span(path, span, head, plan) for span in plan.spans]
    starts = [r.span.start_s for r in results if r.span.start_s is not None]
    for cut in (2.0, 4.0):  # on keyframes: spans start there (a quarter frame early)
        assert any(abs(s - cut) < 0.02 for s in starts)
        (starting,) = [r for r in results
                       if r.span.start_s is not None and abs(r.span.start_s - cut) < 0.02]
        assert starting.cuts and starting.cuts[0] == pytest.approx(cut, abs=1e-6)
    found = sorted(t for r in results for t in r.cuts or ())
    assert found == pytest.approx(CUTS, abs=1e-6)  # each once, none of a pre-roll's


@pytest.mark.parametrize("name, cuts", [("grainy", ()), ("into_grain", (2.0,))])
def test_grain_is_no_cut(clips, name, cuts):
    _, whole = inspect_file(clips[name])
    _, spans = inspect_by_spans(clips[name], span_s=SPAN_S)
    assert whole.shot_cuts_s == spans.shot_cuts_s == cuts


def test_cuts_are_merged_sorted_once_and_not_within_a_frame_and_a_half():
    frame = 0.04
    found = (4.0, 2.0, 2.04, 2.0, 0.04, 6.1)
    assert shot_cuts(found, 0.0, frame) == (2.0, 4.0, 6.1)
    assert shot_cuts((), 0.0, frame) == ()


def test_report_json_lists_the_cuts(clips):
    info = inspect_video(clips["cuts"], "shots", span_s=SPAN_S)
    assert info.shot_cuts_s == CUTS
    report = json.loads(json.dumps(title_report("shots", info, [])))
    assert report["shots"] == {"cuts_s": list(CUTS), "count": len(CUTS)}
    assert "shot_cuts_s" not in report["source"]


def test_the_published_report_json_lists_the_cuts(clips, tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    from media.core.config import JobConfig
    from media.core.types import EncodeSettings
    from pipeline.graph import build_pipeline
    from pipeline.local_runner import LOCAL_RUNNER

    config = JobConfig(output_root=str(tmp_path), ladder="fixed", max_renditions=1,
                       chunk_segments=1, encode=EncodeSettings(preset="ultrafast"),
                       score_vmaf=False).validate()
    with TestPipeline(options=PipelineOptions([f"--runner={LOCAL_RUNNER}"]),
                      blocking=True) as p:
        build_pipeline(p, [clips["cuts"]], config)
    report = json.loads((tmp_path / "cuts" / "report.json").read_text())
    assert report["shots"] == {"cuts_s": list(CUTS), "count": len(CUTS)}
