"""Dead letters: a record per title that will not be published, and why.

`DEST/_errors/<title_id>.json` holds the stage that failed, the error and a hint that
tells the user what to do. Every stage sends its rejects here through the
`DEAD_LETTER` tagged output; nothing of such a title gets manifests.

A title may be rejected many times (every rendition of a chunk at once, or again days
later in a streaming job). Each reject is kept in a record of its own, under a name that
is a pure function of (title, stage and what failed in it, generation)
(`naming.reject_record_uri`); the title's record lists them all, with the first (by
stage) on top, and is rewritten until it holds every record there is, so writers that
race leave it complete.

No exception of any kind escapes a DoFn that handles a title (design invariant 5): each
such DoFn's `process` is decorated with `dead_letters(stage)`, which turns an error the
DoFn did not handle into the title's dead letter, with the last frame of its traceback,
and logs the traceback (at WARNING: a bug in one title must not stop the others).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import traceback
from collections.abc import Callable

import apache_beam as beam
from apache_beam import pvalue

from media.core import naming
from media.core.types import ChunkGroup, ChunkTask, DeadLetter, TrialTask
from transforms import _storage, metrics

__all__ = ["DEAD_LETTER", "WriteDeadLetters", "dead_letter_for", "dead_letters"]

DEAD_LETTER = "dead_letter"
log = logging.getLogger(__name__)

UNEXPECTED_HINT = (
    "An unexpected error in ladderflow, not a known fault of the source: report it with "
    "the traceback logged for this title. The other titles carry on."
)
STORAGE_HINT = (
    "Reading or writing storage failed: check the output location (space, permissions, "
    "credentials) and run again; finished chunks are reused."
)
MERGE_ROUNDS = 8
"""Rewrites of a title's record at most, while other rejects of it keep arriving."""


def dead_letter_for(title_id: str, source_uri: str, stage: str,
                    error: Exception) -> DeadLetter:
    """The dead letter of an error a stage expects (a `MediaError`, an `OSError`)."""
    return DeadLetter(title_id=title_id, source_uri=source_uri, stage=stage,
                      error=str(error), hint=_hint_for(error))


def _hint_for(error: Exception) -> str:
    """What to do: the error's own hint, else by its kind (storage, or a bug)."""
    hint = getattr(error, "hint", None)
    if hint:
        return hint
    return STORAGE_HINT if isinstance(error, OSError) else UNEXPECTED_HINT


def dead_letters(stage: str) -> Callable:
    """Decorate a DoFn's `process(self, element, ...)`: an exception it raises becomes the
    dead letter of the element's title at `stage` (what failed in it appended), on the
    `DEAD_LETTER` output, and the bundle carries on."""

    def decorate(process: Callable) -> Callable:
        @functools.wraps(process)
        def guarded(self, element, *args, **kwargs):
            try:
                outputs = process(self, element, *args, **kwargs)
                if outputs is not None:
                    yield from outputs
            except Exception as exc:  # invariant 5: nothing escapes a DoFn
                yield pvalue.TaggedOutput(DEAD_LETTER, unexpected_dead_letter(
                    element, stage, exc))

        return guarded

    return decorate


def unexpected_dead_letter(element, stage: str, exc: Exception) -> DeadLetter:
    """The dead letter of an error a DoFn did not handle while working on `element`;
    the traceback goes to the log."""
    title_id, source_uri, generation = _title_of(element)
    what = _what_failed(element)
    stage = f"{stage} ({what})" if what else stage
    frames = traceback.extract_tb(exc.__traceback__)
    where = (f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}: "
             f"{frames[-1].line}" if frames else "")
    log.warning("%s: unexpected error at %s, sent to the dead letter", title_id or "?", stage,
                exc_info=exc)
    return DeadLetter(title_id=title_id or "unknown", source_uri=source_uri, stage=stage,
                      error=f"{type(exc).__name__}: {exc}", hint=_hint_for(exc),
                      generation=generation, traceback=where)


