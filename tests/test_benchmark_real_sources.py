"""The real-sources benchmark's table formatting (benchmarks/real_sources.py), on made-up
rungs: no pipeline run."""

from __future__ import annotations

from benchmarks.real_sources import rung_cells, table
from tests.test_real_sources import Rung


def test_a_table_is_markdown_and_a_pipe_in_a_cell_does_not_split_it():
    assert table(("a", "b"), [("1", "x | y")]).splitlines() == [
        "| a | b |", "| --- | --- |", "| 1 | x \\| y |"]


def test_rung_cells_show_frames_rates_vmaf_and_the_invariant():
    apart = [Rung("v1", 800.0, 95.04, 100), Rung("v2", 400.0, 88.0, 100)]
    assert rung_cells(apart) == ("100, 100", "v1 800 (95.0), v2 400 (88.0)", "holds")
    close = [Rung("v1", 500.0, None, 100), Rung("v2", 450.0, None, 99)]
    frames, rates, invariant = rung_cells(close)
    assert (frames, rates) == ("100, 99", "v1 500, v2 450")
    assert invariant == "v2 450 kb/s is not 1.3x under v1 500 kb/s"
