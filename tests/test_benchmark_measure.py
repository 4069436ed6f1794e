"""Tests for benchmarks/_measure.py: the peak memory of a command's process tree."""

from __future__ import annotations

import sys

from benchmarks._measure import run_measured

FORK_THEN_EXEC = """
import os, subprocess, sys, time
big = b"x" * (150 << 20)  # written, so resident
pid = os.fork()
if pid == 0:  # a child that has not exec'd yet: its memory is its parent's
    time.sleep(1.5)
    os._exit(0)
subprocess.run([sys.executable, "-c", "import time; b = b'y' * (60 << 20); time.sleep(1.5)"])
os.waitpid(pid, 0)
"""


def test_the_tree_counts_a_child_that_has_not_exec_d_once_and_one_that_has(tmp_path):
    measured = run_measured([sys.executable, "-c", FORK_THEN_EXEC], str(tmp_path / "log"),
                            interval_s=0.1)
    assert measured.returncode == 0
    assert measured.peak_rss_mib > 150
    # The parent and the exec'd child (60 MiB more), not the fork's copy of the parent.
    assert measured.peak_rss_mib + 50 < measured.peak_tree_rss_mib
    assert measured.peak_tree_rss_mib < measured.peak_rss_mib + 100
