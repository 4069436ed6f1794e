"""A rung's chunks allocated from their probes (`media.plan.rung_allocation`), on
synthetic probes whose truth is known: x264-like curves (ln rate falling 0.12 a CRF step,
VMAF falling 1.5 a step) of chunks that differ in rate."""

from __future__ import annotations

import dataclasses
import math

import pytest

from media.core.types import Rendition
from media.plan.allocation import CurvePoint, fit_curve
from media.plan.rung_allocation import (
    PROBE_SPREAD,
    REACH,
    WORST_P5_DROP,
    ChunkProbe,
    HeldCurve,
    allocate_rung,
    probe_crfs,
    probe_preset,
    spaced_shares,
    toward_constant,
)

AIM = 93.5


def _probe(index: int, kbps_at_23: float, vmaf_at_23: float, crf: float = 23.0,
           seconds: float = 4.0, slope: float = -1.5) -> ChunkProbe:
    points = tuple(CurvePoint(c, kbps_at_23 * math.exp(-0.12 * (c - 23.0)),
                              vmaf_at_23 + slope * (c - 23.0)) for c in probe_crfs(crf))
    return ChunkProbe(index, seconds, crf, points)


def _mean(values, weights):
    return sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)


def test_the_probes_are_two_crfs_either_side_within_x264s_range():
    assert probe_crfs(23.0) == (23.0 - PROBE_SPREAD, 23.0 + PROBE_SPREAD)
    assert probe_crfs(0.5) == (0.0, 0.5 + PROBE_SPREAD)
    assert probe_crfs(50.5) == (50.5 - PROBE_SPREAD, 51.0)


def test_bits_move_from_the_costly_chunks_to_the_cheap_ones_and_the_mean_holds():
    # Same VMAF curve, rates 100 to 1000 kb/s: a VMAF point costs ten times more in the
    # hard chunk, so equal slope aims it lower and the easy ones higher.
    probes = [_probe(0, 100, 92), _probe(1, 1000, 92), _probe(2, 300, 92)]
    chosen = allocate_rung(probes, AIM)
    assert chosen.feasible and not chosen.reason
    # The probes' mean at the constant CRFs is 92: the final preset adds the rest.
    assert chosen.offset_vmaf == pytest.approx(AIM - 92, abs=1e-6)
    assert _mean(chosen.vmafs, [4, 4, 4]) == pytest.approx(AIM, abs=0.05)
    assert chosen.crfs[1] > 23 > chosen.crfs[0]
    assert chosen.vmafs[1] < AIM < chosen.vmafs[0]
    assert chosen.crfs[0] <= chosen.crfs[2] <= chosen.crfs[1]
    assert 0.05 < chosen.predicted_saving < 0.5
    assert chosen.predicted_kbit < chosen.constant_kbit
    # Every chunk stays within the probes and a reach beyond them.
    for crf in chosen.crfs:
        assert 23 - PROBE_SPREAD - REACH <= crf <= 23 + PROBE_SPREAD + REACH
    record = chosen.record()
    assert record["feasible"] and record["aim_vmaf"] == AIM
    assert record["crf_range"] == [min(chosen.crfs), max(chosen.crfs)]


def test_probes_at_the_final_preset_are_taken_as_they_are():
    """A rung the calibration could not measure is probed at the final preset: its
    constant CRFs' mean is then what it is (here 1 over the aim; the `shots` source's
    uncalibrated rungs were 2-3 over), not pinned to the aim, so the allocation takes the chunks
    down to it, and spends less than it would on the same probes raised to the aim."""
    probes = [_probe(0, 100, AIM + 1), _probe(1, 1000, AIM + 1), _probe(2, 300, AIM + 1)]
    taken = allocate_rung(probes, AIM, at_final_preset=True)
    assert taken.offset_vmaf == 0.0 and taken.probes_at_final
    assert taken.record()["probe_preset"] == "final"
    assert _mean(taken.vmafs, [4, 4, 4]) == pytest.approx(AIM, abs=0.05)
    # each chunk is read off its own probes: the hard chunk is aimed under the others
    assert taken.vmafs[1] < AIM < taken.vmafs[0]
    raised = allocate_rung(probes, AIM)
    assert raised.offset_vmaf == pytest.approx(-1.0, abs=1e-6)
    assert raised.record()["probe_preset"] == "trial"
    assert taken.predicted_saving > raised.predicted_saving + 0.02


