"""The pipeline graph: sources in, published titles and dead letters out.

    ingest -> Inspect -> PlanLadder -> Split -> Reshuffle -> Encode+Score (quality gate)
           -> Gather(title, rendition)
           -> Assemble -> Gather(title) -> Package (manifests last)
    rejects of every stage -> dead letters (OUTPUT/_errors/<title>.json)

`build_graph` only wires labelled stages onto a pipeline; running it is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from media.config import JobConfig
from transforms.assemble import AssembleRenditions
from transforms.audio import EncodeAudio
from transforms.dead_letter import DEAD_LETTER, WriteDeadLetters
from transforms.encode import EncodeChunks
from transforms.gather import GatherParts, Part
from transforms.ingest import IngestSources
from transforms.inspect import Inspect
from transforms.package import PackageTitles
from transforms.plan import PlanLadder
from transforms.progress import ReportProgress
from transforms.split import AUDIO, Split


@dataclass
class GraphOutputs:
    published: beam.PCollection
    dead_letters: beam.PCollection


def _by_rendition(result):
    return (result.title_id, result.rendition_id), Part(result.index, result.chunk_count, result)


def _by_title(keyed_track):
    title_id, track = keyed_track
    return title_id, Part(track.track_position, track.track_count, track)


def build_graph(sources: beam.PCollection, config: JobConfig) -> GraphOutputs:
    """Wire every stage onto `sources` (a PCollection of source URIs)."""
    events = sources | "Ingest" >> IngestSources()
    inspected = events | "Inspect" >> Inspect(config.output_root, config.fingerprint())
    planned = inspected.main | "PlanLadder" >> PlanLadder(config)
    tasks = planned["main"] | "Split" >> Split(config)
    encoded = tasks.main | "Encode" >> EncodeChunks(config.tool_timeout_s)
    _ = encoded.main | "Progress" >> ReportProgress()
    renditions = (
        encoded.main
        | "KeyByRendition" >> beam.Map(_by_rendition).with_output_types(
            tuple[tuple[str, str], Any])
        | "GatherChunks" >> GatherParts()
        | "Assemble" >> AssembleRenditions(config.tool_timeout_s)
    )
    audio = tasks[AUDIO] | "Audio" >> EncodeAudio(config.tool_timeout_s)
    published = (
        (renditions.main, audio.main)
        | "AllTracks" >> beam.Flatten()
        | "KeyByTitle" >> beam.Map(_by_title).with_output_types(tuple[str, Any])
        | "GatherTracks" >> GatherParts()
        | "Package" >> PackageTitles(config.output_root, config.keep_work, config.fingerprint())
    )
    dead = (
        (inspected[DEAD_LETTER], planned[DEAD_LETTER], encoded[DEAD_LETTER],
         renditions[DEAD_LETTER], audio[DEAD_LETTER])
        | "AllRejects" >> beam.Flatten()
        | "DeadLetters" >> WriteDeadLetters(config.output_root)
    )
    return GraphOutputs(published=published, dead_letters=dead)


def build_pipeline(pipeline: beam.Pipeline, source_uris: list[str],
                   config: JobConfig) -> GraphOutputs:
    """Add the whole job, from a fixed list of sources, to `pipeline` (not run)."""
    sources = pipeline | "Sources" >> beam.Create(source_uris)
    return build_graph(sources, config)
