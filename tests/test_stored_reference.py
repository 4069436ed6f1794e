"""A chunk's VMAF reference frames, kept by its encode process and read by every libvmaf
scoring of its encodes instead of a decode of the source (real FFmpeg, a small clip)."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from media.core import faults
from media.core.errors import ToolFailed
from media.core.types import ChunkGroup, ChunkTask, Rendition
from media.encode import scoring as scoring_module
from media.encode.chunk import encode_renditions, encode_staged, stage_chunk
from media.encode.encoded import rendition_scratch
from media.encode.scoring import (
    keeps_reference,
    reference_file,
    score_encoded,
    scored,
    scored_together,
)
from media.quality.vmaf import stored_reference_bytes
from tests.media_factory import second_chunk_task
from transforms.encode import _EncodeChunkFn

TOLERANCE = 1e-3
"""Pooled (mean) VMAF from the kept reference against VMAF from the decoded source."""
NUT_HEADER_MAX = 4096
"""Bytes a kept reference takes beyond its raw frames: NUT's header and packet headers."""
RENDITIONS = (Rendition("180p-250k", 320, 180, 23, 250, 500),
              Rendition("180p-150k", 320, 180, 28, 150, 300),
              Rendition("90p-80k", 160, 90, 26, 80, 160))


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> ChunkTask:
    return second_chunk_task(str(tmp_path_factory.mktemp("stored-reference")),
                             RENDITIONS[0], "ultrafast")


def _tasks(task: ChunkTask, **changes) -> list[ChunkTask]:
    return [dataclasses.replace(task, rendition=r, **changes) for r in RENDITIONS]


def _scorings(argvs: list[list[str]]) -> list[list[str]]:
    return [argv for argv in argvs if any("libvmaf" in a for a in argv)]


