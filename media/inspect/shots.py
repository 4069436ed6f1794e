"""Shot changes: the cuts FFmpeg's `scdet` finds in the inspection's decode.

`scdet` scores each frame by how much it differs from the one before (the mean absolute
difference of their pixels, in percent) and by how much that differs from the previous
frame's difference, taking the smaller: a shot's steady motion or grain scores low, a
cut high. Its print keeps only the frames it calls a cut (`lavfi.scd.time` is set on
those alone), so Python reads a line or two per cut, never one per frame. A span's
decode (`media.inspect.decode_pass.Window`) keeps only its own frames' cuts; its
pre-roll gives scdet the frame before its first, so a cut there is found once, by it.
"""

from __future__ import annotations

from collections.abc import Iterable

SCENE_THRESHOLD = 10.0
"""scdet's threshold (its default). Measured on a generated clip of 2 s shots at
256x144, x264 (testsrc2, mandelbrot, smptebars, testsrc2 with heavy temporal grain, a
game of life): the cuts scored 19.7 to 30.4 and every other frame at most 7.7; with the
grain at its heaviest (`noise=alls=100`, each frame 12 % off the one before), a cut
from one grainy shot to another still scored 11.4 and the grainy shots' own frames at
most 0.8, except the frame after a cut into them and a title's second frame (scdet has
no difference before it to compare with), which `MIN_SHOT_FRAMES` drops."""
MIN_SHOT_FRAMES = 1.5
"""A cut within this many frames of the one before (or of the title's first frame) is
not a cut: scdet scores the frame after a cut into a grainy shot by that shot's grain
alone (its difference before is the cut's), and a title's second frame likewise."""
CUT_KEY = "lavfi.scd.time"
"""The metadata scdet sets on the frames it calls a cut (and only on those)."""


def scdet_chain(meta_path: str) -> list[str]:
    """The filters that find the cuts in a decode, for its video chain after the other
    detectors' print (scdet tags every frame with its score, which that print would
    write): scdet, then a print of the cut frames alone to `meta_path` (escaped for a
    filter graph by the caller's rules: pass it escaped)."""
    return [f"scdet=threshold={SCENE_THRESHOLD:g}",
            f"metadata=mode=print:key={CUT_KEY}:file={meta_path}"]


def read_cuts(path: str) -> tuple[float, ...]:
    """The times (the decode's timeline) of the cuts in a print by `scdet_chain`."""
    cuts = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.strip().partition("=")
                if key == CUT_KEY:
                    try:
                        cuts.append(float(value))
                    except ValueError:
                        continue
    except FileNotFoundError:
        return ()
    return tuple(cuts)


def shot_cuts(found: Iterable[float], first_frame_s: float, frame_s: float
              ) -> tuple[float, ...]:
    """The title's cuts from what its decode (or its spans' decodes, in any order) found:
    sorted, each once, none within `MIN_SHOT_FRAMES` frames of the cut before it or of
    the first frame (`first_frame_s`), in seconds to the millisecond."""
    near = MIN_SHOT_FRAMES * frame_s if frame_s > 0 else 0.0
    kept: list[float] = []
    last = first_frame_s
    for t in sorted(set(found)):
        if t - last >= near:
            kept.append(round(t, 3))
            last = t
    return tuple(kept)
