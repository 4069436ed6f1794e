"""The encode DoFn on its own: stored outputs, resume by reuse, and dead letters."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from apache_beam import pvalue

from media.core.types import ChunkGroup, ChunkTask, EncodeSettings, Rendition
from media.inspect.probe import inspect_source
from media.plan.chunking import grid_chunks, segment_grid
from tests.media_factory import make_clip
from transforms.encode import _EncodeChunkFn


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> ChunkTask:
    folder = tmp_path_factory.mktemp("encode-stage")
    clip = make_clip(str(folder / "clip.mp4"), duration_s=4, width=320, height=180, gop=25)
    source = inspect_source(clip, clip, "clip")
    grid = segment_grid(source.frame_rate, 2.0, 1)
    chunk = grid_chunks(source.frame_count, grid)[1]
    return ChunkTask(source=source, rendition=Rendition("180p-250k", 320, 180, 23, 250, 500),
                     chunk=chunk, chunk_count=2, grid=grid,
                     output_root=str(folder / "out"), settings=EncodeSettings(preset="ultrafast"),
                     vmaf_height=180)


def test_a_finished_chunk_is_stored_and_reused_on_a_rerun(task):
    first = list(_EncodeChunkFn(60).process(task))
    assert len(first) == 1 and not first[0].reused
    result = first[0]
    assert Path(result.chunk_uri).is_file() and result.frame_count == 50
    assert result.vmaf is not None and result.vmaf.mean > 80
    # The chunk wrote its final segment (chunk 1 of 2-second chunks: segment 2, from 2 s
    # on the title's 90 kHz timeline) and keeps its init segment in the work area.
    title = Path(task.output_root) / "clip"
    [segment] = result.segments
    assert (segment.number, segment.uri, segment.start_ticks, segment.duration_ticks) == (
        2, "video/180p-250k/seg-00002.m4s", 180000, 180000)
    assert (title / segment.uri).stat().st_size == segment.size_bytes
    assert abs(segment.size_bytes - result.size_bytes) < 2000  # the same frames
    record = json.loads(Path(result.chunk_uri).with_suffix(".json").read_text())
    assert record["segments"][0]["size_bytes"] == segment.size_bytes
    mtime = (title / segment.uri).stat().st_mtime_ns

    again = list(_EncodeChunkFn(60).process(task))
    assert again[0].reused and again[0].size_bytes == result.size_bytes
    assert again[0].vmaf == result.vmaf
    assert again[0].segments == result.segments
    assert (title / segment.uri).stat().st_mtime_ns == mtime  # not encoded again


def test_other_settings_are_not_served_a_stale_chunk(task):
    list(_EncodeChunkFn(60).process(task))
    changed = dataclasses.replace(task, rendition=dataclasses.replace(task.rendition, crf=30))
    [result] = list(_EncodeChunkFn(60).process(changed))
    assert not result.reused


def test_a_source_that_fails_to_encode_becomes_a_dead_letter(task, tmp_path):
    broken = tmp_path / "clip.mp4"
    data = bytearray(Path(task.source.source_uri).read_bytes())
    broken.write_bytes(bytes(data[: len(data) // 3]))  # the chunk's frames are gone
    source = dataclasses.replace(task.source, source_uri=str(broken))
    doomed = dataclasses.replace(task, source=source, output_root=str(tmp_path / "out"))
    [out] = list(_EncodeChunkFn(60).process(doomed))
    assert isinstance(out, pvalue.TaggedOutput) and out.tag == "dead_letter"
    assert out.value.stage.startswith("encode (180p-250k, chunk 1)")
    assert out.value.hint


@pytest.mark.parametrize("tries, kept", [
    # Within the window [94, 97]: the smallest of those that are.
    ([(23, 92.0, 1000), (20, 95.5, 1400), (21, 94.2, 1200)], 21),
    # None within; the smallest that still reaches the target (94).
    ([(23, 99.0, 1500), (27, 98.0, 1100)], 27),
    # None reaches it: the best-scoring one.
    ([(23, 88.0, 1000), (18, 91.0, 1800), (16, 90.5, 2000)], 18),
])
def test_the_gate_keeps_the_right_encode(task, tries, kept):
    from media.core.types import Attempt
    from media.plan.rate_control import kept_attempt

    gated = dataclasses.replace(task, rendition=dataclasses.replace(task.rendition,
                                                                    target_vmaf=95.0))
    attempts = [Attempt(crf, size / 500, vmaf) for crf, vmaf, size in tries]
    chosen = kept_attempt(attempts, [size for _, _, size in tries], gated)
    assert attempts[chosen].crf == kept


# --- every rendition of a chunk in one FFmpeg process -----------------------------------


def _group(task: ChunkTask, out: str):
    from media.core.types import ChunkGroup

    one_thread = dataclasses.replace(task.settings, threads=1)  # x264 is deterministic so
    renditions = [Rendition("180p-250k", 320, 180, 23, 250, 500),
                  Rendition("180p-150k", 320, 180, 28, 150, 300),
                  Rendition("90p-80k", 160, 90, 26, 80, 160)]
    return ChunkGroup(tuple(dataclasses.replace(task, rendition=r, output_root=out,
                                                settings=one_thread) for r in renditions))


def test_a_chunks_renditions_encoded_together_equal_those_encoded_alone(task, tmp_path):
    group = _group(task, str(tmp_path / "together"))
    together = list(_EncodeChunkFn(60).process(group))
    alone = [r for t in group.tasks
             for r in _EncodeChunkFn(60).process(dataclasses.replace(
                 t, output_root=str(tmp_path / "alone")))]
    assert [r.rendition_id for r in together] == ["180p-250k", "180p-150k", "90p-80k"]
    for a, b in zip(together, alone, strict=True):
        assert Path(a.chunk_uri).read_bytes() == Path(b.chunk_uri).read_bytes()  # inits
        for x, y in zip(a.segments, b.segments, strict=True):
            assert (Path(tmp_path / "together" / "clip" / x.uri).read_bytes()
                    == Path(tmp_path / "alone" / "clip" / y.uri).read_bytes())
        assert a.vmaf == b.vmaf and a.frame_count == b.frame_count == 50
    # One process's seconds, shared by pixels: the two 320x180 renditions four times
    # the 160x90 one's share.
    assert together[0].encode_s == pytest.approx(4 * together[2].encode_s, rel=1e-6)


def test_a_group_reuses_finished_renditions_and_encodes_the_rest(task, tmp_path):
    group = _group(task, str(tmp_path / "out"))
    [done] = list(_EncodeChunkFn(60).process(group.tasks[1]))
    results = list(_EncodeChunkFn(60).process(group))
    assert {r.rendition_id: r.reused for r in results} == {
        "180p-150k": True, "180p-250k": False, "90p-80k": False}
    assert next(r for r in results if r.reused).size_bytes == done.size_bytes


def test_a_killed_group_process_costs_each_rendition_one_try(task, tmp_path, monkeypatch):
    from media.core import faults

    monkeypatch.setenv(faults.ENV, "kill-ffmpeg:encode@/90p-80k/:1")
    faults.reset()
    results = list(_EncodeChunkFn(60, retry_backoff_s=0).process(_group(task, str(tmp_path))))
    assert faults.fired() == {"kill-ffmpeg:encode@/90p-80k/:1": 1}
    assert sorted(r.rendition_id for r in results) == ["180p-150k", "180p-250k", "90p-80k"]
    assert all(r.retries == ("FFmpeg was killed by SIGKILL",) for r in results), results


def test_each_chunk_is_encoded_at_its_own_crf_together_or_alone(task, tmp_path):
    """A per-title rendition's CRF changes over the title (`crf_offsets`): the chunk's
    first encode, in a group or alone, is made at the CRF at its middle frame, and the
    plan's rendition is what the result still names."""
    from media.plan.rate_control import chunk_crf

    # samples at frames 0 and 100: the chunk (frames 50-99, middle 75) gets +1.5
    changing = Rendition("180p-250k", 320, 180, 23, 250, 500, crf_offsets=((0, 0.0),
                                                                            (100, 2.0)))
    assert task.chunk.start_frame == 50 and chunk_crf(changing, task.chunk).crf == 24.5
    plain = dataclasses.replace(task, rendition=dataclasses.replace(changing, crf_offsets=()),
                                output_root=str(tmp_path / "plain"))
    changed = dataclasses.replace(task, rendition=changing, output_root=str(tmp_path / "alone"))
    [at_23] = _EncodeChunkFn(60).process(plain)
    [alone] = _EncodeChunkFn(60).process(changed)
    [together, _] = _EncodeChunkFn(60).process(ChunkGroup((
        dataclasses.replace(changed, output_root=str(tmp_path / "together")),
        dataclasses.replace(plain, rendition=Rendition("90p-80k", 160, 90, 26, 80, 160),
                            output_root=str(tmp_path / "together")))))
    assert [a.crf for a in alone.attempts] == [a.crf for a in together.attempts] == [24.5]
    assert alone.size_bytes < at_23.size_bytes  # a higher CRF: fewer bits
    # a slim record: the plan's rendition by its id; only a title's first chunk carries
    # its whole task
    assert alone.rendition_id == changing.rendition_id and alone.task is None