def _inputs(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-i"]


def _group_encode(task: ChunkTask, scratch: Path, step: int, **changes):
    tasks = _tasks(task, vmaf_subsample=step, **changes)
    scratch.mkdir(parents=True, exist_ok=True)
    staged = stage_chunk(tasks[0], task.source.source_uri, str(scratch))
    return tasks, staged, encode_renditions(tasks, staged, str(scratch))


@pytest.mark.parametrize("step, vmaf_height", [(1, 180), (5, 180), (5, 360)])
def test_a_group_encode_keeps_the_reference_and_it_scores_as_the_source(task, tmp_path, step,
                                                                         vmaf_height):
    tasks, staged, firsts = _group_encode(task, tmp_path, step, vmaf_height=vmaf_height)
    width = 320 * vmaf_height // 180
    kept = tmp_path / f"reference-{width}x{vmaf_height}-s{step}.nut"
    assert str(kept) == reference_file(str(tmp_path), tasks[0], step)
    header = kept.stat().st_size - stored_reference_bytes(50, width, vmaf_height, step)
    assert 0 < header < NUT_HEADER_MAX  # the raw frames the step needs
    for t, first in zip(tasks, firsts, strict=True):
        assert first.reference_path == str(kept)
        folder = rendition_scratch(str(tmp_path), t)
        stored, _, _ = score_encoded(t, first.path, staged.path, os.path.join(folder, "s.json"),
                                  step, reference_path=first.reference_path)
        decoded, _, _ = score_encoded(t, first.path, staged.path, os.path.join(folder, "d.json"),
                                   step)
        assert stored.frame_count == decoded.frame_count == len(range(0, 50, step))
        assert stored.mean == pytest.approx(decoded.mean, abs=TOLERANCE)
        assert 50 < decoded.mean < 100


def test_the_encodes_are_the_same_with_or_without_the_reference(task, tmp_path):
    _, _, keeping = _group_encode(task, tmp_path / "keeping", 5)
    _, _, plain = _group_encode(task, tmp_path / "plain", 5, score_vmaf=False)
    assert all(e.reference_path for e in keeping)
    assert not any(e.reference_path for e in plain)
    assert not list((tmp_path / "plain").glob("*.nut"))
    for a, b in zip(keeping, plain, strict=True):
        assert Path(a.path).read_bytes() == Path(b.path).read_bytes()


def test_first_scores_and_gate_re_encodes_read_the_reference(task, tmp_path, argvs):
    tasks, staged, firsts = _group_encode(task, tmp_path, 5)
    kept = firsts[0].reference_path
    folder = rendition_scratch(str(tmp_path), tasks[1])
    first = scored(tasks[1], firsts[1], staged, folder, 0, vmaf_subsample=5)
    again = dataclasses.replace(tasks[1], rendition=dataclasses.replace(tasks[1].rendition,
                                                                        crf=34))
    regated = encode_staged(again, staged, folder, 1, vmaf_subsample=5, reference_path=kept)
    assert regated.reference_path == kept and regated.vmaf.mean != first.vmaf.mean
    encodes = [a for a in argvs if not any("libvmaf" in x for x in a)]
    assert [_inputs(a) for a in _scorings(argvs)] == [
        [firsts[1].path, kept], [regated.path, kept]]
    # The group process kept it; the re-encode did not keep it again.
    assert [any(x == kept for x in a) for a in encodes] == [True, False]


def test_a_lone_encode_keeps_the_reference_for_its_own_re_encodes(task, tmp_path, argvs):
    staged = stage_chunk(task, task.source.source_uri, str(tmp_path))
    first = encode_staged(task, staged, str(tmp_path), 0, vmaf_subsample=5)
    assert first.reference_path == reference_file(str(tmp_path), task, 5)
    again = dataclasses.replace(task, rendition=dataclasses.replace(task.rendition, crf=34))
    second = encode_staged(again, staged, str(tmp_path), 1, vmaf_subsample=5)
    assert second.reference_path == first.reference_path
    assert [_inputs(a)[1] for a in _scorings(argvs)] == [first.reference_path] * 2


def test_a_gated_group_scores_every_encode_from_the_reference(task, tmp_path, argvs):
    # A target out of reach, under caps with room (a capped encode is not re-encoded).
    gated = [dataclasses.replace(t, output_root=str(tmp_path / "out"), max_attempts=2,
                                 vmaf_subsample=5,
                                 rendition=dataclasses.replace(
                                     t.rendition, target_vmaf=101.0, maxrate_kbps=50_000,
                                     bufsize_kbit=100_000))
             for t in _tasks(task)]
    results = list(_EncodeChunkFn(60).process(ChunkGroup(tuple(gated))))
    assert [len(r.attempts) for r in results] == [2, 2, 2]  # each one re-encoded once
    scorings = _scorings(argvs)
    # The three first encodes scored in one process, then each re-encode on its own.
    assert [len(_inputs(a)) for a in scorings] == [4, 2, 2, 2]
    # One reference, kept by the group's process, read by every scoring.
    [kept] = {i for a in scorings for i in _inputs(a) if i.endswith(".nut")}
    assert kept.endswith("reference-320x180-s5.nut")
    keeping = [a for a in argvs if kept in a and a not in scorings]
    assert len(keeping) == 1 and len([o for o in keeping[0] if o.endswith(".mp4")]) == 3


def test_over_the_cap_nothing_is_kept_and_the_source_is_decoded(task, tmp_path, argvs,
                                                                 monkeypatch):
    monkeypatch.setattr(scoring_module, "REFERENCE_CAP_BYTES",
                        stored_reference_bytes(50, 320, 180, 5) - 1)
    tasks, staged, firsts = _group_encode(task, tmp_path, 5)
    assert not list(tmp_path.glob("*.nut"))
    assert not any(e.reference_path for e in firsts)
    out = scored(tasks[0], firsts[0], staged, rendition_scratch(str(tmp_path), tasks[0]), 0,
                 vmaf_subsample=5)
    assert out.vmaf is not None and out.vmaf.frame_count == 10 and out.vmaf.mean > 50
    [scoring] = _scorings(argvs)
    assert _inputs(scoring) == [firsts[0].path, staged.path]


def test_a_failed_group_encode_keeps_nothing(task, tmp_path, monkeypatch):
    kept = Path(reference_file(str(tmp_path), task, 5))

    def kill_once_writing(site, labels):
        def on_start(proc):
            deadline = time.monotonic() + 30
            while not (kept.exists() and kept.stat().st_size) and time.monotonic() < deadline:
                time.sleep(0.001)
            proc.kill()
        return on_start

    monkeypatch.setattr(faults, "ffmpeg_hook_all", kill_once_writing)
    with pytest.raises(ToolFailed):
        _group_encode(task, tmp_path, 5)
    assert not kept.exists()


def test_a_failed_scoring_from_the_reference_is_not_scored_from_the_source(task, tmp_path,
                                                                           argvs):
    tasks, staged, firsts = _group_encode(task, tmp_path, 5)
    os.remove(firsts[0].reference_path)
    with pytest.raises(ToolFailed):
        scored(tasks[0], firsts[0], staged, rendition_scratch(str(tmp_path), tasks[0]), 0,
               vmaf_subsample=5)
    assert len(_scorings(argvs)) == 1


def test_a_reference_serves_only_its_own_size_and_step(task, tmp_path):
    _, staged, firsts = _group_encode(task, tmp_path, 5)
    with pytest.raises(ValueError, match="step 1"):
        score_encoded(task, firsts[0].path, staged.path, str(tmp_path / "x.json"), 1,
                      reference_path=firsts[0].reference_path)


def test_no_reference_is_kept_for_vmaf_torch_or_without_scoring(task):
    torch = dataclasses.replace(task, settings=dataclasses.replace(task.settings,
                                                                   vmaf_backend="torch"))
    assert keeps_reference(task, 5)
    assert not keeps_reference(torch, 5)
    assert not keeps_reference(dataclasses.replace(task, score_vmaf=False), 5)


def test_a_groups_first_encodes_score_together_as_each_alone(task, tmp_path, argvs):
    tasks, staged, firsts = _group_encode(task, tmp_path, 5)
    together = scored_together(tasks, firsts, str(tmp_path))
    [joint] = _scorings(argvs)
    assert sorted(_inputs(joint)) == sorted([*(e.path for e in firsts),
                                             firsts[0].reference_path])
    for t, first, done in zip(tasks, firsts, together, strict=True):
        assert done.vmaf_log_path == os.path.join(rendition_scratch(str(tmp_path), t),
                                                  "vmaf-0.json")
        alone_dir = tmp_path / "alone" / t.rendition.rendition_id
        alone_dir.mkdir(parents=True)
        alone = scored(t, first, staged, str(alone_dir), 0, vmaf_subsample=5)
        assert done.vmaf == alone.vmaf  # the same frames, the same scores
        assert done.vmaf.frame_count == 10 and done.score_s == together[0].score_s > 0
    assert len({d.vmaf.mean for d in together}) == 3


def test_a_failed_joint_scoring_leaves_each_rendition_to_be_scored_alone(task, tmp_path,
                                                                         argvs, monkeypatch):
    monkeypatch.setenv(faults.ENV, "kill-ffmpeg:score:1")
    faults.reset()
    results = list(_EncodeChunkFn(60).process(ChunkGroup(tuple(
        _tasks(task, vmaf_subsample=5, output_root=str(tmp_path / "out"))))))
    assert faults.fired() == {"kill-ffmpeg:score:1": 1}
    assert [len(_inputs(a)) for a in _scorings(argvs)] == [4, 2, 2, 2]
    assert [r.vmaf.frame_count for r in results] == [10, 10, 10]
    assert all(r.retries == () and len(r.attempts) == 1 for r in results)


def test_one_encode_to_score_is_left_to_scored(task, tmp_path, argvs):
    tasks, _, firsts = _group_encode(task, tmp_path, 5)
    mixed = [firsts[0], ValueError("its encode failed"), firsts[2]]
    unscoring = [tasks[0], tasks[1], dataclasses.replace(tasks[2], score_vmaf=False)]
    assert scored_together(unscoring, mixed, str(tmp_path)) == mixed
    assert not _scorings(argvs)
