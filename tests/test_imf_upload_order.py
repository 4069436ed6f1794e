"""Streaming: an IMF package whose objects arrive before its ASSETMAP.

`ImfTitles` on `TestStream` with processing-time advances (the DirectRunner's test clock
starts at 0, so the transforms get a clock that reads 0); each announced object is
"uploaded" (copied into its folder) by the step just before `ImfTitles`, so the routing
sees the folder as a notification would find it. Track files, then the PKL and CPL, then
the ASSETMAP last: one title, no source of its own, no dead letter. A standalone MXF is a
source once the settle window ends; an XML alone is dropped. The DoFns without a
pipeline: the window and its cap, an ASSETMAP settling its folder at once, every state
cell empty once the timer fired, and an MXF with picture and sound going on at once.
"""

from __future__ import annotations

import logging
import os
import shutil

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.test_stream import TestStream as BeamTestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from media.core import ffmpeg
from media.core.types import IngestEvent
from tests.imf_factory import CplSpec, ImfFactory, Res, Seg, cpl_path
from tests.state_fakes import FakeBag as _Bag
from tests.state_fakes import FakeTimer as _Timer
from tests.state_fakes import FakeValue as _Value
from transforms.dead_letter import DEAD_LETTER
from transforms.imf import HELD, NOT_IMF, OBJECTS, ImfTitles, _RouteFn
from transforms.imf_settle import MAX_WINDOWS, _SettleFn

SETTLE_S = 120.0
GENERATION = "1"


def test_clock() -> float:
    """Processing time as the DirectRunner's test clock starts it."""
    return 0.0


test_clock.__test__ = False  # a clock, not a test


@pytest.fixture(scope="module")
def imf(tmp_path_factory):
    factory = ImfFactory(str(tmp_path_factory.mktemp("imf-upload-order")))
    factory.image("v1", "pkg", 24)
    factory.audio("en", "pkg", 24)
    factory.spec = CplSpec("Upload Order", [Seg(image=[Res("v1")], audio=[[Res("en")]])])
    factory.package("pkg", [factory.spec])
    factory.image("master", "masters", 24)  # a picture-only MXF: it might be a track file
    return factory


def _pkl_name(folder: str) -> str:
    return next(n for n in os.listdir(folder) if n.startswith("PKL_"))


def streaming() -> PipelineOptions:
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    return options


def _upload(staging: dict[str, str]):
    """A step that copies each announced object from where it was made into its folder
    (the upload), then announces it."""

    def upload(uri: str) -> IngestEvent:
        os.makedirs(os.path.dirname(uri), exist_ok=True)
        shutil.copy(staging[uri], uri)
        return IngestEvent(uri, os.path.basename(uri), GENERATION)

    return upload


def _run(batches: list[list[str]], staging: dict[str, str], output_root: str, **kwargs):
    """`ImfTitles` on the objects of `batches`, 10 s apart, then past the settle window:
    (the run's result, and its main, NOT_IMF and dead letter outputs as lists)."""
    stream = BeamTestStream().advance_watermark_to(0)
    for number, batch in enumerate(batches):
        stream = (stream.add_elements([TimestampedValue(u, number + 1) for u in batch])
                  .advance_processing_time(10))
    stream = stream.advance_processing_time(MAX_WINDOWS * SETTLE_S).advance_watermark_to_infinity()
    pipeline = BeamTestPipeline(options=streaming())
    events = pipeline | stream | "Upload" >> beam.Map(_upload(staging))
    out = events | ImfTitles(output_root, settle_s=SETTLE_S, clock=test_clock, **kwargs)
    return pipeline, out


def _fates(caplog) -> dict[str, list[str]]:
    """What the settle step logged of each held object, by name, in order."""
    fates: dict[str, list[str]] = {}
    for record in caplog.records:
        if record.name == "transforms.imf_settle":
            uri, what = record.getMessage().split(": ", 1)
            fates.setdefault(os.path.basename(uri), []).append(what.split(":")[0].split(" (")[0])
    return fates


def test_track_files_then_pkl_and_cpl_then_the_assetmap_start_one_title(imf, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="transforms.imf_settle")
    source = os.path.join(imf.root, "pkg")
    folder = str(tmp_path / "upload")
    names = [["v1.mxf", "en.mxf"], [_pkl_name(source), os.path.basename(
        cpl_path(source, imf.spec))], ["ASSETMAP.xml"]]
    staging = {os.path.join(folder, n): os.path.join(source, n) for b in names for n in b}
    batches = [[os.path.join(folder, n) for n in batch] for batch in names]
    pipeline, out = _run(batches, staging, str(tmp_path / "out"))
    assert_that(out["main"] | beam.Map(lambda i: (i.title_id, i.generation[:4], i.frame_count)),
                equal_to([("Upload_Order-v1", "pkl-", 24)]), label="OneTitle")
    assert_that(out[NOT_IMF], equal_to([]), label="NoSourceOfItsOwn")
    assert_that(out[DEAD_LETTER], equal_to([]), label="NoDeadLetter")
    pipeline.run().wait_until_finish()
    # Each object before the ASSETMAP waited for it, and was found to be the package's.
    fates = _fates(caplog)
    assert fates == {n: ["held up to 120 s", "part of the IMF package " + folder]
                     for n in names[0] + names[1]}, fates


