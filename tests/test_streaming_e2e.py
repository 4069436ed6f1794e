"""Event-driven ingest end to end: the CLI in streaming mode, fed by Cloud Storage
notifications on the Pub/Sub emulator, reading and writing the GCS emulator.

The GCS emulator sends no notifications itself, so the test publishes what Cloud
Storage would (attributes and JSON_API_V1 payload) after each upload. The pipeline runs
as users run it, `python -m pipeline --subscription ... --streaming`, in its own process;
the tests share it and run in order, as one stream of events.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.emulators import make_topic
from tests.media_factory import make_clip

BUCKET = "ladderflow-stream"
OUT = f"gs://{BUCKET}/out"
WAIT_S = 420
# The emulator needs no credentials; skip Beam's search for them (~20 s of retries).
LAUNCH = ("import sys; from apache_beam.internal.gcp import auth; "
          "auth._Credentials._credentials_init = True; "
          "from pipeline.__main__ import main; sys.exit(main(sys.argv[1:]))")


@dataclass
class Inbox:
    """Everything received on a subscription so far (acknowledged), by arrival."""

    subscriber: object
    subscription: str
    messages: list[dict] = field(default_factory=list)

    def wait_for(self, predicate, what: str, proc: subprocess.Popen, log: Path) -> dict:
        deadline = time.monotonic() + WAIT_S
        while True:
            for message in self.messages:
                if predicate(message):
                    return message
            if proc.poll() is not None:
                pytest.fail(f"the pipeline exited ({proc.returncode}) while waiting for {what}:\n"
                            + log.read_text()[-4000:])
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {WAIT_S} s; pipeline log:\n"
                            + log.read_text()[-4000:])
            self.pull(timeout_s=5)

    def pull(self, timeout_s: float = 5) -> None:
        from google.api_core import exceptions

        try:
            response = self.subscriber.pull(
                request={"subscription": self.subscription, "max_messages": 20},
                timeout=timeout_s)
        except exceptions.DeadlineExceeded:
            return
        if not response.received_messages:
            return
        for received in response.received_messages:
            body = json.loads(received.message.data)
            self.messages.append({**body, "_attributes": dict(received.message.attributes),
                                  "_received": time.monotonic()})
        self.subscriber.acknowledge(request={
            "subscription": self.subscription,
            "ack_ids": [r.ack_id for r in response.received_messages]})


@dataclass
class Stream:
    proc: subprocess.Popen
    log: Path
    bucket: object
    publisher: object
    events_topic: str
    ready: Inbox
    rejects: Inbox
    clips: Path

    def upload(self, name: str, path: str) -> str:
        blob = self.bucket.blob(name)
        blob.upload_from_filename(path)
        blob.reload()
        return str(blob.generation)

    def notify(self, name: str, generation: str, event: str = "OBJECT_FINALIZE",
               data: bytes | None = None) -> float:
        """Publish what Cloud Storage publishes for an object event; return the time."""
        resource = {"kind": "storage#object", "bucket": BUCKET, "name": name,
                    "generation": generation, "contentType": "video/mp4"}
        payload = json.dumps(resource).encode() if data is None else data
        self.publisher.publish(
            self.events_topic, payload, eventType=event, payloadFormat="JSON_API_V1",
            bucketId=BUCKET, objectId=name, objectGeneration=generation,
            notificationConfig=f"projects/_/buckets/{BUCKET}/notificationConfigs/1",
        ).result(timeout=30)
        return time.monotonic()

    def ready_for(self, title: str, generation: str) -> dict:
        return self.ready.wait_for(
            lambda m: m["title_id"] == title and m["generation"] == generation,
            f"'title ready' for {title} generation {generation}", self.proc, self.log)

    def names(self, prefix: str) -> list[str]:
        return sorted(b.name for b in self.bucket.client.list_blobs(BUCKET, prefix=prefix))


@pytest.fixture(scope="module")
def stream(gcs_emulator, pubsub_emulator, tmp_path_factory):
    publisher, subscriber = pubsub_emulator
    bucket = gcs_emulator.create_bucket(BUCKET)
    events_topic, events_sub = make_topic(publisher, subscriber, "gcs-events", "ladderflow-in")
    ready_topic, ready_sub = make_topic(publisher, subscriber, "titles-ready", "ready-watch")
    rejects_topic, rejects_sub = make_topic(publisher, subscriber, "rejected", "rejected-watch")
    work = tmp_path_factory.mktemp("stream")
    log = work / "pipeline.log"
    argv = [sys.executable, "-c", LAUNCH, "--subscription", events_sub, "--output", OUT,
            "--streaming", "--notify_topic", ready_topic, "--dead_letter_topic", rejects_topic,
            "--ladder", "fixed", "--max_renditions", "2", "--chunk_segments", "1",
            "--preset", "ultrafast", "--no_vmaf"]
    with open(log, "w") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT,
                                cwd=Path(__file__).resolve().parents[1], env=dict(os.environ),
                                start_new_session=True)
    yield Stream(proc, log, bucket, publisher, events_topic, Inbox(subscriber, ready_sub),
                 Inbox(subscriber, rejects_sub), work)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the launcher cancels the pipeline
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _clip(stream: Stream, name: str, pattern: str = "testsrc2") -> str:
    return make_clip(str(stream.clips / name), duration_s=6, width=640, height=360, gop=25,
                     pattern=pattern)


def test_a_notified_object_is_published_and_announced(stream):
    generation = stream.upload("in/one.mp4", _clip(stream, "one.mp4"))
    sent = stream.notify("in/one.mp4", generation)
    ready = stream.ready_for("one", generation)
    print(f"notification to 'title ready': {ready['_received'] - sent:.1f} s "
          "(including the pipeline's start)")

    assert ready["source_uri"] == f"gs://{BUCKET}/in/one.mp4"
    assert ready["manifests"] == {"hls": f"{OUT}/one/master.m3u8",
                                  "dash": f"{OUT}/one/manifest.mpd"}
    assert ready["_attributes"] == {"eventType": "TITLE_READY", "titleId": "one",
                                    "generation": generation}
    assert [r["height"] for r in ready["ladder"]] == [360, 234]
    names = stream.names("out/one/")
    # This version's tracks live in their own folder; the manifests at the title root.
    for rendition in ("360p-700k", "234p-250k"):
        segments = [n for n in names if n.startswith(f"out/one/g{generation}/video/{rendition}/")
                    and n.endswith(".m4s")]
        assert len(segments) == 2, names  # 6 s on a 4 s grid
    master = stream.bucket.blob("out/one/master.m3u8").download_as_text()
    assert f"g{generation}/video/360p-700k/playlist.m3u8" in master
    report = json.loads(stream.bucket.blob("out/one/report.json").download_as_text())
    assert report["source"]["generation"] == generation
    assert not [n for n in names if "/_work/" in n or n.endswith(".partial")]


def test_duplicates_publish_nothing_and_bad_events_are_rejected(stream):
    generation = str(stream.bucket.get_blob("in/one.mp4").generation)
    stream.notify("in/one.mp4", generation)  # delivered again
    stream.notify("in/one.mp4", generation)  # a second notification, same generation
    stream.notify("in/one.mp4", generation, event="OBJECT_METADATA_UPDATE")  # ignored
    notes = stream.upload("in/notes.txt", str(Path(__file__)))
    stream.notify("in/notes.txt", notes)
    stream.publisher.publish(stream.events_topic, b"this is not a notification",
                             eventType="OBJECT_FINALIZE").result(timeout=30)

    not_video = stream.rejects.wait_for(lambda m: m["title_id"] == "notes",
                                        "a rejection of notes.txt", stream.proc, stream.log)
    assert not_video["stage"] == "inspect" and not_video["hint"]
    assert not_video["source_uri"] == f"gs://{BUCKET}/in/notes.txt"
    malformed = stream.rejects.wait_for(lambda m: m["stage"] == "ingest",
                                        "a rejection of the malformed message", stream.proc,
                                        stream.log)
    assert "lacks attribute(s) bucketId, objectId, objectGeneration" in malformed["error"]
    assert "notifications create" in malformed["hint"]

    # The pipeline reads on: a second title goes through after all of that.
    two = stream.upload("in/two.mp4", _clip(stream, "two.mp4", pattern="smptebars"))
    stream.notify("in/two.mp4", two)
    stream.ready_for("two", two)
    stream.ready.pull()
    ones = [m for m in stream.ready.messages if m["title_id"] == "one"]
    assert len(ones) == 1, ones
    assert "duplicate event for gs://ladderflow-stream/in/one.mp4" in stream.log.read_text()
    assert not stream.names("out/_errors/")  # rejects went to the topic instead


def test_a_new_generation_replaces_the_title_cleanly(stream):
    old = str(stream.bucket.get_blob("in/one.mp4").generation)
    new = stream.upload("in/one.mp4", _clip(stream, "one-v2.mp4", pattern="smptebars"))
    assert int(new) > int(old)
    stream.notify("in/one.mp4", new)
    ready = stream.ready_for("one", new)
    assert ready["manifests"]["hls"] == f"{OUT}/one/master.m3u8"
    names = stream.names("out/one/")
    assert not [n for n in names if n.startswith(f"out/one/g{old}/")], names
    assert [n for n in names if n.startswith(f"out/one/g{new}/video/")]
    master = stream.bucket.blob("out/one/master.m3u8").download_as_text()
    assert f"g{new}/" in master and f"g{old}/" not in master
    report = json.loads(stream.bucket.blob("out/one/report.json").download_as_text())
    assert report["source"]["generation"] == new
