"""Tests for the feature-length benchmark's pure helpers (benchmarks/feature_length.py):
the SRT it writes, the critical path read from a timed log, the gathered sizes read from
the metrics summary, and the goals' verdicts. Plus where the playback check seeks."""

from __future__ import annotations

from types import SimpleNamespace

from apache_beam.metrics.cells import DistributionData, DistributionResult

from benchmarks._measure import Measured
from benchmarks.feature_length import (
    Run,
    Stages,
    at_equal_encoder_speed,
    bracketed,
    chunk_encodes,
    gathered_bytes,
    goals,
    srt_text,
    srt_time,
    stages,
)
from benchmarks.play_feature import fatal_errors, seek_point
from transforms.metrics import GATHERED_KEY, GATHERED_PART, NAMESPACE, summary_lines

LOG = [
    (4.2, "23:00:46 processing 1 source(s) into /tmp/out"),
    (8.7, "23:00:50 film: inspected: 256x144 24 fps, 120.0 s, h264"),
    (12.1, "23:00:54 film: planned 2 rungs: 144p CRF 24.5 (VMAF 95.0)"),
    (13.6, "23:00:55 film: encode+score 1/4 chunks (144p-697k chunk 0: 189 kb/s)"),
    (20.0, "23:00:57 film: encode+score 3/4 chunks (144p-697k chunk 1: 189 kb/s)"),
    (27.5, "23:01:09 film: encode+score 4/4 chunks (144p-300k chunk 1: 130 kb/s)"),
    (27.6, "23:01:09 film: assembled 144p-300k: 30 segments"),
    (32.1, "23:01:14 film: published 2 renditions, 120.0 s: /tmp/out/film/master.m3u8"),
    (32.2, "23:01:14 metrics: chunks encoded 1,200, reused 3, retried 2, re-encoded by the "
           "gate 94"),
    (32.2, "23:01:14 metrics: largest gathered part / key, pickled bytes: assemble (gather) "
           "2,674 / 26,739; package (gather) 18,566 / 42,109"),
]


def test_srt_cues_every_ten_seconds_within_the_title():
    text = srt_text(3600.0)
    cues = text.strip().split("\n\n")
    assert len(cues) == 360  # 1 s, 11 s, ... 3591 s; each shown 4 s, all before the end
    assert cues[0].splitlines()[1] == "00:00:01,000 --> 00:00:05,000"
    assert cues[-1].splitlines()[1] == "00:59:51,000 --> 00:59:55,000"
    assert srt_time(7199.5) == "01:59:59,500"


def test_the_critical_path_by_stage():
    found = stages(LOG, "film")
    assert found.startup_s == 4.2
    assert round(found.inspection_s, 3) == 4.5  # processing -> inspected
    assert round(found.planning_s, 3) == 3.4
    assert round(found.encode_s, 3) == 15.4  # planned -> the last chunk (4/4)
    assert round(found.tail_s, 3) == 4.6  # the last chunk -> published
    assert stages(LOG, "other") == Stages(startup_s=4.2)


def test_gathered_sizes_from_the_metrics_summary():
    assert gathered_bytes(LOG) == {"assemble (gather)": (2674, 26739),
                                   "package (gather)": (18566, 42109)}
    assert gathered_bytes(LOG[:3]) == {}


def test_chunk_encodes_count_retries_and_the_gates_re_encodes_not_reused_chunks():
    assert chunk_encodes(LOG) == 1200 + 2 + 94
    assert chunk_encodes(LOG[:3]) is None


def test_the_time_ratio_at_equal_encoder_speed_takes_out_the_machines_drift():
    # The long run's encodes each cost 10 % more x264 CPU than the cut's (a slower hour):
    # its 13.2x the time is 12x at the cut's speed.
    long = Run("film", Measured(1320.0, 300.0, 600.0, 0, encoder_cpu_s=1.1 * 1300),
               encodes=1300)
    cut = Run("film", Measured(100.0, 280.0, 560.0, 0, encoder_cpu_s=1.0 * 100), encodes=100)
    assert round(at_equal_encoder_speed(long, cut), 6) == 12.0
    assert at_equal_encoder_speed(Run("film", long.measured), cut) is None


