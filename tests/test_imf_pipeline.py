"""IMF in the pipeline's stages, short of encoding: how a source is recognised, the
title's table, a chunk's and an audio span's staging from only the track file ranges
they cover, the header and hash stages (several CPLs, a supplemental package), and a
package uploaded object by object.

Figures: a chunk of frames 36-47 (the repeat of v1's frames 12-23) is staged pixel-for-
pixel as FFmpeg's `imf` demuxer composes it; 12 frames of a 240-frame track file read
under `MAX_READ_SHARE` of it (header and index included); an audio span's samples equal
FFmpeg's composition within `PCM_TOLERANCE`.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from media.core import ffmpeg
from media.core.types import IngestEvent
from media.ingest.imf.pipeline_source import (
    is_imf_source,
    parse_table,
    stage_audio_span,
    stage_image_span,
    table_json,
    table_of,
    xml_root_name,
)
from media.ingest.imf.source import load_titles
from media.ingest.imf.storage import LOCAL
from tests.imf_factory import CplSpec, ImfFactory, Res, Seg, cpl_path
from tests.state_fakes import FakeTimer as _Timer
from tests.state_fakes import FakeValue as _Value
from transforms.imf import _UploadedFn, package_of

FRAMES = 48
MAX_READ_SHARE = 0.15
PCM_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def imf(tmp_path_factory):
    factory = ImfFactory(str(tmp_path_factory.mktemp("imf-pipeline")))
    factory.image("v1", "pkg", FRAMES)
    factory.audio("en", "pkg", FRAMES, language="en")
    factory.audio("fr", "pkg", FRAMES, language="fr", frequency=660)
    main = CplSpec("Feature Film", [
        Seg(image=[Res("v1", duration=24)],
            audio=[[Res("en", duration=24)], [Res("fr", duration=24)]]),
        Seg(image=[Res("v1", entry=12, duration=12, repeat=2)],
            audio=[[Res("en", entry=12, duration=12, repeat=2)],
                   [Res("fr", entry=12, duration=12, repeat=2)]]),
    ], version="v1")
    short = CplSpec("Feature Film", [Seg(image=[Res("v1", duration=24)],
                                         audio=[[Res("en", duration=24)]])], version="short")
    factory.package("pkg", [main, short])
    factory.audio("de", "supp", FRAMES, language="de", frequency=550)
    supplemental = CplSpec("Feature Film", [
        Seg(image=[Res("v1")], audio=[[Res("en")], [Res("de")]])], version="v1-de")
    factory.package("supp", [supplemental])
    factory.main, factory.short, factory.supplemental = main, short, supplemental
    factory.image("long", "long", 240)  # 10 s
    factory.long = CplSpec("Long", [Seg(image=[Res("long")])])
    factory.package("long", [factory.long])
    return factory


def _pkg(imf) -> str:
    return os.path.join(imf.root, "pkg")


def _title(imf):
    _, titles = load_titles(_pkg(imf), cpl_id=imf.main.id)
    return table_of(titles[0])


# --- Recognising a source ------------------------------------------------------------------


def test_a_package_folder_its_assetmap_and_a_cpl_are_imf_sources(imf, tmp_path):
    folder = _pkg(imf)
    assert is_imf_source(folder) and is_imf_source(folder + "/")
    assert is_imf_source(os.path.join(folder, "ASSETMAP.xml"))
    assert is_imf_source(cpl_path(folder, imf.main))
    assert not is_imf_source(os.path.join(folder, "v1.mxf"))
    other = tmp_path / "notes.xml"
    other.write_text('<?xml version="1.0"?><!-- x --><Notes/>')
    assert not is_imf_source(str(other)) and not is_imf_source(str(tmp_path))
    assert xml_root_name(b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- <AssetMap> -->\n'
                         b'<cpl:CompositionPlaylist xmlns:cpl="x">') == "CompositionPlaylist"


def test_an_uploaded_object_belongs_to_its_package(imf):
    folder = _pkg(imf)
    assert package_of(os.path.join(folder, "fr.mxf"), LOCAL) == folder
    assert package_of(os.path.join(folder, "ASSETMAP.xml"), LOCAL) == folder
    assert package_of(os.path.join(imf.root, "elsewhere.mov"), LOCAL) == ""


def test_the_table_round_trips(imf):
    table = _title(imf)
    assert parse_table(table_json(table)) == table
    assert (table.frame_count, table.edit_rate, len(table.audio)) == (48, 24, 2)


# --- Staging ---------------------------------------------------------------------------------


class _CountingStorage:
    """The local disk, counting the bytes read from each file."""

    def __init__(self):
        self.read: dict[str, int] = {}

    def size(self, uri):
        return LOCAL.size(uri)

    def canonical(self, uri):
        return LOCAL.canonical(uri)

    def open(self, uri):
        storage = self

        class Counting(io.FileIO):
            def readinto(self, buffer):
                count = super().readinto(buffer)
                storage.read[uri] = storage.read.get(uri, 0) + (count or 0)
                return count

        return io.BufferedReader(Counting(uri, "rb"), buffer_size=4096)


def _gray(source, *args) -> list[np.ndarray]:
    with av.open(source, *args) as container:
        return [f.to_ndarray(format="gray") for f in container.decode(container.streams.video[0])]


def test_a_chunk_is_staged_from_only_its_frames(imf, tmp_path):
    table = _title(imf)
    storage = _CountingStorage()
    # Frames 36-47: the second repeat of v1's frames 12-23; cut half a frame early/late.
    staged = stage_image_span(table, 35.5 / 24, 47.5 / 24, str(tmp_path / "span.mkv"),
                              storage)
    assert (staged.packets, staged.first_pts_s) == (12, 1.5)
    with av.open(staged.path) as container:
        stream = container.streams.video[0]
        times = [p.pts * p.time_base for p in container.demux(stream) if p.size]
    assert [round(t * 24) for t in times] == list(range(36, 48))
    reference = tmp_path / "composed.nut"
    ffmpeg.run(ffmpeg.ffmpeg_argv("-f", "imf", "-i", cpl_path(_pkg(imf), imf.main),
                                  "-map", "0:v:0", "-c:v", "rawvideo", "-pix_fmt", "gray",
                                  str(reference)))
    composed = _gray(str(reference))
    assert all(np.array_equal(a, b) for a, b in zip(_gray(staged.path), composed[36:48],
                                                   strict=True))


def test_a_chunk_reads_a_small_share_of_its_track_file(imf, tmp_path):
    """Invariant 3: 12 frames in the middle of a 240-frame track file read its header and
    index and their own frames, not the file."""
    _, titles = load_titles(os.path.join(imf.root, "long"))
    storage = _CountingStorage()
    staged = stage_image_span(table_of(titles[0]), 119.5 / 24, 131.5 / 24,
                              str(tmp_path / "span.mkv"), storage)
    path = os.path.join(imf.root, "long", "long.mxf")
    assert staged.packets == 12
    assert storage.read[path] < MAX_READ_SHARE * os.path.getsize(path), storage.read


def _samples(path: str) -> np.ndarray:
    with av.open(path) as container:
        stream = container.streams.audio[0]
        return np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])


def test_an_audio_span_is_the_composed_pcm_sample_for_sample(imf, tmp_path):
    table = _title(imf)
    staged = stage_audio_span(table, 1, 0.9, 1.7, str(tmp_path / "fr"))
    # Whole edit units (1/24 s) covering the span: from 0.875 s to 1.708333 s.
    assert (staged.first_time_s, staged.packets) == (Fraction(7, 8), 3)
    reference = str(tmp_path / "fr-composed.wav")
    ffmpeg.run(ffmpeg.ffmpeg_argv("-f", "imf", "-i", cpl_path(_pkg(imf), imf.main),
                                  "-map", "0:a:1", "-c:a", "pcm_f32le", reference))
    composed = _samples(reference)
    ours = _samples(staged.path)
    first = 42000  # 0.875 s at 48 kHz
    assert len(ours) == 82000 - first  # to 1.708333 s
    assert np.max(np.abs(ours - composed[first:first + len(ours)])) <= PCM_TOLERANCE
    assert stage_audio_span(table, 0, 5.0, 6.0, str(tmp_path / "past")).packets == 0


# --- The header and hash stages ----------------------------------------------------------------


def _keep(folder: str):
    """A step that pickles each element into `folder` (the runner pickles closures, so a
    list would fill a copy)."""
    import pickle
    import uuid

    def keep(element):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, uuid.uuid4().hex), "wb") as handle:
            pickle.dump(element, handle)

    return keep


def _kept(folder: str) -> list:
    import pickle

    if not os.path.isdir(folder):
        return []
    out = []
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as handle:
            out.append(pickle.load(handle))
    return out


def _run_titles(sources, output_root: str, generation: str = "", **kwargs):
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline

    from transforms.dead_letter import DEAD_LETTER
    from transforms.imf import NOT_IMF, ImfTitles

    kept = os.path.join(output_root, "_kept")
    with TestPipeline() as p:
        events = p | beam.Create([IngestEvent(s, os.path.basename(s), generation)
                                  for s in sources])
        out = events | ImfTitles(output_root, **kwargs)
        for name, pcoll in (("main", out["main"]), ("dead", out[DEAD_LETTER]),
                            ("other", out[NOT_IMF])):
            pcoll | f"Keep{name}" >> beam.Map(_keep(os.path.join(kept, name)))
    return tuple(_kept(os.path.join(kept, name)) for name in ("main", "dead", "other"))


def test_one_title_per_cpl_a_supplemental_package_and_other_sources(imf, tmp_path):
    supp = os.path.join(imf.root, "supp")
    video = str(tmp_path / "film.mov")
    infos, dead, other = _run_titles([_pkg(imf), supp, video], output_root=str(tmp_path / "o"),
                                     other_assetmaps=(_pkg(imf),))
    assert dead == [] and [e.source_uri for e in other] == [video]
    by_id = {i.title_id: i for i in infos}
    assert sorted(by_id) == ["Feature_Film-short", "Feature_Film-v1", "Feature_Film-v1-de"]
    assert [(a.language, a.stream_index) for a in by_id["Feature_Film-v1-de"].audio] == [
        ("en", 1), ("de", 2)]
    assert (by_id["Feature_Film-short"].frame_count, by_id["Feature_Film-v1"].frame_count) == (
        24, 48)
    assert by_id["Feature_Film-v1"].size_bytes > os.path.getsize(os.path.join(_pkg(imf),
                                                                              "v1.mxf"))


def test_a_supplemental_package_alone_and_a_chosen_cpl(imf, tmp_path):
    supp = os.path.join(imf.root, "supp")
    infos, dead, _ = _run_titles([supp], output_root=str(tmp_path / "o"))
    assert infos == [] and len(dead) == 1
    assert "which no ASSETMAP given lists" in dead[0].error
    assert "original package's ASSETMAP" in dead[0].hint
    infos, dead, _ = _run_titles([_pkg(imf)], output_root=str(tmp_path / "p"),
                                 cpl_id=imf.short.id)
    assert [i.title_id for i in infos] == ["Feature_Film-short"] and dead == []


# --- A package uploaded object by object ----------------------------------------------------


def test_an_uploaded_package_starts_once_when_its_last_asset_arrives(imf, tmp_path):
    folder = str(tmp_path / "upload")
    shutil.copytree(_pkg(imf), folder)
    held = tmp_path / "fr.mxf"
    shutil.move(os.path.join(folder, "fr.mxf"), held)
    fn = _UploadedFn((), timeout_s=600, clock=lambda: 1000.0)
    started, waiting, expire = _Value(), _Value(), _Timer()

    def arrive(name):
        event = IngestEvent(os.path.join(folder, name), name, generation="7")
        return list(fn.process((folder, event), started=started, waiting=waiting,
                               expire=expire))

    assert arrive("v1.mxf") == [] and expire.at is not None  # fr.mxf still to come
    with open(os.path.join(folder, "fr.mxf"), "wb") as partial:
        partial.write(held.read_bytes()[:1000])
    assert arrive("en.mxf") == []  # present, but not at its listed size
    shutil.copy(held, os.path.join(folder, "fr.mxf"))
    (event,) = arrive("fr.mxf")
    assert (event.source_uri, event.title_id) == (folder, "upload")
    assert event.generation.startswith("pkl-")  # the package's version, not an object's
    assert arrive("ASSETMAP.xml") == []  # started once


def test_an_upload_incomplete_past_the_timeout_is_a_dead_letter(imf, tmp_path):
    folder = str(tmp_path / "stalled")
    shutil.copytree(_pkg(imf), folder)
    os.remove(os.path.join(folder, "fr.mxf"))
    fn = _UploadedFn((), timeout_s=600, clock=lambda: 0.0)
    started, waiting, expire = _Value(), _Value(), _Timer()
    event = IngestEvent(os.path.join(folder, "v1.mxf"), "v1", generation="1")
    assert list(fn.process((folder, event), started=started, waiting=waiting,
                           expire=expire)) == []
    (letter,) = [o.value for o in fn.expired(key=folder, started=started, waiting=waiting)]
    assert letter.title_id == "stalled" and letter.stage == "ingest (IMF upload)"
    assert "fr.mxf (absent)" in letter.error and "Upload every file" in letter.hint
    assert waiting.read() is None  # the state is cleared


def test_the_run_summary_looks_for_one_title_per_cpl(imf, tmp_path):
    from media.core.config import JobConfig
    from pipeline.launcher import outcomes
    from transforms.imf import source_title_ids

    assert source_title_ids(_pkg(imf)) == ["Feature_Film-v1", "Feature_Film-short"]
    assert source_title_ids(_pkg(imf), cpl_id=imf.short.id) == ["Feature_Film-short"]
    assert source_title_ids(os.path.join(imf.root, "supp")) == ["supp"]  # unreadable alone
    published = tmp_path / "Feature_Film-v1"
    published.mkdir()
    (published / "master.m3u8").write_text("#EXTM3U\n")
    config = JobConfig(output_root=str(tmp_path))
    assert [(o.title_id, o.published) for o in outcomes(config, [_pkg(imf)])] == [
        ("Feature_Film-v1", True), ("Feature_Film-short", False)]


def test_watched_objects_of_a_package_start_it_once_in_a_batch(imf, tmp_path):
    """`--watch` on the DirectRunner runs each poll as a batch: the objects of a complete
    package make one title, versioned by its PKL, and none is taken for a video."""
    folder = str(tmp_path / "watched")
    shutil.copytree(_pkg(imf), folder)
    events = [os.path.join(folder, n) for n in sorted(os.listdir(folder))]
    infos, dead, other = _run_titles(events, output_root=str(tmp_path / "o"),
                                     cpl_id=imf.main.id, generation="5")
    assert dead == [] and other == []
    (info,) = infos
    assert info.title_id == "Feature_Film-v1" and info.generation.startswith("pkl-")


def test_a_picture_the_decoder_refuses_stops_the_title_before_hashing(imf, tmp_path):
    folder = str(tmp_path / "undecodable")
    shutil.copytree(_pkg(imf), folder)
    path = os.path.join(folder, "v1.mxf")
    data = bytearray(Path(path).read_bytes())
    start = data.find(b"\xff\x4f\xff\x51")  # the first frame's JPEG 2000 codestream
    data[start:start + 3000] = b"\x55" * 3000  # same size: only a hash would tell
    Path(path).write_bytes(data)
    infos, dead, _ = _run_titles([folder], output_root=str(tmp_path / "o"),
                                 cpl_id=imf.main.id)
    assert infos == [] and len(dead) == 1
    # The probe of the picture track file decodes its first frame too, and says so first.
    assert re.search(r"v1\.mxf: (video does not decode|edit unit 0 cannot be decoded)",
                     dead[0].error), dead[0].error
    assert "could not be decoded" in dead[0].hint


def test_staging_at_30000_1001_with_audio_in_samples(tmp_path):
    """An NTSC-rate title whose audio resource counts 48 kHz samples (EditRate 48000/1):
    a chunk's frames keep their title times, and an audio span is the track file's own
    samples from its start time, sample for sample."""
    from media.ingest.imf.package import compositions, open_package

    factory = ImfFactory(str(tmp_path))
    factory.image("v", "p", 60, rate="30000 1001")
    factory.audio("a", "p", 60, rate="30000 1001")  # 60 x 1601.6 = 96096 samples
    spec = CplSpec("NTSC", [Seg(image=[Res("v")], audio=[[Res("a", edit_rate="48000 1",
                                                                intrinsic=96096)]])],
                   edit_rate="30000 1001")
    table = table_of(compositions(open_package(factory.package("p", [spec])))[0])
    rate = Fraction(30000, 1001)
    staged = stage_image_span(table, float((29 - Fraction(1, 2)) / rate),
                              float((45 - Fraction(1, 2)) / rate), str(tmp_path / "span.mkv"))
    with av.open(staged.path) as container:
        stream = container.streams.video[0]
        frames = [round(p.pts * p.time_base * rate) for p in container.demux(stream) if p.size]
    assert frames == list(range(29, 45))
    pcm = stage_audio_span(table, 0, 0.5, 1.2, str(tmp_path / "a"))
    assert pcm.first_time_s == Fraction(1, 2)
    ours = _samples(pcm.path)
    with av.open(os.path.join(tmp_path, "p", "a.mxf")) as container:
        source = np.concatenate([f.to_ndarray().reshape(-1).astype(np.float64) / 2 ** 31
                                 for f in container.decode(container.streams.audio[0])])
    assert len(ours) == round(0.7 * 48000)
    assert np.max(np.abs(ours - source[24000:24000 + len(ours)])) <= PCM_TOLERANCE


def test_a_prores_chunk_is_staged_as_its_track_file_frames(tmp_path):
    from media.ingest.imf.package import compositions, open_package

    factory = ImfFactory(str(tmp_path))
    factory.image("p", "pkg", 24, codec="prores")  # testsrc2: every frame differs
    spec = CplSpec("ProRes", [Seg(image=[Res("p", entry=6, duration=12)])])
    table = table_of(compositions(open_package(factory.package("pkg", [spec])))[0])
    staged = stage_image_span(table, 3.5 / 24, 9.5 / 24, str(tmp_path / "span.mkv"))
    own = _gray(os.path.join(tmp_path, "pkg", "p.mxf"))
    ours = _gray(staged.path)
    assert staged.packets == len(ours) == 6  # title frames 4-9: the file's 10-15
    assert all(np.array_equal(a, b) for a, b in zip(ours, own[10:16], strict=True))


def test_the_job_limits_apply_to_an_imf_title(imf, tmp_path):
    from media.core.config import SourceLimits

    _, dead, _ = _run_titles([_pkg(imf)], output_root=str(tmp_path / "o"), cpl_id=imf.main.id,
                             limits=SourceLimits(max_duration_s=1.5))
    assert len(dead) == 1 and "over the duration limit" in dead[0].error
    _, dead, _ = _run_titles([_pkg(imf)], output_root=str(tmp_path / "p"), cpl_id=imf.main.id,
                             limits=SourceLimits(max_source_bytes=1000))
    assert len(dead) == 1 and "over the source size limit" in dead[0].error
    assert not (tmp_path / "p" / "_work").exists()  # refused before anything is written


def test_two_packages_making_one_title_are_refused_before_the_run(imf, tmp_path):
    from media.core.errors import ConfigurationError
    from transforms.ingest import check_unique_titles

    copy = str(tmp_path / "copy")
    shutil.copytree(_pkg(imf), copy)
    check_unique_titles([_pkg(imf), os.path.join(imf.root, "supp")], (_pkg(imf),))
    with pytest.raises(ConfigurationError, match="both make title 'Feature_Film-v1'"):
        check_unique_titles([_pkg(imf), copy])


def test_a_rewritten_table_is_read_anew(imf, tmp_path):
    from media.ingest.imf.pipeline_source import read_table

    table = _title(imf)
    path = tmp_path / "t.imf.json"
    path.write_bytes(table_json(table))
    assert read_table(str(path), str(path)) == table
    shorter = dataclasses.replace(table, frame_count=24)
    path.write_bytes(table_json(shorter))
    assert read_table(str(path), str(path)).frame_count == 24
