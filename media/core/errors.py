"""Typed errors whose message tells the user what to do next.

A `MediaError` is about the input or the media tools, and sends a title to the dead
letter. Anything else is a bug and fails loudly.
"""

from __future__ import annotations


class LadderflowError(Exception):
    """Base of every error the project raises on purpose."""

    hint = "See the message above."

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigurationError(LadderflowError):
    """A flag or option is invalid; raised while the graph is built, before any work."""

    hint = "Fix the option and run again (`python -m pipeline --help` lists them)."


class MediaError(LadderflowError):
    """The input or a media tool failed; the title goes to the dead letter."""


class UnreadableSource(MediaError):
    hint = (
        "The file could not be opened as media. Check that it is a complete video file "
        "(not truncated, not another kind of file) and re-export or re-upload it."
    )


class NoVideoStream(MediaError):
    hint = "The file has no video stream. Provide a video file (audio-only files are not titles)."


class UndecodableVideo(MediaError):
    hint = (
        "The video stream could not be decoded. Re-export the source with a standard codec "
        "(H.264, HEVC, ProRes) or re-upload it if it is damaged."
    )


class FrameRateUnavailable(MediaError):
    hint = "The source declares no frame rate. Re-mux it with an explicit frame rate."


class ToolFailed(MediaError):
    """An FFmpeg process exited non-zero."""

    hint = "FFmpeg could not process the source; the log above shows its last lines."

    def __init__(
        self,
        argv: list[str],
        returncode: int,
        stderr_tail: str,
        hint: str | None = None,
        timed_out: bool = False,
    ):
        self.argv = argv
        self.returncode = returncode
        """The exit status; negative: killed by that signal."""
        self.stderr_tail = stderr_tail
        self.timed_out = timed_out
        """Killed because it ran past its time limit."""
        tool = argv[0].rsplit("/", 1)[-1] if argv else "tool"
        super().__init__(f"{tool} exited with {returncode}: {stderr_tail.strip()[-600:]}", hint)


class SourceOverLimit(MediaError):
    """The source is larger than the job accepts (`--max_duration_s`, `--max_width`,
    `--max_height`, `--max_source_bytes`); rejected at inspection, before any encode."""

    hint = "The source is over one of the job's source limits; raise the limit or split it."
