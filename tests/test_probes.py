"""A chunk probed for the optimal allocation (`media.encode.probes`), with real FFmpeg and
libvmaf on a small clip: a rung the calibration measured is probed at the trial preset,
one it could not at the final preset, each preset in its own encode process."""

from __future__ import annotations

import dataclasses
import os
import re

import pytest

from media.core.types import ChunkTask, Rendition
from media.encode.chunk import stage_chunk
from media.encode.encoded import rendition_scratch
from media.encode.probes import probe_chunk, probe_tasks
from media.plan.rung_allocation import probe_crfs
from tests.media_factory import second_chunk_task

TRIAL, FINAL = "ultrafast", "veryfast"
SUBME = {"ultrafast": 0, "veryfast": 2}
"""x264's sub-pixel motion estimation level at each preset, as its SEI writes it."""
MEASURED = Rendition("180p-250k", 320, 180, 24, 2500, 5000, target_vmaf=90.0)
UNMEASURED = dataclasses.replace(Rendition("90p-80k", 160, 90, 27, 800, 1600,
                                           target_vmaf=80.0), calibrated=False)
"""Caps far above what the clip costs, so the CRF alone sets each probe's rate and quality
(under a VBV cap a lower CRF can starve and score less than a higher one)."""


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> ChunkTask:
    return second_chunk_task(str(tmp_path_factory.mktemp("probes")), MEASURED, FINAL)


def _subme(path: str) -> int:
    """The sub-pixel ME level x264 wrote into the encode's SEI: which preset made it."""
    with open(path, "rb") as handle:
        found = re.search(rb"subme=(\d+)", handle.read())
    assert found, f"no x264 SEI in {path}"
    return int(found.group(1))


def test_each_rung_is_probed_at_its_own_preset_in_one_process_per_preset(
        task, tmp_path, argvs):
    tasks = [task, dataclasses.replace(task, rendition=UNMEASURED)]
    probes = probe_tasks(tasks, TRIAL)
    assert [p.settings.preset for p in probes] == [TRIAL, TRIAL, FINAL, FINAL]
    staged = stage_chunk(task, task.source.source_uri, str(tmp_path))
    probed = probe_chunk(tasks, staged, str(tmp_path), TRIAL)

    encodes = [a for a in argvs if "libx264" in a]
    assert sorted(a[a.index("-preset") + 1] for a in encodes) == sorted([TRIAL, FINAL])
    for probe in probes:  # what each preset wrote, read back from the bitstream
        made = os.path.join(rendition_scratch(str(tmp_path), probe), "chunk-0.mp4")
        assert _subme(made) == SUBME[probe.settings.preset]
    for chunk_probe, rung in zip(probed.probes, (MEASURED, UNMEASURED), strict=True):
        assert [p.crf for p in chunk_probe.points] == list(probe_crfs(rung.crf))
        assert all(p.kbps > 0 and 0 < p.vmaf <= 100 for p in chunk_probe.points)
        # the higher CRF spends fewer bits for less quality
        low, high = chunk_probe.points
        assert high.kbps < low.kbps and high.vmaf < low.vmaf
    assert probed.encode_cpu_s > 0 and probed.score_cpu_s > 0
