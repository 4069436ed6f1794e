"""Ingest events and the messages sent downstream: what is ingested, ignored, rejected."""

from __future__ import annotations

import json

import pytest

from media.core.types import IngestEvent
from media.ingest.events import (
    Ignored,
    MalformedEvent,
    rejected_event,
    rejected_message,
    storage_event,
    title_ready_message,
    watched_file_event,
)


def notification(name="in/movie.mp4", generation="1700000000000001", event="OBJECT_FINALIZE",
                 bucket="studio", payload=None, **extra):
    attributes = {"eventType": event, "payloadFormat": "JSON_API_V1", "bucketId": bucket,
                  "objectId": name, "objectGeneration": generation,
                  "notificationConfig": f"projects/_/buckets/{bucket}/notificationConfigs/1",
                  **extra}
    resource = {"kind": "storage#object", "bucket": bucket, "name": name,
                "generation": generation, "size": "1234", "contentType": "video/mp4"}
    data = json.dumps(resource).encode() if payload is None else payload
    return data, attributes


def test_a_finalize_notification_announces_its_object_version():
    event = storage_event(*notification(), message_id="42")
    assert event == IngestEvent("gs://studio/in/movie.mp4", "movie", "1700000000000001", "42")
    assert event.dedup_key == "gs://studio/in/movie.mp4#1700000000000001"


def test_the_same_object_twice_has_one_key_and_a_new_generation_another():
    first = storage_event(*notification(), message_id="1")
    again = storage_event(*notification(), message_id="2")
    newer = storage_event(*notification(generation="1700000000000002"), message_id="3")
    assert first.dedup_key == again.dedup_key != newer.dedup_key
    assert first.title_id == newer.title_id


@pytest.mark.parametrize("event", ["OBJECT_DELETE", "OBJECT_ARCHIVE", "OBJECT_METADATA_UPDATE"])
def test_other_event_types_are_ignored_with_their_type(event):
    ignored = storage_event(*notification(event=event))
    assert isinstance(ignored, Ignored)
    assert ignored.reason == f"event type {event}"


def test_payload_format_none_needs_no_payload():
    data, attributes = notification(payload=b"")
    attributes["payloadFormat"] = "NONE"
    assert storage_event(data, attributes).source_uri == "gs://studio/in/movie.mp4"


@pytest.mark.parametrize("name, reason", [
    ("in/", "folder"),
    ("out/movie/g1/video/720p/seg-00001.m4s", "own output"),
    ("in/.movie.mp4", "partial or hidden"),
    ("in/movie.mp4.part", "partial or hidden"),
])
def test_folders_partial_uploads_and_our_own_output_are_ignored(name, reason):
    ignored = storage_event(*notification(name=name), ignore_prefix="gs://studio/out")
    assert isinstance(ignored, Ignored) and ignored.reason == reason


@pytest.mark.parametrize("mutate, message", [
    (lambda d, a: (b"not json {", a), "payload is not JSON"),
    (lambda d, a: (b"[1, 2]", a), "not a JSON object"),
    (lambda d, a: (d, {k: v for k, v in a.items() if k != "objectId"}), "objectId"),
    (lambda d, a: (d, {k: v for k, v in a.items() if k not in ("bucketId", "objectGeneration")}),
     "bucketId, objectGeneration"),
    (lambda d, a: (d, {**a, "objectGeneration": "abc"}), "is not a number"),
    (lambda d, a: (d, {**a, "payloadFormat": "XML"}), "unknown payloadFormat"),
    (lambda d, a: (json.dumps({"name": "other.mp4"}).encode(), a), "contradicts"),
])
def test_malformed_messages_are_rejected_with_the_reason(mutate, message):
    with pytest.raises(MalformedEvent, match=message):
        storage_event(*mutate(*notification()), message_id="7")


def test_a_rejected_message_becomes_a_dead_letter_that_says_what_to_do():
    data, attributes = notification(payload=b"garbage")
    with pytest.raises(MalformedEvent) as caught:
        storage_event(data, attributes, message_id="99")
    letter = rejected_event("99", attributes, caught.value)
    assert letter.title_id == "movie" and letter.stage == "ingest"
    assert letter.source_uri == "gs://studio/in/movie.mp4"
    assert "notifications create" in letter.hint
    assert letter.generation == "1700000000000001"
    bare = rejected_event("100", {}, MalformedEvent("no attributes"))
    assert (bare.title_id, bare.source_uri) == ("event-100", "pubsub message 100")


def test_a_watched_file_is_versioned_by_its_modification_time():
    event = watched_file_event("/drop/movie.mov", 1700000000.25)
    assert event == IngestEvent("/drop/movie.mov", "movie", "1700000000250000")
    assert isinstance(watched_file_event("/drop/movie.mov.crdownload", 1.0), Ignored)
    assert isinstance(watched_file_event("/drop/out/x.mp4", 1.0, "/drop/out"), Ignored)


def test_title_ready_message_names_the_manifests_and_the_ladder():
    data, attributes = title_ready_message({
        "title_id": "movie", "generation": "17", "source_uri": "gs://studio/in/movie.mp4",
        "master_uri": "gs://out/movie/master.m3u8", "mpd_uri": "gs://out/movie/manifest.mpd",
        "report_uri": "gs://out/movie/report.json", "duration_s": 12.0,
        "ladder": ({"id": "720p-3000k", "height": 720},),
    })
    body = json.loads(data)
    assert attributes == {"eventType": "TITLE_READY", "titleId": "movie", "generation": "17"}
    assert body["manifests"] == {"hls": "gs://out/movie/master.m3u8",
                                 "dash": "gs://out/movie/manifest.mpd"}
    assert body["ladder"] == [{"id": "720p-3000k", "height": 720}]


def test_rejected_message_carries_stage_error_and_hint():
    from media.core.types import DeadLetter

    data, attributes = rejected_message(DeadLetter("notes", "gs://b/notes.txt", "inspect",
                                                   "not a video", "upload a video"))
    assert attributes == {"eventType": "REJECTED", "titleId": "notes"}
    body = json.loads(data)
    assert (body["stage"], body["error"], body["hint"]) == ("inspect", "not a video",
                                                            "upload a video")
