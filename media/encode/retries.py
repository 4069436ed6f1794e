"""Which failed tries of a chunk to make again, and how often: a failure another try may
not meet (`transient`: a killed FFmpeg, storage, an unreadable encode) is tried again with
a growing wait, up to a number of tries (`with_retries`, with the work passed in); a
deterministic one (a source error, a wrong frame count) fails at once.
"""

from __future__ import annotations

import logging
import signal
import time

from media.core.errors import MediaError, ToolFailed
from media.encode.encoded import BadChunk, WrongFrameCount

log = logging.getLogger(__name__)


def transient(exc: BaseException) -> bool:
    """Whether another try may succeed where this one failed: an FFmpeg process killed by
    a signal (not for running past its time limit), a storage error (OSError), or an
    encoded chunk that cannot be read back (a disk that filled or failed under it).

    Deterministic failures are not tried again: a source FFmpeg cannot read, and a
    readable chunk with the wrong number of frames (`WrongFrameCount`: the same span and
    command give the same count)."""
    if isinstance(exc, ToolFailed):
        return exc.returncode < 0 and not exc.timed_out
    if isinstance(exc, WrongFrameCount):
        return False
    return isinstance(exc, (OSError, BadChunk))


def failure_cause(exc: BaseException) -> str:
    """What made a try fail, in a few words (for the log and the result's `retries`)."""
    if isinstance(exc, ToolFailed) and exc.returncode < 0 and not exc.timed_out:
        try:
            name = signal.Signals(-exc.returncode).name
        except ValueError:
            name = f"signal {-exc.returncode}"
        return f"FFmpeg was killed by {name}"
    return f"{type(exc).__name__}: {exc}"


def retry_hint(exc: BaseException) -> str:
    """What to do about a failure that came back on every try."""
    if isinstance(exc, ToolFailed):
        return (
            "FFmpeg was killed again and again (out of memory? a preempted worker?); "
            "run again, on workers with more memory (finished chunks are reused)."
        )
    if isinstance(exc, OSError):
        return "Storage failed again and again; run again (finished chunks are reused)."
    return getattr(exc, "hint", "")


class RetriesExhausted(MediaError):
    """A transient failure came back on every try."""


def with_retries(work, stage: str, max_tries: int, backoff_s: float,
                 failure: BaseException | None = None, title_id: str = "", sleep=time.sleep):
    """`work(retries)` until it returns, where `retries` names the failed tries so far.

    A transient failure (`transient`) is tried again after `backoff_s`, doubled before each
    later try, up to `max_tries` tries in all; then `RetriesExhausted` names every cause.
    Any other `MediaError` or `OSError` is raised at once. `failure` is that of a first try
    already made elsewhere (it counts as one). `stage` and `title_id` name the work in
    the log and the error."""
    failed: list[str] = []
    while True:
        if failure is None:
            try:
                return work(tuple(failed))
            except (MediaError, OSError) as exc:
                failure = exc
        if not transient(failure):
            raise failure
        failed.append(failure_cause(failure))
        if len(failed) >= max_tries:
            raise RetriesExhausted(f"{stage} failed {len(failed)} times: {'; '.join(failed)}",
                                   retry_hint(failure)) from failure
        log.warning("%s: %s failed (try %d of %d), trying again: %s", title_id, stage,
                    len(failed), max_tries, failed[-1])
        sleep(backoff_s * 2 ** (len(failed) - 1))
        failure = None
