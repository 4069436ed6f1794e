"""Tests for media.encode.retries: which failures are tried again, how often, and what
the last one says."""

from __future__ import annotations

import pytest

from media.core.errors import MediaError, ToolFailed
from media.encode.encoded import BadChunk, WrongFrameCount
from media.encode.retries import RetriesExhausted, transient, with_retries


def _killed() -> ToolFailed:
    return ToolFailed(["ffmpeg"], -9, "")


@pytest.mark.parametrize("exc, again", [
    (_killed(), True),
    (ToolFailed(["ffmpeg"], 1, "Invalid data found"), False),
    (OSError("storage"), True),
    (BadChunk("the encoder wrote an unreadable chunk /s/chunk-0.mp4"), True),
    (WrongFrameCount("has 296 frames; expected 297"), False),
    (MediaError("the source cannot be read"), False),
])
def test_transient_failures_are_those_another_try_may_cure(exc, again):
    assert transient(exc) is again


class _Work:
    """Fails with each of `failures` in turn, then returns what it was told of retries."""

    def __init__(self, *failures: BaseException):
        self.failures = list(failures)
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, retries: tuple[str, ...]):
        self.calls.append(retries)
        if self.failures:
            raise self.failures.pop(0)
        return retries


def test_a_transient_failure_is_tried_again_with_a_doubling_wait():
    work, waits = _Work(_killed(), OSError("disk")), []
    done = with_retries(work, "encode", 3, 0.25, sleep=waits.append)
    assert done == ("FFmpeg was killed by SIGKILL", "OSError: disk")
    assert work.calls == [(), ("FFmpeg was killed by SIGKILL",), done]
    assert waits == [0.25, 0.5]


def test_a_failure_no_try_cures_is_raised_at_once():
    bad = MediaError("the source cannot be read", "re-export it")
    work, waits = _Work(bad), []
    with pytest.raises(MediaError) as raised:
        with_retries(work, "encode", 3, 0.25, sleep=waits.append)
    assert raised.value is bad and len(work.calls) == 1 and waits == []


def test_a_wrong_frame_count_is_not_tried_again():
    """The same span and command give the same count: a second try would spend an encode
    to meet the same failure."""
    wrong = WrongFrameCount("chunk 4 of t (720p) has 296 frames; expected 297")
    work, waits = _Work(wrong), []
    with pytest.raises(WrongFrameCount) as raised:
        with_retries(work, "encode", 3, 0.25, sleep=waits.append)
    assert raised.value is wrong and len(work.calls) == 1 and waits == []
    assert "timestamps" in raised.value.hint
    with pytest.raises(WrongFrameCount):  # a first try made elsewhere is not repeated
        with_retries(_Work(), "encode", 3, 0.0, failure=wrong, sleep=waits.append)
    assert waits == []


def test_tries_run_out_with_every_cause_and_a_hint():
    work = _Work(_killed(), _killed(), _killed(), _killed())
    with pytest.raises(RetriesExhausted) as raised:
        with_retries(work, "encode (720p, chunk 4)", 3, 0.0, sleep=lambda s: None)
    assert str(raised.value).startswith("encode (720p, chunk 4) failed 3 times: FFmpeg was "
                                        "killed by SIGKILL; ")
    assert "more memory" in raised.value.hint
    assert len(work.calls) == 3


def test_a_first_failure_made_elsewhere_counts_as_a_try():
    work = _Work(OSError("disk"))
    with pytest.raises(RetriesExhausted):
        with_retries(work, "encode", 2, 0.0, failure=_killed(), sleep=lambda s: None)
    assert work.calls == [("FFmpeg was killed by SIGKILL",)]
