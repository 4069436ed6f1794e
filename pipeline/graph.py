"""The pipeline graph: sources in, published titles and dead letters out.

    ingest (a list of sources | Pub/Sub notifications | a watched prefix) -> Deduplicate
           -> Inspect -> PlanLadder -> Split [-> Probe -> Gather(title) -> Allocate]
           -> Reshuffle -> Encode+Score (quality gate)
              (audio spans in the same stage -> Gather(title, track))
           -> Gather(title, rendition)
           -> Assemble -> Gather(title) -> Package (manifests last)
           -> "title ready" (--notify_topic)
    rejects of every stage -> dead letters (OUTPUT/_errors/<title>.json, or
                              --dead_letter_topic)

`build_graph` only wires labelled stages onto a pipeline; running it is the caller's.
Batch and streaming share it: only the ingest front differs. Every gather is keyed by
title *version* (title id, generation), so in a pipeline that runs for days a new
generation of a source gathers and publishes anew.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from media.core.config import JobConfig
from media.core.types import IngestEvent
from transforms.allocate import AllocateBits
from transforms.assemble import AssembleRenditions
from transforms.audio import GatherAudio
from transforms.dead_letter import DEAD_LETTER, WriteDeadLetters
from transforms.encode import AUDIO_SPANS, EncodeChunks
from transforms.events import DeduplicateEvents, ReadStorageNotifications, WatchPrefix
from transforms.gather import GatherParts, Part
from transforms.imf import NOT_IMF, ImfTitles
from transforms.ingest import IngestSources
from transforms.inspect import Inspect
from transforms.notify import NotifyTitleReady, PublishDeadLetters
from transforms.package import PackageTitles
from transforms.plan import PlanLadder
from transforms.progress import ReportProgress
from transforms.split import SUBTITLES, Split
from transforms.subtitles import ConvertSubtitles


@dataclass
class GraphOutputs:
    published: beam.PCollection
    dead_letters: beam.PCollection


def _by_rendition(result):
    key = (result.title_id, result.generation, result.rendition_id)
    return key, Part(result.index, result.chunk_count, result)


def _by_version(keyed_track):
    version_key, track = keyed_track
    return version_key, Part(track.track_position, track.track_count, track)


@dataclass(frozen=True)
class Delivery:
    """Where the job tells downstream systems about its titles (Pub/Sub topics)."""

    notify_topic: str = ""
    """A "title ready" message per published title (after its manifests exist)."""
    dead_letter_topic: str = ""
    """A "rejected" message per dead letter; without it: records under OUTPUT/_errors/."""


def build_graph(events: beam.PCollection, config: JobConfig, delivery: Delivery = Delivery(),
                event_rejects: tuple[beam.PCollection, ...] = ()) -> GraphOutputs:
    """Wire every stage onto `events` (a PCollection of `IngestEvent`s), from any front."""
    unique = events | "Deduplicate" >> DeduplicateEvents(config.dedup_retention_s)
    # IMF packages: a title per CPL, hashed and inspected; other sources go on to Inspect.
    imf = unique | "Imf" >> ImfTitles(config.output_root, config.fingerprint(),
                                      config.source_limits, config.imf_assetmaps,
                                      config.imf_cpl, config.title_timeout_s,
                                      analyse=config.ladder == "per-title",
                                      settle_s=config.imf_settle_s)
    inspected = imf[NOT_IMF] | "Inspect" >> Inspect(
        config.output_root, config.fingerprint(), config.source_limits,
        analyse=config.ladder == "per-title", title_timeout_s=config.title_timeout_s)
    sources = (inspected.main, imf["main"]) | "AllSources" >> beam.Flatten()
    planned = sources | "PlanLadder" >> PlanLadder(config)
    tasks = planned["main"] | "Split" >> Split(config)
    to_encode, allocation_rejects = tasks.main, ()
    if config.allocates:  # each chunk's CRF per rung from its probes (--allocation optimal)
        allocated = tasks.main | "AllocateBits" >> AllocateBits(config)
        to_encode, allocation_rejects = allocated["main"], (allocated[DEAD_LETTER],)
    # Audio spans share the encode stage with the video chunks: encoded while it is.
    encoded = to_encode | "Encode" >> EncodeChunks(config.tool_timeout_s)
    audio = encoded[AUDIO_SPANS] | "Audio" >> GatherAudio(config.title_timeout_s)
    _ = encoded.main | "Progress" >> ReportProgress()
    chunks = (
        encoded.main
        | "KeyByRendition" >> beam.Map(_by_rendition).with_output_types(
            tuple[tuple[str, str, str], Any])
        | "GatherChunks" >> GatherParts(config.title_timeout_s, "assemble (gather)", "chunk")
    )
    renditions = chunks.main | "Assemble" >> AssembleRenditions(config.tool_timeout_s)
    subtitles = tasks[SUBTITLES] | "Subtitles" >> ConvertSubtitles()
    tracks = (
        (renditions.main, audio["main"], subtitles.main)
        | "AllTracks" >> beam.Flatten()
        | "KeyByTitle" >> beam.Map(_by_version).with_output_types(tuple[tuple[str, str], Any])
        | "GatherTracks" >> GatherParts(config.title_timeout_s, "package (gather)", "track")
    )
    packaged = tracks.main | "Package" >> PackageTitles(
        config.output_root, config.keep_work, config.fingerprint())
    published = packaged.main
    if delivery.notify_topic:
        published = published | "NotifyTitleReady" >> NotifyTitleReady(delivery.notify_topic)
    rejects = (
        (*event_rejects, *allocation_rejects, imf[DEAD_LETTER], inspected[DEAD_LETTER],
         planned[DEAD_LETTER],
         encoded[DEAD_LETTER], tasks[DEAD_LETTER], chunks[DEAD_LETTER], renditions[DEAD_LETTER],
         audio[DEAD_LETTER], subtitles[DEAD_LETTER], tracks[DEAD_LETTER], packaged[DEAD_LETTER])
        | "AllRejects" >> beam.Flatten()
    )
    if delivery.dead_letter_topic:
        dead = rejects | "DeadLetters" >> PublishDeadLetters(delivery.dead_letter_topic)
    else:
        dead = rejects | "DeadLetters" >> WriteDeadLetters(config.output_root)
    return GraphOutputs(published=published, dead_letters=dead)


def own_output_prefix(output_root: str) -> str:
    """The prefix of what the job writes: never ingested, even when watched."""
    return output_root if "://" in output_root else os.path.abspath(output_root)


def build_pipeline(pipeline: beam.Pipeline, source_uris: list[str], config: JobConfig,
                   delivery: Delivery = Delivery()) -> GraphOutputs:
    """Add the whole job, from a fixed list of sources (batch), to `pipeline` (not run)."""
    sources = pipeline | "Sources" >> beam.Create(source_uris)
    events = sources | "Ingest" >> IngestSources()
    return build_graph(events, config, delivery)


def build_events_batch(pipeline: beam.Pipeline, events: list[IngestEvent], config: JobConfig,
                       delivery: Delivery = Delivery()) -> GraphOutputs:
    """Add the whole job, from a fixed list of ingest events (batch), to `pipeline`."""
    return build_graph(pipeline | "Events" >> beam.Create(events), config, delivery)


def build_event_pipeline(pipeline: beam.Pipeline, config: JobConfig, subscription: str = "",
                         watch: str = "", watch_interval_s: float = 10.0,
                         delivery: Delivery = Delivery()) -> GraphOutputs:
    """Add the whole job, fed by events (streaming), to `pipeline` (not run): Cloud
    Storage notifications from `subscription`, and/or the files that appear under
    `watch`. The job's own output prefix is never ingested."""
    fronts, rejects = [], []
    own_output = own_output_prefix(config.output_root)
    if subscription:
        notified = pipeline | "Notifications" >> ReadStorageNotifications(
            subscription, ignore_prefix=own_output)
        fronts.append(notified.main)
        rejects.append(notified[DEAD_LETTER])
    if watch:
        fronts.append(pipeline | "Watch" >> WatchPrefix(
            watch, watch_interval_s, ignore_prefix=own_output))
    if not fronts:
        raise ValueError("an event pipeline needs a subscription or a prefix to watch")
    events = fronts[0] if len(fronts) == 1 else tuple(fronts) | "AllEvents" >> beam.Flatten()
    return build_graph(events, config, delivery, tuple(rejects))