def _title_of(element) -> tuple[str, str, str]:
    """(title id, source URI, generation) of any element a title's DoFn gets: a task,
    a result, a source, a plan, or a gathered (key, parts) pair."""
    key = None
    if isinstance(element, tuple) and len(element) == 2:
        key, element = element
        if isinstance(element, list | tuple) and element:
            element = element[0]
    for unwrap in ("tasks", "chunks"):
        inner = getattr(element, unwrap, None)
        if isinstance(inner, list | tuple) and inner:
            element = inner[0]
    element = getattr(element, "task", element)
    source = getattr(element, "source", element)
    title_id = getattr(element, "title_id", "") or getattr(source, "title_id", "")
    if not title_id and isinstance(key, tuple) and key:
        title_id = str(key[0])
    generation = getattr(source, "generation", "") or (
        str(key[1]) if isinstance(key, tuple) and len(key) > 1 else "")
    return str(title_id), str(getattr(source, "source_uri", "")), str(generation)


def _what_failed(element) -> str:
    """What part of the title `element` is ('' for the whole title)."""
    if isinstance(element, ChunkGroup):
        return f"chunk {element.tasks[0].chunk.index}"
    if isinstance(element, ChunkTask):
        return f"{element.rendition.rendition_id}, chunk {element.chunk.index}"
    if isinstance(element, TrialTask):
        return f"sample {element.span.index}"
    if isinstance(element, tuple) and len(element) == 2 and isinstance(element[0], tuple):
        return " ".join(str(part) for part in element[0][2:])  # (title, generation, track)
    return str(getattr(element, "track_id", ""))


def write_dead_letter(output_root: str, letter: DeadLetter) -> None:
    """Keep `letter` in a record of its own, then make the title's record list every
    record of the title: rewritten until a listing after the write finds no other."""
    record = dataclasses.asdict(letter)
    _storage.write_json(naming.reject_record_uri(output_root, letter.title_id, letter.stage,
                                                 letter.generation), record)
    folder = naming.reject_records_dir(output_root, letter.title_id)
    summary_uri = naming.error_record_uri(output_root, letter.title_id)
    written = None
    for _ in range(MERGE_ROUNDS):
        rejects = _read_records(folder)
        if rejects == written:
            return
        first = min(rejects, key=lambda r: (r.get("stage", ""), r.get("generation", "")))
        _storage.write_json(summary_uri, {**first, "rejects": rejects})
        written = rejects
    log.warning("%s: rejects kept arriving; %s may not list them all (each is under %s)",
                letter.title_id, summary_uri, folder)


def _read_records(folder: str) -> list[dict]:
    """The title's reject records, by name; one deleted meanwhile (published) is skipped."""
    records = []
    for uri in _storage.matching(naming.join(folder, "*.json")):
        try:
            records.append(_storage.read_json(uri))
        except (OSError, ValueError):
            continue
    return records


class _WriteDeadLetterFn(beam.DoFn):
    def __init__(self, output_root: str):
        self._output_root = output_root

    def process(self, letter: DeadLetter):
        log.warning("%s: rejected at %s: %s (%s)", letter.title_id, letter.stage, letter.error,
                    letter.hint)
        metrics.count_dead_letter(letter.stage)
        try:
            write_dead_letter(self._output_root, letter)
        except Exception:  # the record is lost, not the job (invariant 5)
            log.warning("%s: the dead-letter record could not be written", letter.title_id,
                        exc_info=True)
        yield letter


class WriteDeadLetters(beam.PTransform):
    """PCollection[DeadLetter] -> the same, after each is written under `_errors/`."""

    def __init__(self, output_root: str):
        super().__init__()
        self._output_root = output_root

    def expand(self, letters):
        return letters | "WriteRecord" >> beam.ParDo(_WriteDeadLetterFn(self._output_root))
