"""IMF ingest: packages written by tests/imf_factory.py, read, composed and checked.

Figures: a two-segment CPL of 24 + 2 x 12 frames composes 48 frames, in our model and
in FFmpeg's `imf` demuxer alike; every bad package raises its own `ImfError` whose hint
says what to fix; XML attacks are refused before any expansion (well under a second).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import time
from fractions import Fraction

import av
import pytest

from media.core import ffmpeg
from media.ingest.imf import errors
from media.ingest.imf.assetmap import read_assetmap, safe_relative_path
from media.ingest.imf.composition import Span, Track
from media.ingest.imf.cpl import read_cpl
from media.ingest.imf.essence import check_track_files
from media.ingest.imf.package import compositions, open_package
from media.ingest.imf.pkl import hash_file, read_pkl
from media.ingest.imf.source import ffmpeg_input_args, load_titles, source_info
from media.ingest.imf.timed_text import track_cues, track_language
from media.ingest.imf.validate import check_hash, hash_tasks, missing_assets, validate
from media.ingest.imf.xml import parse_xml
from media.inspect.probe import inspect_audio_file, inspect_source
from media.package.subtitles import to_webvtt
from tests.imf_factory import CplSpec, ImfFactory, Res, Seg, cpl_path, rewrite

FRAMES = 48
CUES = [(0.5, 1.5, "Hello from the start."), (1.6, 1.9, "Still the first half."),
        (0.2, 0.4, "x")]


def _main_cpl() -> CplSpec:
    """Two segments: frames 0-23 of each file, then frames 12-23 played twice; markers."""
    return CplSpec("Feature Film", [
        Seg(image=[Res("v1", duration=24)],
            audio=[[Res("en", duration=24)], [Res("fr", duration=24)]],
            subtitles=[Res("sub", duration=24)], forced=[Res("forced", duration=24)],
            markers=[("FFOC", 0), ("FFTC", 2)]),
        Seg(image=[Res("v1", entry=12, duration=12, repeat=2)],
            audio=[[Res("en", entry=12, duration=12, repeat=2)],
                   [Res("fr", entry=12, duration=12, repeat=2)]],
            subtitles=[Res("sub", entry=24, duration=24)],
            forced=[Res("forced", entry=24, duration=24)],
            markers=[("FFEC", 12), ("LFOC", 23)]),
    ], version="v1")


@pytest.fixture(scope="module")
def imf(tmp_path_factory):
    """The track files and three packages: 'pkg' (two CPLs: JPEG 2000 and ProRes),
    'supp' (a supplemental package adding German audio to pkg's picture)."""
    factory = ImfFactory(str(tmp_path_factory.mktemp("imf")))
    factory.image("v1", "pkg", FRAMES)
    factory.image("p1", "pkg", 24, codec="prores", pattern="smptebars")
    factory.audio("en", "pkg", FRAMES, language="en")
    factory.audio("fr", "pkg", FRAMES, language="fr", frequency=660)
    factory.imsc1("sub", "pkg", FRAMES, CUES, language="en")
    factory.imsc1("forced", "pkg", FRAMES, [(1.2, 1.8, "Forced line.")], language="en",
                  klv=True)
    main = _main_cpl()
    prores = CplSpec("Feature Film", [Seg(image=[Res("p1")], audio=[[Res("en", duration=24)]])],
                     version="trailer")
    factory.package("pkg", [main, prores])
    factory.audio("de", "supp", FRAMES, language="de", frequency=550)
    supplemental = CplSpec("Feature Film", [
        Seg(image=[Res("v1")], audio=[[Res("en")], [Res("de")]])], version="v1-de")
    factory.package("supp", [supplemental])
    factory.main, factory.prores, factory.supplemental = main, prores, supplemental
    return factory


def _copy(imf, tmp_path, name="pkg") -> str:
    target = str(tmp_path / name)
    shutil.copytree(os.path.join(imf.root, name), target)
    return target


def _composition(folder, cpl_id=""):
    package = open_package(folder)
    return package, compositions(package, cpl_id)[0]


# --- Reading --------------------------------------------------------------------------


def test_assetmap_pkl_and_cpl_read_as_written(imf):
    folder = os.path.join(imf.root, "pkg")
    assetmap = read_assetmap(os.path.join(folder, "ASSETMAP.xml"))
    by_id = assetmap.by_id()
    assert by_id[imf.files["v1"].id].path == imf.files["v1"].path
    assert sum(a.packing_list for a in assetmap.assets) == 1
    pkl = read_pkl(next(a.path for a in assetmap.assets if a.packing_list))
    entry = pkl.by_id()[imf.files["en"].id]
    assert entry.size == os.path.getsize(imf.files["en"].path)
    with open(imf.files["en"].path, "rb") as handle:
        assert entry.hash_b64 == base64.b64encode(hashlib.sha1(handle.read()).digest()).decode()
    cpl = read_cpl(cpl_path(folder, imf.main))
    assert (cpl.id, cpl.content_title, cpl.edit_rate) == (imf.main.id, "Feature Film",
                                                          Fraction(24))
    assert len(cpl.segments) == 2
    kinds = [s.kind for s in cpl.segments[0].sequences]
    assert kinds == ["MarkerSequence", "MainImageSequence", "MainAudioSequence",
                     "MainAudioSequence", "SubtitlesSequence", "ForcedNarrativeSequence"]
    second = cpl.segments[1].of_kind("MainImageSequence")[0].resources[0]
    assert (second.entry_point, second.source_duration, second.repeat_count,
            second.intrinsic_duration) == (12, 12, 2, FRAMES)


def test_composition_timeline_languages_and_markers(imf):
    _, composition = _composition(os.path.join(imf.root, "pkg"), imf.main.id)
    assert composition.frame_count == 24 + 2 * 12
    assert composition.duration_s == Fraction(2)
    assert composition.title_id == "Feature_Film-v1"
    assert [(s.entry_point, s.source_duration, s.repeat_count, s.start_s)
            for s in composition.image.spans] == [(0, 24, 1, 0), (12, 12, 2, 1)]
    assert [t.language for t in composition.audio] == ["en", "fr"]
    assert [(t.kind, t.language, t.forced) for t in composition.timed_text] == [
        ("SubtitlesSequence", "en", False), ("ForcedNarrativeSequence", "en", True)]
    # Offsets count from each segment's start; the second segment starts at frame 24.
    assert [(m.label, m.frame) for m in composition.markers] == [
        ("FFOC", 0), ("FFTC", 2), ("FFEC", 36), ("LFOC", 47)]
    assert composition.track_file_ids() == [imf.files[n].id
                                            for n in ("v1", "en", "fr", "sub", "forced")]


def test_language_falls_back_to_the_cpl_locale(tmp_path):
    factory = ImfFactory(str(tmp_path))
    factory.image("v", "p", 24)
    factory.audio("a", "p", 24, language="")
    spec = CplSpec("Locale", [Seg(image=[Res("v")], audio=[[Res("a")]])],
                   locale_languages=["de-DE"])
    _, composition = _composition(factory.package("p", [spec]))
    assert composition.audio[0].language == "de-DE"


# --- Range mapping ----------------------------------------------------------------------


def test_image_reads_cover_a_chunk_across_segments_and_repeats(imf):
    _, composition = _composition(os.path.join(imf.root, "pkg"), imf.main.id)
    reads = composition.image_reads(20, 24)  # frames 20-43 of the title
    assert [(r.first, r.count, r.title_start_s) for r in reads] == [
        (20, 4, Fraction(20, 24)), (12, 12, Fraction(1)), (12, 8, Fraction(36, 24))]
    assert sum(r.count for r in reads) == 24
    whole = composition.image_reads(0, composition.frame_count)
    assert sum(r.count for r in whole) == composition.frame_count
    assert composition.image_reads(47, 1) == [reads[-1].__class__(
        reads[0].track_file_id, reads[0].path, Fraction(24), 23, 1, Fraction(47, 24))]


def test_reads_at_a_resource_edit_rate_of_its_own():
    # Audio at 48000/1 edit units beside 24 fps: half a second from 1.25 s.
    track = Track("MainAudioSequence", "t", (
        Span("a", "a.mxf", Fraction(48000), 0, 48000, 1, Fraction(0)),
        Span("b", "b.mxf", Fraction(48000), 96000, 48000, 2, Fraction(1))))
    reads = track.reads(Fraction(5, 4), Fraction(7, 4))
    assert [(r.track_file_id, r.first, r.count) for r in reads] == [("b", 108000, 24000)]
    reads = track.reads(Fraction(1, 2), Fraction(5, 2))
    assert [(r.track_file_id, r.first, r.count, r.title_start_s) for r in reads] == [
        ("a", 24000, 24000, Fraction(1, 2)), ("b", 96000, 48000, Fraction(1)),
        ("b", 96000, 24000, Fraction(2))]


def test_a_read_decodes_its_span_from_the_track_file(imf):
    """What a chunk's encode does with a `Read`: seek in the MXF, decode `count` frames."""
    _, composition = _composition(os.path.join(imf.root, "pkg"), imf.main.id)
    read = composition.image_reads(30, 6)[0]
    with av.open(read.path) as container:
        stream = container.streams.video[0]
        container.seek(read.first, stream=stream)
        pts = [frame.pts for frame in container.decode(stream)
               if read.first <= frame.pts < read.first + read.count]
    assert pts == list(range(read.first, read.first + read.count)) == list(range(18, 24))


# --- FFmpeg's imf demuxer on our packages -----------------------------------------------


def _framecrc(tmp_path, *input_args) -> dict[int, list[int]]:
    """Packet durations per stream, in each stream's time base, copied (no decode)."""
    out = str(tmp_path / "crc.txt")
    ffmpeg.run(ffmpeg.ffmpeg_argv(*input_args, "-map", "0", "-c", "copy", "-f", "framecrc",
                                  out))
    durations: dict[int, list[int]] = {}
    with open(out) as handle:
        for line in handle:
            if not line.startswith("#"):
                fields = [f.strip() for f in line.split(",")]
                durations.setdefault(int(fields[0]), []).append(int(fields[3]))
    return durations


@pytest.mark.parametrize("which", ["main", "prores"])
def test_ffmpeg_composes_the_cpl_duration_exactly(imf, tmp_path, which):
    folder = os.path.join(imf.root, "pkg")
    spec = getattr(imf, which)
    _, composition = _composition(folder, spec.id)
    streams = _framecrc(tmp_path, "-f", "imf", "-i", cpl_path(folder, spec))
    assert len(streams[0]) == composition.frame_count == (48 if which == "main" else 24)
    for index in range(1, 1 + len(composition.audio)):  # 48 kHz samples
        assert sum(streams[index]) == composition.frame_count * 2000
    # FFmpeg's audio streams come in the CPL's order, as our tracks do.
    for number, track in enumerate(composition.audio):
        composed = _packet_md5(tmp_path, f"0:a:{number}", "-f", "imf", "-i",
                               cpl_path(folder, spec))
        assert composed[:3] == _packet_md5(tmp_path, "0:a:0", "-i", track.spans[0].path)[:3]


def _packet_md5(tmp_path, stream: str, *input_args) -> list[str]:
    out = str(tmp_path / "packets.txt")
    ffmpeg.run(ffmpeg.ffmpeg_argv(*input_args, "-map", stream, "-c", "copy", "-f", "framemd5",
                                  out))
    with open(out) as handle:
        return [line.rsplit(",", 1)[1].strip() for line in handle if not line.startswith("#")]


def test_ffmpeg_composes_a_supplemental_package_with_both_assetmaps(imf, tmp_path):
    supp, pkg = os.path.join(imf.root, "supp"), os.path.join(imf.root, "pkg")
    package = open_package(supp, [pkg])
    (composition,) = compositions(package)
    streams = _framecrc(tmp_path, "-f", "imf", "-assetmaps", ",".join(package.assetmap_paths),
                        "-i", cpl_path(supp, imf.supplemental))
    assert len(streams[0]) == composition.frame_count == FRAMES
    assert [t.language for t in composition.audio] == ["en", "de"]


def _framemd5(tmp_path, *args) -> list[str]:
    out = str(tmp_path / "md5.txt")
    ffmpeg.run(ffmpeg.ffmpeg_argv(*args, "-map", "0:v", "-f", "framemd5", out))
    with open(out) as handle:
        return [line.rsplit(",", 1)[1].strip() for line in handle if not line.startswith("#")]


def test_a_seek_into_the_composed_title_is_frame_exact(imf, tmp_path):
    """What a chunk's encode can do instead of `Read`s: seek FFmpeg's imf demuxer."""
    package, composition = _composition(os.path.join(imf.root, "pkg"), imf.main.id)
    whole = _framemd5(tmp_path, *ffmpeg_input_args(package, composition))
    part = _framemd5(tmp_path, *ffmpeg_input_args(package, composition, Fraction(30, 24)),
                     "-frames:v", "6")
    assert len(whole) == composition.frame_count and part == whole[30:36]


def test_load_titles_and_the_source_info(imf):
    _, titles = load_titles(os.path.join(imf.root, "pkg"), cpl_id=imf.main.id)
    (composition,) = titles
    image = inspect_source(composition.image.spans[0].path, "v1.mxf", "t")
    audio = [inspect_audio_file(t.spans[0].path, t.spans[0].path) for t in composition.audio]
    info = source_info(composition, image, audio)
    assert (info.title_id, info.container, info.frame_count, info.frame_rate) == (
        "Feature_Film-v1", "imf", 48, 24)
    assert (info.width, info.height, info.video_codec) == (160, 90, "jpeg2000")
    assert [(a.stream_index, a.language, a.channels, a.sample_rate_hz) for a in info.audio] == [
        (1, "en", 1, 48000), (2, "fr", 1, 48000)]


# --- Several CPLs, supplemental packages, checks that pass -------------------------------


def test_one_title_per_cpl_or_the_chosen_one(imf):
    package = open_package(os.path.join(imf.root, "pkg"))
    titles = compositions(package)
    assert sorted(c.title_id for c in titles) == ["Feature_Film-trailer", "Feature_Film-v1"]
    (chosen,) = compositions(package, imf.prores.id.removeprefix("urn:uuid:").upper())
    assert chosen.cpl.id == imf.prores.id and chosen.frame_count == 24
    with pytest.raises(errors.ImfNoComposition) as caught:
        compositions(package, "urn:uuid:00000000-0000-0000-0000-000000000000")
    assert imf.main.id in str(caught.value) and imf.prores.id in str(caught.value)


def test_two_cpls_of_one_title_and_version_get_two_title_ids(tmp_path):
    factory = ImfFactory(str(tmp_path))
    factory.image("v", "p", 24)
    first, second = (CplSpec("Same", [Seg(image=[Res("v", duration=n)])]) for n in (24, 12))
    package = open_package(factory.package("p", [first, second]))
    ids = {c.cpl.id: c.title_id for c in compositions(package)}
    assert ids == {first.id: f"Same-v1-{first.id[9:17]}", second.id: f"Same-v1-{second.id[9:17]}"}
    assert compositions(package, second.id)[0].title_id == ids[second.id]


def test_a_cpl_file_given_directly_is_the_only_title(imf):
    folder = os.path.join(imf.root, "pkg")
    (composition,) = compositions(open_package(cpl_path(folder, imf.prores)))
    assert composition.cpl.id == imf.prores.id


def test_supplemental_package_needs_the_original_assetmap(imf):
    supp, pkg = os.path.join(imf.root, "supp"), os.path.join(imf.root, "pkg")
    with pytest.raises(errors.ImfUnknownTrackFile) as caught:
        compositions(open_package(supp))
    assert imf.files["v1"].id in str(caught.value)
    assert "supplemental" in caught.value.hint
    package = open_package(supp, [pkg])
    (composition,) = compositions(package)
    validate(package, composition)  # sizes and hashes of files of both packages
    assert missing_assets(package) == []


def test_good_package_validates_one_hash_task_per_file(imf):
    package, composition = _composition(os.path.join(imf.root, "pkg"), imf.main.id)
    tasks = hash_tasks(package, composition)
    assert [t.asset_id for t in tasks] == [imf.main.id, *composition.track_file_ids()]
    for task in tasks:
        check_hash(task)
    assert missing_assets(package) == []


def test_hash_file_streams_in_blocks(tmp_path):
    path = tmp_path / "big.bin"
    data = os.urandom(9 * 1024 * 1024 + 5)
    path.write_bytes(data)
    assert hash_file(str(path)) == base64.b64encode(hashlib.sha1(data).digest()).decode()


class MemoryStorage:
    """An object store in a dict ('mem://bucket/...'), standing in for gs:// in tests."""

    def __init__(self, objects: dict[str, bytes]):
        self.objects = objects
        self.opened: list[str] = []

    def size(self, uri):
        data = self.objects.get(uri)
        return None if data is None else len(data)

    def open(self, uri):
        if uri not in self.objects:
            raise FileNotFoundError(uri)
        self.opened.append(uri)
        return io.BytesIO(self.objects[uri])

    def canonical(self, uri):
        return uri


def _upload(*folders) -> MemoryStorage:
    objects = {}
    for folder in folders:
        for name in os.listdir(folder):
            with open(os.path.join(folder, name), "rb") as handle:
                objects[f"mem://bucket/{os.path.basename(folder)}/{name}"] = handle.read()
    return MemoryStorage(objects)


def test_a_package_in_an_object_store(imf):
    """No local path: every read goes through the storage given (as gs:// would)."""
    storage = _upload(os.path.join(imf.root, "pkg"), os.path.join(imf.root, "supp"))
    package, titles = load_titles("mem://bucket/supp/", ["mem://bucket/pkg"], storage=storage)
    (composition,) = titles
    assert composition.image.spans[0].path == "mem://bucket/pkg/v1.mxf"
    validate(package, composition)
    assert "mem://bucket/supp/de.mxf" in storage.opened
    package, titles = load_titles("mem://bucket/pkg", cpl_id=imf.main.id, storage=storage)
    assert [c.text for c in track_cues(titles[0].timed_text[1], storage)] == ["Forced line."]
    del storage.objects["mem://bucket/pkg/fr.mxf"]
    assert missing_assets(package) == ["fr.mxf (absent)"]
    with pytest.raises(errors.ImfMissingAsset, match=r"fr\.mxf"):
        validate(package, titles[0], hashes=False)


# --- Timed text ---------------------------------------------------------------------------


def test_imsc1_becomes_webvtt_on_the_title_timeline(imf):
    _, composition = _composition(os.path.join(imf.root, "pkg"), imf.main.id)
    subtitles, forced = composition.timed_text
    cues = [(c.start, c.end, c.text) for c in track_cues(subtitles)]
    # Segment 1 plays the document's first second; segment 2 its second second from 1 s.
    assert cues == [(Fraction(1, 5), Fraction(2, 5), "x"),
                    (Fraction(1, 2), Fraction(1), "Hello from the start."),
                    (Fraction(1), Fraction(3, 2), "Hello from the start."),
                    (Fraction(8, 5), Fraction(19, 10), "Still the first half.")]
    assert [(c.start, c.end) for c in track_cues(forced)] == [
        (Fraction(6, 5), Fraction(9, 5))]  # from the KLV-wrapped track file
    assert track_language(forced) == "en"
    vtt = to_webvtt(track_cues(subtitles))
    assert vtt.startswith("WEBVTT") and "00:00:01.600 --> 00:00:01.900" in vtt


def test_timed_text_without_text_gives_no_cues(tmp_path):
    factory = ImfFactory(str(tmp_path))
    factory.image("v", "p", 24)
    factory.imsc1("empty", "p", 24, [], language="fr", klv=True)
    spec = CplSpec("T", [Seg(image=[Res("v")], subtitles=[Res("empty")])])
    _, composition = _composition(factory.package("p", [spec]))
    (track,) = composition.timed_text
    assert track_cues(track) == [] and track.language == "fr"


# --- Bad packages -------------------------------------------------------------------------


def _damage_file(path: str, how: str) -> None:
    if how == "remove":
        os.remove(path)
    elif how == "grow":
        with open(path, "ab") as handle:
            handle.write(b"\0")
    elif how == "flip":
        with open(path, "r+b") as handle:
            handle.seek(os.path.getsize(path) // 2)
            byte = handle.read(1)
            handle.seek(-1, os.SEEK_CUR)
            handle.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize("how, error, words", [
    ("remove", errors.ImfMissingAsset, "missing"),
    ("grow", errors.ImfSizeMismatch, "the PKL lists"),
    ("flip", errors.ImfHashMismatch, "SHA-1"),
])
def test_damaged_track_file(imf, tmp_path, how, error, words):
    folder = _copy(imf, tmp_path)
    _damage_file(os.path.join(folder, "fr.mxf"), how)
    package, composition = _composition(folder, imf.main.id)
    with pytest.raises(error) as caught:
        validate(package, composition)
    assert words in str(caught.value) and "fr.mxf" in str(caught.value)
    assert caught.value.hint == error.hint and "Upload" in caught.value.hint
    if how != "flip":
        assert any("fr.mxf" in m for m in missing_assets(package))


def _cpl_error(tmp_path, spec_of, error):
    factory = ImfFactory(str(tmp_path))
    factory.image("v", "p", 24)
    factory.audio("a", "p", 24)
    folder = factory.package("p", [spec_of()])
    with pytest.raises(error) as caught:
        compositions(open_package(folder))
    assert caught.value.hint == error.hint
    return str(caught.value)


def test_cpl_naming_an_unknown_track_file(tmp_path):
    message = _cpl_error(tmp_path, lambda: CplSpec("T", [Seg(image=[Res("v")],
                                                             audio=[[Res("ghost")]])]),
                         errors.ImfUnknownTrackFile)
    assert "MainAudioSequence" in message


def test_resource_running_past_its_track_file(tmp_path):
    message = _cpl_error(tmp_path, lambda: CplSpec("T", [Seg(image=[Res("v", entry=12,
                                                                         duration=24)])]),
                         errors.ImfResourceOverrun)
    assert "12 to 36" in message and "24 long" in message


@pytest.mark.parametrize("seg, words", [
    (Seg(image=[Res("v", edit_rate="25 1")]), "EditRate 25 1"),
    (Seg(image=[Res("v")], audio=[[Res("a", duration=20)]]), "lasts 0.833333 s"),
])
def test_edit_rate_mismatch(tmp_path, seg, words):
    message = _cpl_error(tmp_path, lambda: CplSpec("T", [seg]), errors.ImfEditRateMismatch)
    assert words in message


def test_track_files_checked_against_the_cpl_claims(imf, tmp_path):
    _, composition = _composition(os.path.join(imf.root, "pkg"), imf.main.id)
    facts = check_track_files(composition)
    assert facts[imf.files["v1"].path].frame_rate == 24
    assert facts[imf.files["en"].path].edit_units(Fraction(24)) == FRAMES
    factory = ImfFactory(str(tmp_path))
    factory.image("v", "p", 24)
    factory.image("v25", "p", 24, rate="25 1")
    lying = CplSpec("T", [Seg(image=[Res("v", intrinsic=30)])])  # the file has 24 frames
    other_rate = CplSpec("T", [Seg(image=[Res("v25", edit_rate="24 1")])])
    folder = factory.package("p", [lying, other_rate])
    with pytest.raises(errors.ImfResourceOverrun, match="0 to 30, the track file holds 24"):
        check_track_files(compositions(open_package(folder), lying.id)[0])
    with pytest.raises(errors.ImfEditRateMismatch, match="runs at 25 fps"):
        check_track_files(compositions(open_package(folder), other_rate.id)[0])


def test_sample_rate_audio_may_end_within_a_frame_of_the_picture(tmp_path):
    # 7 frames at 30000/1001 are 11211.2 samples at 48 kHz: 11211 samples is the audio.
    factory = ImfFactory(str(tmp_path))
    factory.image("v", "p", 7, rate="30000 1001")
    factory.audio("a", "p", 7, rate="30000 1001")
    spec = CplSpec("NTSC", [Seg(image=[Res("v")], audio=[[Res("a", edit_rate="48000 1",
                                                                intrinsic=11211)]])],
                   edit_rate="30000 1001")
    _, composition = _composition(factory.package("p", [spec]))
    assert composition.frame_count == 7
    (read,) = composition.audio[0].reads(Fraction(0), composition.duration_s)
    assert (read.first, read.count, read.edit_rate) == (0, 11211, 48000)


def test_an_audio_track_missing_from_a_segment(tmp_path):
    message = _cpl_error(tmp_path, lambda: CplSpec("T", [
        Seg(image=[Res("v", duration=12)], audio=[[Res("a", duration=12)]]),
        Seg(image=[Res("v", entry=12)])]), errors.ImfMalformedXml)
    assert "in 1 of the CPL's 2 segments" in message


def test_empty_cpl(tmp_path):
    _cpl_error(tmp_path, lambda: CplSpec("T", []), errors.ImfEmptyComposition)


def test_malformed_cpl(imf, tmp_path):
    folder = _copy(imf, tmp_path)
    path = cpl_path(folder, imf.main)
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)
    with pytest.raises(errors.ImfMalformedXml) as caught:
        open_package(folder)
    assert "not well-formed" in str(caught.value) and os.path.basename(path) in str(caught.value)
    rewrite(cpl_path(folder, imf.prores), "<EditRate>24 1</EditRate><SegmentList>",
            "<EditRate>24</EditRate><SegmentList>")
    with pytest.raises(errors.ImfMalformedXml, match="'24 1'"):
        open_package(cpl_path(folder, imf.prores))


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE CompositionPlaylist [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<CompositionPlaylist><Id>&secret;</Id></CompositionPlaylist>"""

LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE AssetMap [<!ENTITY lol0 "lol">'
          + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
          + "]>\n<AssetMap>&lol9;</AssetMap>").encode()
"""A billion laughs: 10^9 'lol's once expanded."""


@pytest.mark.parametrize("document", [XXE, LAUGHS], ids=["external-entity", "entity-expansion"])
def test_xml_attacks_are_refused_quickly(imf, tmp_path, document):
    started = time.monotonic()
    with pytest.raises(errors.ImfUnsafeXml) as caught:
        parse_xml(document, "attack.xml")
    assert time.monotonic() - started < 0.5
    assert "DOCTYPE" in caught.value.hint
    folder = _copy(imf, tmp_path)
    with open(os.path.join(folder, "ASSETMAP.xml"), "wb") as handle:
        handle.write(document)
    with pytest.raises(errors.ImfUnsafeXml):
        open_package(folder)


@pytest.mark.parametrize("bad", ["../outside.mxf", "/etc/passwd", "http://example.com/v.mxf",
                                 "file:///etc/passwd", "a/../../b.mxf", "C:\\v.mxf"])
def test_assetmap_paths_outside_the_package_are_refused(imf, tmp_path, bad):
    folder = _copy(imf, tmp_path)
    rewrite(os.path.join(folder, "ASSETMAP.xml"), "<Path>v1.mxf</Path>",
            f"<Path>{bad}</Path>")
    with pytest.raises(errors.ImfUnsafePath) as caught:
        open_package(folder)
    assert repr(bad) in str(caught.value) and "inside the package" in caught.value.hint


def test_safe_relative_paths_are_kept():
    assert safe_relative_path("video/./v1.mxf", "x") == "video/v1.mxf"


def test_missing_package_parts(imf, tmp_path):
    folder = _copy(imf, tmp_path)
    os.remove(os.path.join(folder, "ASSETMAP.xml"))
    with pytest.raises(errors.ImfMissingAsset, match="no ASSETMAP"):
        open_package(folder)
    folder = _copy(imf, tmp_path, "supp")
    pkl = next(f for f in os.listdir(folder) if f.startswith("PKL_"))
    os.remove(os.path.join(folder, pkl))
    with pytest.raises(errors.ImfMissingAsset, match="packing list"):
        open_package(folder)