def test_the_gate_does_not_retry_a_chunk_the_vbv_cap_holds(task, tmp_path):
    """A target out of reach (VMAF 99 at CRF 30): capped at 40 kb/s the first encode
    spends the cap, so a lower CRF could add no bits: one encode, kept, and the report
    says why it missed. With room under the cap the gate tries a lower CRF."""
    from media.plan.rate_control import held_by_cap
    from media.report.title_report import _chunk_entry

    def gate(maxrate: int, out: str):
        rendition = Rendition("180p", 320, 180, 30, maxrate, 2 * maxrate, target_vmaf=99.0)
        gated = dataclasses.replace(task, rendition=rendition, output_root=str(tmp_path / out),
                                    max_attempts=3, score_vmaf=True)
        [result] = _EncodeChunkFn(60).process(gated)
        return result, rendition

    capped, capped_rung = gate(40, "capped")
    assert [a.crf for a in capped.attempts] == [30]
    assert capped.attempts[0].kbps >= 0.9 * 40
    entry = _chunk_entry(capped, capped_rung)
    assert entry["met_target"] is False and entry["held_by_cap"] is True
    roomy, roomy_rung = gate(20_000, "roomy")
    assert len(roomy.attempts) > 1 and roomy.attempts[1].crf < 30
    assert not held_by_cap(roomy_rung, roomy.attempts[0])
    assert not _chunk_entry(roomy, roomy_rung).get("held_by_cap")