def test_the_cut_is_the_mean_of_its_runs_before_and_after_the_long_run():
    # The machine slowed by a fifth over the long run: the cut before it took 50 s, the cut
    # after it 60 s. Against the first alone the long run's 660 s read 13.2x; against the
    # mean of the two, which saw the same drift on average, 12.0x.
    before = Run("cut", Measured(50.0, 300.0, 600.0, 0, encoder_cpu_s=100.0, own_cpu_s=5.0),
                 chunks=50, encodes=100, stages=Stages(startup_s=1.0, inspection_s=8.0))
    after = Run("cut", Measured(60.0, 320.0, 620.0, 0, encoder_cpu_s=120.0, own_cpu_s=7.0),
                chunks=50, encodes=102, stages=Stages(startup_s=2.0, inspection_s=None))
    cut = bracketed(before, after)
    assert cut.measured.wall_s == 55.0
    assert (cut.measured.encoder_cpu_s, cut.measured.own_cpu_s) == (110.0, 6.0)
    assert (cut.measured.peak_rss_mib, cut.measured.peak_tree_rss_mib) == (310.0, 610.0)
    assert cut.stages == Stages(startup_s=1.5)  # a stage one run did not log is missing
    assert (cut.chunks, cut.encodes) == (50, 101)
    long = Run("film", Measured(660.0, 330.0, 700.0, 0), chunk_renditions=1200)
    assert [g.value for g in goals(long, cut, 12.0, None, None)][3] == "12.00x"
    assert bracketed(before, Run("cut", after.measured)).encodes is None


def _run(wall_s: float, rss: float, own_cpu_s: float, chunk_renditions: int,
         tail_s: float | None) -> Run:
    return Run("film", Measured(wall_s, rss, rss * 2, 0, own_cpu_s=own_cpu_s),
               chunk_renditions=chunk_renditions, stages=Stages(tail_s=tail_s))


def test_goals_pass_and_fail_on_their_thresholds():
    long = _run(1200.0, 300.0, 0.25 * 3000, 3000, tail_s=20.0)
    cut = _run(100.0, 280.0, 0.25 * 250, 250, tail_s=5.0)
    verdicts = [g.passed for g in goals(long, cut, 12.0, no_vmaf_s=1050.0, baseline_s=1000.0)]
    assert verdicts == [True, True, True, True, True]

    slow = _run(1300.0, 400.0, 0.4 * 3000, 3000, tail_s=30.0)
    found = goals(slow, cut, 12.0, no_vmaf_s=1200.0, baseline_s=1000.0)
    assert [g.passed for g in found] == [False, False, False, False, False]
    assert found[0].value == "30.0 s = 2.3%"
    assert found[3].name == "12x the length costs 11.50x-12.50x the time"

    missing = goals(_run(1200.0, 300.0, 0.0, 0, tail_s=None), cut, 12.0, None, None)
    assert [g.passed for g in missing] == [None, None, True, True, None]


def test_the_playback_check_seeks_to_a_minute_before_the_end():
    assert seek_point(7200.0, None) == 7140.0  # 1:59:00
    assert seek_point(360.0, None) == 300.0
    assert seek_point(30.0, None) == 10.0
    assert seek_point(7200.0, 5.0) == 5.0


def test_a_seek_aborting_hls_js_loads_is_no_playback_failure():
    errors = ["hls.js: networkError/aborted: Aborted",
              "hls.js: fatal networkError/manifestLoadError",
              "dash.js: {\"code\":27}", "video: 4 MEDIA_ERR_SRC_NOT_SUPPORTED"]
    assert fatal_errors(errors) == errors[1:]


def _distribution(name: str, values: list[int]) -> SimpleNamespace:
    data = DistributionData(sum(values), len(values), min(values), max(values))
    return SimpleNamespace(key=SimpleNamespace(metric=SimpleNamespace(namespace=NAMESPACE,
                                                                      name=name)),
                           committed=DistributionResult(data), attempted=None)


def test_the_run_summary_names_the_largest_gathered_part_and_key():
    query = {"counters": [], "distributions": [
        _distribution(GATHERED_PART + "assemble (gather)", [2000, 2674]),
        _distribution(GATHERED_KEY + "assemble (gather)", [26739]),
        _distribution(GATHERED_PART + "package (gather)", [18566]),
        _distribution(GATHERED_KEY + "package (gather)", [42109]),
    ]}
    line = summary_lines(query)[-1]
    assert line == ("largest gathered part / key, pickled bytes: assemble (gather) 2,674 / "
                    "26,739; package (gather) 18,566 / 42,109")
    assert gathered_bytes([(0.0, "metrics: " + line)]) == {
        "assemble (gather)": (2674, 26739), "package (gather)": (18566, 42109)}
