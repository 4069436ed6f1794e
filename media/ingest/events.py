"""Ingest events: Cloud Storage notifications and watched files in, `IngestEvent`s out;
"title ready" and "rejected" messages out to downstream systems.

Plain functions over bytes and dicts (no Beam, no Pub/Sub client), so that every rule
of what is ingested, ignored or rejected is unit-tested on its own.

Cloud Storage notifications (https://cloud.google.com/storage/docs/pubsub-notifications):
attributes `eventType`, `payloadFormat`, `bucketId`, `objectId`, `objectGeneration`;
with payload format JSON_API_V1 the data is the object's JSON resource.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from media.core.errors import MediaError
from media.core.naming import sanitize_title_id, title_id_for
from media.core.types import DeadLetter, IngestEvent

FINALIZE = "OBJECT_FINALIZE"
REQUIRED_ATTRIBUTES = ("bucketId", "objectId", "objectGeneration")
PAYLOAD_FORMATS = ("JSON_API_V1", "NONE")
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart", ".uploading")
"""Names of files still being written, by common copy tools: never ingested."""


class MalformedEvent(MediaError):
    hint = ("The message is not a Cloud Storage notification this pipeline can read. "
            "Create the notification with `gcloud storage buckets notifications create "
            "gs://BUCKET --topic=TOPIC --event-types=OBJECT_FINALIZE "
            "--payload-format=json` and publish nothing else to its topic.")


@dataclass(frozen=True)
class Ignored:
    """An event that announces nothing to process, and why (counted, not an error)."""

    reason: str
    """Short, stable label: the counter's name."""
    detail: str


def storage_event(data: bytes, attributes: Mapping[str, str], message_id: str = "",
                  ignore_prefix: str = "") -> IngestEvent | Ignored:
    """The source a Cloud Storage notification announces, or why it announces none.

    Raises `MalformedEvent` for a message that is not a readable notification (not
    JSON, attributes missing, payload contradicting them). An event of another type
    than OBJECT_FINALIZE, a folder placeholder, a partial upload, or an object under
    `ignore_prefix` (the pipeline's own output) is `Ignored`.
    """
    attributes = dict(attributes or {})
    missing = [name for name in REQUIRED_ATTRIBUTES if not attributes.get(name)]
    if missing:
        raise MalformedEvent(f"notification {message_id or '?'} lacks attribute(s) "
                             f"{', '.join(missing)}")
    bucket, name = attributes["bucketId"], attributes["objectId"]
    generation = attributes["objectGeneration"]
    if not generation.isdigit():
        raise MalformedEvent(f"notification {message_id or '?'}: objectGeneration "
                             f"{generation!r} is not a number")
    payload_format = attributes.get("payloadFormat", "JSON_API_V1")
    if payload_format not in PAYLOAD_FORMATS:
        raise MalformedEvent(f"notification {message_id or '?'}: unknown payloadFormat "
                             f"{payload_format!r}")
    if payload_format == "JSON_API_V1":
        _check_payload(data, bucket, name, generation, message_id)
    event_type = attributes.get("eventType", "")
    uri = f"gs://{bucket}/{name}"
    if event_type != FINALIZE:
        return Ignored(f"event type {event_type or 'none'}", f"{uri}: {event_type or 'no type'}")
    skipped = skipped_name(uri, ignore_prefix)
    if skipped:
        return skipped
    return IngestEvent(source_uri=uri, title_id=title_id_for(uri), generation=generation,
                       event_id=message_id)


def _check_payload(data: bytes, bucket: str, name: str, generation: str,
                   message_id: str) -> None:
    try:
        resource = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedEvent(f"notification {message_id or '?'}: payload is not JSON "
                             f"({exc})") from exc
    if not isinstance(resource, dict):
        raise MalformedEvent(f"notification {message_id or '?'}: payload is not a JSON object")
    for key, want in (("bucket", bucket), ("name", name), ("generation", generation)):
        have = resource.get(key)
        if have is not None and str(have) != want:
            raise MalformedEvent(f"notification {message_id or '?'}: payload {key} "
                                 f"{have!r} contradicts the attribute ({want!r})")


def skipped_name(uri: str, ignore_prefix: str = "") -> Ignored | None:
    """Why an object or file is not a source to ingest, or None when it is one."""
    if uri.endswith("/"):
        return Ignored("folder", uri)
    if ignore_prefix and uri.startswith(ignore_prefix.rstrip("/") + "/"):
        return Ignored("own output", uri)
    base = posixpath.basename(uri)
    if base.startswith(".") or base.lower().endswith(PARTIAL_SUFFIXES):
        return Ignored("partial or hidden", uri)
    return None


def watched_file_event(path: str, last_updated_s: float,
                       ignore_prefix: str = "") -> IngestEvent | Ignored:
    """The source a watched file announces: its modification time is its generation."""
    skipped = skipped_name(path, ignore_prefix)
    if skipped:
        return skipped
    return IngestEvent(source_uri=path, title_id=title_id_for(path),
                       generation=str(round(last_updated_s * 1_000_000)))


def rejected_event(message_id: str, attributes: Mapping[str, str],
                   error: MalformedEvent) -> DeadLetter:
    """The dead letter of a message that could not be read as a notification."""
    attributes = dict(attributes or {})
    uri = ""
    if attributes.get("bucketId") and attributes.get("objectId"):
        uri = f"gs://{attributes['bucketId']}/{attributes['objectId']}"
    title = title_id_for(uri) if uri else sanitize_title_id(f"event-{message_id or 'unknown'}")
    return DeadLetter(title_id=title, source_uri=uri or f"pubsub message {message_id or '?'}",
                      stage="ingest", error=str(error), hint=error.hint,
                      generation=attributes.get("objectGeneration", ""))


def title_ready_message(title: Mapping) -> tuple[bytes, dict[str, str]]:
    """(data, attributes) of a "title ready" message from a published title's fields."""
    body = {
        "event": "TITLE_READY",
        "title_id": title["title_id"],
        "generation": title.get("generation", ""),
        "source_uri": title.get("source_uri", ""),
        "manifests": {"hls": title["master_uri"], "dash": title["mpd_uri"]},
        "report": title.get("report_uri", ""),
        "duration_s": round(float(title.get("duration_s", 0.0)), 3),
        "ladder": list(title.get("ladder", ())),
    }
    return _message(body, "TITLE_READY", title["title_id"], body["generation"])


def rejected_message(letter: DeadLetter) -> tuple[bytes, dict[str, str]]:
    """(data, attributes) of a "rejected" message: what failed, and what to do."""
    body = {"event": "REJECTED", "title_id": letter.title_id, "generation": letter.generation,
            "source_uri": letter.source_uri, "stage": letter.stage, "error": letter.error,
            "hint": letter.hint}
    return _message(body, "REJECTED", letter.title_id, letter.generation)


def _message(body: dict, event: str, title_id: str,
             generation: str) -> tuple[bytes, dict[str, str]]:
    attributes = {"eventType": event, "titleId": title_id}
    if generation:
        attributes["generation"] = generation
    return json.dumps(body, sort_keys=True).encode("utf-8"), attributes
