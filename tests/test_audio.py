"""Audio: AAC-LC stereo segments on the grid, in sync with the video to a few samples."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from media.core import ffmpeg
from media.encode.audio import encode_audio
from media.encode.audio_spans import AUDIO_SPAN_SEGMENTS
from media.inspect.probe import inspect_source

BEEP_AT_S = 2.0
SYNC_TOLERANCE_S = 0.003  # well under one video frame; AAC's own pre-echo is ~1 ms
SEGMENT_S = 4.0


def _make_beep_source(path: str, container_args: list[str], video_delay_s: float = 0.0,
                      audio_delay_s: float = 0.0) -> str:
    """6 s of video and stereo audio, silent but for a 1 kHz beep from 2.0 s of its own time."""
    beep = (f"aevalsrc='if(gte(t,{BEEP_AT_S}),0.5*sin(2*PI*1000*t),0)|"
            f"if(gte(t,{BEEP_AT_S}),0.5*sin(2*PI*1000*t),0)':s=48000:d=6")
    ffmpeg.run(ffmpeg.ffmpeg_argv(
        "-itsoffset", str(video_delay_s), "-f", "lavfi",
        "-i", "testsrc2=size=320x180:rate=25:duration=6",
        "-itsoffset", str(audio_delay_s), "-f", "lavfi", "-i", beep,
        "-c:v", "libx264", "-preset", "ultrafast",
        "-c:a", "aac", "-b:a", "192k", *container_args, path))
    return path


def _onset_s(samples: np.ndarray, rate: int) -> float:
    loud = np.flatnonzero(np.abs(samples) > 0.1)
    return loud[0] / rate


def _decoded(encoded) -> tuple[np.ndarray, int]:
    data = encoded.init + b"".join(encoded.segments)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        chunks = [frame.to_ndarray()[0] for frame in container.decode(stream)]
        return np.concatenate(chunks), stream.rate


def _source_beep_s(path: str) -> float:
    """When the beep sounds on the source's own clock, as a player decoding it hears it."""
    with av.open(path) as container:
        stream = container.streams.audio[0]
        frames = list(container.decode(stream))
        first_pts_s = float(frames[0].pts * stream.time_base)
        samples = np.concatenate([frame.to_ndarray()[0] for frame in frames])
        return first_pts_s + _onset_s(samples, stream.rate)


@pytest.mark.parametrize("segment_s, span_segments", [
    (SEGMENT_S, AUDIO_SPAN_SEGMENTS),  # one span
    (2.0, 1),  # three spans of one segment, the beep at the first join
])
@pytest.mark.parametrize("name, container_args, video_delay_s, audio_delay_s", [
    ("plain.mp4", [], 0.0, 0.0),
    # MPEG-TS starts its timeline at 1.4 s: audio is lined up with the video all the same.
    ("offset.ts", ["-f", "mpegts"], 0.0, 0.0),
    # Audio starting 0.5 s after the video: padded with silence.
    ("late-audio.mp4", [], 0.0, 0.5),
    # Video starting 0.5 s after the audio: the audio before it is cut.
    ("late-video.mkv", [], 0.5, 0.0),
])
def test_audio_plays_in_sync_with_video(tmp_path, name, container_args, video_delay_s,
                                        audio_delay_s, segment_s, span_segments):
    source = _make_beep_source(str(tmp_path / name), container_args, video_delay_s,
                               audio_delay_s)
    info = inspect_source(source, source, "beep")
    # Where the beep is on the video's clock: output time 0 is the first video frame.
    beep_at_s = _source_beep_s(source) - info.video_start_s
    assert beep_at_s == pytest.approx(BEEP_AT_S + audio_delay_s - video_delay_s, abs=0.05)
    encoded = encode_audio(source, info.audio[0].stream_index, float(info.duration_s),
                           info.video_start_s - info.container_start_s, segment_s, 128,
                           str(tmp_path), span_segments=span_segments)
    samples, rate = _decoded(encoded)
    # The decoder outputs the encoder's 1024 priming samples too (no edit list applied).
    assert _onset_s(samples, rate) == pytest.approx(beep_at_s, abs=SYNC_TOLERANCE_S)
    assert (encoded.init_info.channels, encoded.init_info.sample_rate_hz) == (2, 48000)
    starts = [t.base_decode_ticks / rate for t in encoded.timing]
    assert starts == pytest.approx([0.0, 4.0] if segment_s == SEGMENT_S else [0.0, 2.0, 4.0],
                                   abs=1024 / rate)
    total = sum(t.duration_ticks for t in encoded.timing) / rate
    assert total == pytest.approx(float(info.duration_s), abs=2 * 1024 / rate)


@pytest.mark.parametrize("tag, name", [("fr", "Français"), ("fra", "Français"),
                                       ("fr-CA", "Français"), ("de", "Deutsch"),
                                       ("en-GB", "English"), ("und", "Audio"), ("tlh", "tlh")])
def test_an_audio_track_is_named_in_its_own_language(tag, name):
    """IMF (BCP 47: `fr`, `fr-CA`) and containers (ISO 639-2: `fra`) tag languages either
    way; the player's menu shows the language's own name, or the tag where none is known."""
    from transforms.audio import _display_name

    assert _display_name(tag) == name
