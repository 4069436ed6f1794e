"""Ingest: source URIs in, `IngestEvent`s (source URI + title id) out.

`expand_sources` turns what a user typed (a path, a glob, a comma-separated list;
local or gs://) into the concrete list of sources, at graph-build time, so a pattern
that matches nothing fails before any work.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from media.core.errors import ConfigurationError
from media.core.naming import title_id_for
from media.core.types import IngestEvent
from media.ingest.imf.pipeline_source import is_imf_source
from transforms._storage import FileSystemsStorage

__all__ = ["IngestSources", "expand_sources", "to_ingest_event"]

_GLOB_CHARS = set("*?[")


def expand_sources(spec: str) -> list[str]:
    """Every source named by a comma-separated list of paths and globs, in order, once."""
    patterns = [p.strip() for p in spec.split(",") if p.strip()]
    if not patterns:
        raise ConfigurationError("--input names no source")
    sources: list[str] = []
    for pattern, result in zip(patterns, FileSystems.match(patterns), strict=True):
        if is_imf_source(pattern, FileSystemsStorage()):  # a package folder or prefix: one source
            if pattern.rstrip("/") not in sources:
                sources.append(pattern.rstrip("/"))
            continue
        paths = sorted(m.path for m in result.metadata_list if not m.path.endswith("/"))
        if not paths:
            what = "matches no file" if _GLOB_CHARS & set(pattern) else "does not exist"
            raise ConfigurationError(f"--input {pattern!r} {what}")
        sources.extend(p for p in paths if p not in sources)
    return sources


def check_unique_titles(sources: list[str], other_assetmaps: tuple[str, ...] = (),
                        cpl_id: str = "") -> None:
    """Two sources that map to one title id would overwrite each other: refuse early.
    (An IMF package makes a title per CPL, named by the CPL.)"""
    from transforms.imf import source_title_ids

    seen: dict[str, str] = {}
    for uri in sources:
        for title in source_title_ids(uri, other_assetmaps, cpl_id):
            if title in seen:
                raise ConfigurationError(
                    f"{seen[title]!r} and {uri!r} both make title {title!r}; rename one of "
                    "them",
                )
            seen[title] = uri


def to_ingest_event(source_uri: str) -> IngestEvent:
    return IngestEvent(source_uri=source_uri, title_id=title_id_for(source_uri))


class IngestSources(beam.PTransform):
    """PCollection[str] of source URIs -> PCollection[IngestEvent]."""

    def expand(self, uris: beam.PCollection[str]) -> beam.PCollection[IngestEvent]:
        return uris | "ToIngestEvent" >> beam.Map(to_ingest_event)