def test_a_standalone_mxf_is_a_source_after_the_window_and_an_xml_alone_is_dropped(
        imf, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="transforms.imf_settle")
    master = str(tmp_path / "drop" / "master.mxf")
    cpl = str(tmp_path / "lonely" / "CPL.xml")  # a CPL whose package never comes
    staging = {master: imf.files["master"].path, cpl: cpl_path(os.path.join(imf.root, "pkg"),
                                                                imf.spec)}
    pipeline, out = _run([[master, cpl]], staging, str(tmp_path / "out"))
    assert_that(out[NOT_IMF] | beam.Map(lambda e: (e.source_uri, e.generation)),
                equal_to([(master, GENERATION)]), label="TheMasterOnly")
    assert_that(out["main"], equal_to([]), label="NoTitle")
    assert_that(out[DEAD_LETTER], equal_to([]), label="NoDeadLetter")
    pipeline.run().wait_until_finish()
    assert _fates(caplog) == {"master.mxf": ["held up to 120 s", "released as a source"],
                              "CPL.xml": ["held up to 120 s", "dropped"]}


# --- The DoFns without a pipeline --------------------------------------------------------------


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _event(uri: str) -> IngestEvent:
    return IngestEvent(uri, os.path.basename(uri), GENERATION)


def test_the_window_restarts_with_each_object_up_to_its_cap_and_state_ends(tmp_path):
    folder = str(tmp_path / "slow")
    clock = _Clock()
    fn = _SettleFn(SETTLE_S, clock)
    held, last_due, timer = _Bag(), _Value(), _Timer()

    def hold(name):
        assert list(fn.process((folder, _event(os.path.join(folder, name))), held=held,
                               last_due=last_due, settle=timer)) == []

    hold("a.mxf")
    assert timer.at == Timestamp.of(1000 + SETTLE_S)  # held, not released at once
    clock.now = 1100.0
    hold("b.xml")
    assert timer.at == Timestamp.of(1100 + SETTLE_S)  # the folder's latest object counts
    clock.now = 1000 + MAX_WINDOWS * SETTLE_S - 10
    hold("c.mxf")
    assert timer.at == Timestamp.of(1000 + MAX_WINDOWS * SETTLE_S)  # capped
    released = list(fn.settled(key=folder, held=held, last_due=last_due))
    assert [e.source_uri for e in released] == [os.path.join(folder, n)
                                                for n in ("a.mxf", "c.mxf")]
    assert held.items == [] and last_due.value is None  # every state cell ends


def test_an_assetmap_settles_its_folder_at_once(imf, tmp_path):
    folder = str(tmp_path / "pkg")
    shutil.copytree(os.path.join(imf.root, "pkg"), folder)
    other = os.path.join(folder, "other.mxf")  # beside the package, but not in it
    shutil.copy(imf.files["master"].path, other)
    fn = _SettleFn(SETTLE_S, _Clock())
    held, last_due, timer = _Bag(), _Value(), _Timer()
    for name in ("v1.mxf", "other.mxf", "en.mxf"):
        list(fn.process((folder, _event(os.path.join(folder, name))), held=held,
                        last_due=last_due, settle=timer))
    assert len(held.items) == 3
    assetmap = _event(os.path.join(folder, "ASSETMAP.xml"))
    assert list(fn.process((folder, assetmap), held=held, last_due=last_due,
                           settle=timer)) == [_event(other)]  # what it does not list
    assert held.items == [] and last_due.value is None
    assert list(fn.settled(key=folder, held=held, last_due=last_due)) == []  # nothing left
    # Held objects whose ASSETMAP is there when the window ends are the package's too.
    list(fn.process((folder, _event(os.path.join(folder, "v1.mxf"))), held=held,
                    last_due=last_due, settle=timer))
    assert list(fn.settled(key=folder, held=held, last_due=last_due)) == []
    assert held.items == [] and last_due.value is None


def _routed(fn: _RouteFn, uri: str) -> list[tuple[str, object]]:
    return [(getattr(o, "tag", "main"), getattr(o, "value", o)) for o in fn.process(_event(uri))]


def test_the_route_holds_what_may_await_an_assetmap(imf, tmp_path):
    master = str(tmp_path / "master.mxf")  # picture and sound: no IMF track file
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-f", "lavfi", "-i",
        "sine=sample_rate=48000", "-t", "1", "-c:v", "mpeg2video", "-c:a", "pcm_s16le",
        "-f", "mxf", master))
    track = str(tmp_path / "v1.mxf")
    shutil.copy(imf.files["v1"].path, track)
    notes = str(tmp_path / "notes.xml")
    shutil.copy(cpl_path(os.path.join(imf.root, "pkg"), imf.spec), notes)
    route = _RouteFn(SETTLE_S)
    assert [t for t, _ in _routed(route, master)] == [NOT_IMF]
    assert _routed(route, track) == [(HELD, (str(tmp_path), _event(track)))]
    assert [t for t, _ in _routed(route, notes)] == [HELD]
    # Once the ASSETMAP is there: its own event settles the folder and goes to its package.
    package = os.path.join(imf.root, "pkg")
    assetmap = os.path.join(package, "ASSETMAP.xml")
    assert [(t, v[0]) for t, v in _routed(route, assetmap)] == [(HELD, package),
                                                                (OBJECTS, package)]
    assert [t for t, _ in _routed(route, os.path.join(package, "v1.mxf"))] == [OBJECTS]
    # Without a window (batch, or --imf_settle_s 0): as before, a track file is a source.
    assert [t for t, _ in _routed(_RouteFn(), track)] == [NOT_IMF]


def test_the_settle_option():
    from media.core.config import JobConfig
    from media.core.errors import ConfigurationError
    from pipeline.options import job_config

    config = job_config(PipelineOptions(["--output", "out", "--imf_settle_s", "30"]))
    assert (config.imf_settle_s, JobConfig("out").imf_settle_s) == (30.0, SETTLE_S)
    # It decides when a title starts, not what it publishes: resuming reuses its chunks.
    assert config.fingerprint() == JobConfig("out").fingerprint()
    with pytest.raises(ConfigurationError, match="--imf_settle_s must be 0"):
        JobConfig("out", imf_settle_s=-1).validate()