def test_a_rung_the_calibration_could_not_measure_is_probed_at_the_final_preset():
    rung = Rendition("432p", 768, 432, 26.6, 642, 1284, target_vmaf=61.45)
    assert probe_preset(rung, "veryfast", "medium") == "veryfast"
    assert probe_preset(dataclasses.replace(rung, calibrated=False), "veryfast",
                        "medium") == "medium"


def test_identical_chunks_keep_the_constant_crf():
    chosen = allocate_rung([_probe(i, 400, 92) for i in range(4)], AIM)
    assert set(chosen.crfs) == {23.0}
    assert chosen.predicted_saving == pytest.approx(0, abs=1e-6)


def test_no_chunk_is_aimed_under_the_floor_on_its_worst_frames():
    probes = [_probe(0, 50, 92), _probe(1, 5000, 92)]
    chosen = allocate_rung(probes, AIM, floor_vmaf=AIM - 1.0)
    assert min(chosen.vmafs) >= AIM - 1.0 - 1e-6
    looser = allocate_rung(probes, AIM, floor_vmaf=AIM - 6.0)
    assert min(looser.vmafs) < AIM - 1.0
    assert looser.predicted_kbit < chosen.predicted_kbit
    # Both chunks' worst frames are at the aim under constant CRFs: none goes more than
    # WORST_P5_DROP under that
    assert looser.record()["floor_vmaf"] == AIM - WORST_P5_DROP
    # The floor is on a chunk's 5th percentile: a chunk whose worst frames are 5 under
    # its mean keeps its mean 5 over the floor.
    gappy = dataclasses.replace(probes[1], p5_gap=5.0)
    held = allocate_rung([probes[0], gappy], AIM, floor_vmaf=AIM - 6.0)
    assert held.vmafs[1] - 5.0 >= AIM - 6.0 - 1e-6
    assert held.vmafs[1] > looser.vmafs[1]


def test_no_chunk_goes_far_under_the_constant_allocations_worst_stretch():
    # Alike in their frames (a gap of 2 between mean and 5th percentile), a hundred
    # times apart in rate: the floor at the aim less 6 alone would send the costly chunk
    # 4 under the worst stretch constant CRFs give (the aim less 2).
    probes = [dataclasses.replace(_probe(0, 50, 92), p5_gap=2.0),
              dataclasses.replace(_probe(1, 5000, 92), p5_gap=2.0)]
    chosen = allocate_rung(probes, AIM, floor_vmaf=AIM - 6.0)
    worst_constant = AIM - 2.0
    assert chosen.floor_vmaf == pytest.approx(worst_constant - WORST_P5_DROP)
    assert min(v - 2.0 for v in chosen.vmafs) >= worst_constant - WORST_P5_DROP - 1e-6
    assert chosen.predicted_saving > 0  # the cheap chunk still pays for it
    # where constant CRFs leave the worst stretch far under the aim, the aim less 6 holds
    gappy = [dataclasses.replace(p, p5_gap=8.0) for p in probes]
    assert allocate_rung(gappy, AIM, floor_vmaf=AIM - 6.0).floor_vmaf == AIM - 6.0


def test_a_saturated_chunk_is_not_sent_under_its_lowest_probe():
    # A still picture: its VMAF hardly moves with CRF (97 at either probe). A straight
    # line would promise more VMAF under the probes; the held curve promises none.
    still = ChunkProbe(0, 4.0, 23.0, (CurvePoint(21.0, 20.0, 97.2), CurvePoint(25.0, 18.0, 96.8)))
    chosen = allocate_rung([still, _probe(1, 800, 90)], AIM)
    assert chosen.crfs[0] >= 21.0
    curve = fit_curve(still.points)
    held = HeldCurve(curve.ln_kbps_at_0, curve.ln_kbps_per_crf, curve.vmaf_coeffs,
                     curve.fit_span)
    assert held.vmaf(10.0) == pytest.approx(held.vmaf(21.0))
    assert curve.vmaf(10.0) > held.vmaf(10.0)
    # Over the highest probe, VMAF falls twice as fast as between the probes, and more
    # than REACH over it, no CRF is taken.
    assert held.vmaf(25.0 + REACH) - held.vmaf(25.0) == pytest.approx(
        2 * (curve.vmaf(25.0 + REACH) - curve.vmaf(25.0)))
    assert held.vmaf(25.0 + REACH + 0.1) == 0.0


def test_no_chunk_is_sent_further_than_reach_over_its_own_probes():
    # A hard shot probed where VMAF hardly moves (both probes near 0), beside a bars
    # chunk probed near CRF 48: the solver's grid spans both, but the hard chunk may go
    # no further than REACH over its own highest probe.
    flat = ChunkProbe(0, 4.0, 33.0, (CurvePoint(31.0, 900.0, 3.0), CurvePoint(35.0, 600.0, 2.6)))
    bars = _probe(1, 30, 92, crf=48.0)
    chosen = allocate_rung([flat, bars], 50.0, floor_vmaf=0.0)
    assert chosen.crfs[0] <= 35.0 + REACH


