"""Dead letters: a record per title that will not be published, and why.

`DEST/_errors/<title_id>.json` holds the stage that failed, the error and a hint that
tells the user what to do. Every stage sends its rejects here through the
`DEAD_LETTER` tagged output; nothing of such a title gets manifests.
"""

from __future__ import annotations

import dataclasses
import logging

import apache_beam as beam

from media.core.errors import LadderflowError
from media.core.naming import error_record_uri
from media.core.types import DeadLetter
from transforms import _storage

__all__ = ["DEAD_LETTER", "WriteDeadLetters", "dead_letter_for"]

DEAD_LETTER = "dead_letter"
log = logging.getLogger(__name__)


def dead_letter_for(title_id: str, source_uri: str, stage: str,
                    error: LadderflowError) -> DeadLetter:
    return DeadLetter(title_id=title_id, source_uri=source_uri, stage=stage,
                      error=str(error), hint=error.hint)


class _WriteDeadLetterFn(beam.DoFn):
    def __init__(self, output_root: str):
        self._output_root = output_root

    def process(self, letter: DeadLetter):
        log.warning("%s: rejected at %s: %s (%s)", letter.title_id, letter.stage, letter.error,
                    letter.hint)
        _storage.write_json(error_record_uri(self._output_root, letter.title_id),
                            dataclasses.asdict(letter))
        yield letter


class WriteDeadLetters(beam.PTransform):
    """PCollection[DeadLetter] -> the same, after each is written under `_errors/`."""

    def __init__(self, output_root: str):
        super().__init__()
        self._output_root = output_root

    def expand(self, letters):
        return letters | "WriteRecord" >> beam.ParDo(_WriteDeadLetterFn(self._output_root))