def test_a_chunk_without_probes_keeps_its_constant_crf_and_the_others_meet_the_aim():
    probes = [_probe(0, 100, 92), ChunkProbe(1, 4.0, 24.5, ()), _probe(2, 1000, 92)]
    chosen = allocate_rung(probes, AIM)
    assert chosen.crfs[1] == 24.5 and chosen.vmafs[1] == AIM
    assert _mean([chosen.vmafs[0], chosen.vmafs[2]], [4, 4]) == pytest.approx(AIM, abs=0.05)
    assert "1 chunk(s) without probes" in chosen.reason
    none = allocate_rung([ChunkProbe(0, 4.0, 24.5, ())], AIM)
    assert none.crfs == (24.5,) and not none.feasible and "no chunk could be probed" in none.reason


def test_longer_chunks_weigh_more_in_the_mean():
    probes = [_probe(0, 100, 92, seconds=2.0), _probe(1, 1000, 92, seconds=10.0)]
    chosen = allocate_rung(probes, AIM)
    assert _mean(chosen.vmafs, [2.0, 10.0]) == pytest.approx(AIM, abs=0.05)


def test_the_constant_crfs_stay_a_choice_where_the_floor_would_cost_more():
    # A chunk whose worst frames are far under its mean: at its constant CRF they are
    # under the floor already. It is held there, no lower, and the rung still saves.
    gappy = dataclasses.replace(_probe(1, 1000, 92), p5_gap=12.0)
    chosen = allocate_rung([_probe(0, 100, 92), gappy], AIM, floor_vmaf=AIM - 6.0)
    assert chosen.feasible, chosen.reason
    assert chosen.vmafs[1] >= 92 + (AIM - 92) - 0.2 - 1e-6
    assert chosen.predicted_kbit <= chosen.constant_kbit


def test_a_rung_goes_toward_its_allocation_only_as_far_as_the_ladder_allows():
    # Two rungs 1.5x apart at their constant CRFs; the top one would save 30 %, the one
    # under it nothing: fully allocated they would be 1.05x apart.
    top = allocate_rung([_probe(0, 100, 92), _probe(1, 1000, 92)], AIM)
    under = allocate_rung([_probe(0, 100 / 1.5, 92), _probe(1, 100 / 1.5, 92)], AIM)
    assert top.predicted_saving > 0.05 and under.predicted_saving == pytest.approx(0, abs=1e-6)
    ratio = top.constant_kbit / under.constant_kbit
    assert ratio == pytest.approx(1100 / (200 / 1.5))
    shares = spaced_shares([top, under], min_ratio=1.37)
    assert shares[1] == 1.0 and shares[0] == 1.0  # 8x apart: room enough
    tight_under = allocate_rung([_probe(0, 1100 / 1.45 / 2, 92)] * 2, AIM)
    shares = spaced_shares([top, tight_under], min_ratio=1.37)
    assert 0 < shares[0] < 1 and shares[1] == 1.0
    carried = toward_constant(top, shares[0])
    assert carried.predicted_kbit / tight_under.predicted_kbit == pytest.approx(1.37, rel=0.02)
    for crf, full, constant in zip(carried.crfs, top.crfs, (23.0, 23.0), strict=True):
        assert min(full, constant) <= crf <= max(full, constant)
    assert toward_constant(top, 0.0).crfs == (23.0, 23.0)
    assert not toward_constant(top, 0.0).applied
    # A rung whose allocation costs more than the constant one keeps the constant one.
    dear = dataclasses.replace(top, predicted_kbit=top.constant_kbit * 1.1)
    assert spaced_shares([dear, under], 1.37)[0] == 0.0


@pytest.mark.parametrize("other", [{"ladder": "fixed"}, {"score_vmaf": False},
                                   {"max_attempts": 1}])
def test_optimal_allocation_without_a_gate_is_refused_before_the_run(other):
    from media.core.config import JobConfig
    from media.core.errors import ConfigurationError

    assert JobConfig(output_root="out", allocation="optimal").validate().allocates
    with pytest.raises(ConfigurationError, match=r"--allocation optimal .* needs"):
        JobConfig(output_root="out", allocation="optimal", **other).validate()
    with pytest.raises(ConfigurationError, match="--allocation 'best'"):
        JobConfig(output_root="out", allocation="best").validate()
