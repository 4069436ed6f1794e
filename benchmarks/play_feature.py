"""Playback check of a published title (the feature-length benchmark's output).

    python benchmarks/play_feature.py --title OUT/feature-120m [--seek_s 7140]

Serves the title folder and tests/browser (hls.js, dash.js from its node_modules) on
localhost and, in headless Chromium, plays `master.m3u8` with hls.js and `manifest.mpd`
with dash.js (tests/browser/player.html, muted): from the start, then after a seek to
`--seek_s` (default: 60 s before the end, 1:59:00 for a 2-hour title). Per player it
prints PASS/FAIL for: playback advances from the start; the player lists an audio
track and a subtitle track; audio is decoded; playback advances after the seek; the
subtitle track holds cues around the seek point. Not part of the test suite: it needs
a title from `benchmarks/feature_length.py` (or any published title with audio and
subtitles). Exit status 0 when every check passed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser_support import (
    BROWSER_DIR,
    CHROMIUM_ARGS,
    DASH_MANIFEST,
    HLS_MANIFEST,
    PLAYER_LIBRARIES,
    SiteServer,
)

ADVANCE_S = 3.0
"""Seconds of media that must play, from the start and after the seek."""
TIMEOUT_S = 60.0
"""Longest wait for each of them."""
PLAYERS = {"hls.js": ("hls", HLS_MANIFEST), "dash.js": ("dash", DASH_MANIFEST)}
_FAILED = ("lf.state.errors.filter(e => !(e.startsWith('hls.js: ') && "
           "!e.startsWith('hls.js: fatal'))).length > 0")
"""A player error that stops playback: any but hls.js's non-fatal ones (a seek aborts the
fragment loads in flight, which hls.js reports and recovers from)."""

# The player's audio and subtitle tracks, and turning the first subtitle track on.
_TRACKS = {
    "hls": "({audio: lf.hls.audioTracks.length, text: lf.hls.subtitleTracks.length})",
    "dash": "({audio: lf.dash.getTracksFor('audio').length, "
            "text: lf.dash.getTracksFor('text').length})",
}
_SUBTITLES_ON = {
    "hls": "lf.hls.subtitleDisplay = true; lf.hls.subtitleTrack = 0",
    "dash": "lf.dash.enableText(true); lf.dash.setTextTrack(0)",
}
# Cues of the <video>'s text tracks within 30 s of the playhead.
_CUES_NEAR = """() => {
  const v = document.getElementById('video');
  let n = 0;
  for (const track of v.textTracks) {
    if (track.mode === 'disabled') track.mode = 'hidden';
    for (const cue of track.cues || []) {
      if (Math.abs(cue.startTime - v.currentTime) <= 30) n += 1;
    }
  }
  return n;
}"""


@dataclass(frozen=True)
class Check:
    player: str
    name: str
    passed: bool
    detail: str = ""


def fatal_errors(errors: list[str]) -> list[str]:
    """The errors of `lf.state.errors` that `_FAILED` counts."""
    return [e for e in errors if not (e.startswith("hls.js: ")
                                      and not e.startswith("hls.js: fatal"))]


def _wait(page: Page, condition: str, timeout_s: float) -> bool:
    try:
        page.wait_for_function(condition, timeout=timeout_s * 1000, polling=100)
        return True
    except PlaywrightTimeoutError:
        return False


def seek_point(duration_s: float, seek_s: float | None) -> float:
    """Where to seek: `seek_s`, else 60 s before the end (1:59:00 of a 2-hour title),
    never before the first 10 s."""
    if seek_s is not None:
        return seek_s
    return max(10.0, duration_s - 60.0)


def check_player(page: Page, base_url: str, label: str, seek_s: float | None) -> list[Check]:
    """Play the title with one player, from the start and after a seek."""
    player, manifest = PLAYERS[label]
    query = urlencode({"player": player, "src": f"/title/{manifest}", "rate": 1})
    page.goto(f"{base_url}/player/player.html?{query}")
    checks = []

    def state() -> dict:
        return page.evaluate("lf.snapshot()")

    def add(name: str, passed: bool, detail: str = "") -> None:
        snapshot = state()
        if snapshot["errors"]:
            detail += f" (player errors, fatal or not: {snapshot['errors'][:3]})"
        checks.append(Check(label, name, passed, detail.strip()))

    started = _wait(page, f"{_FAILED} || lf.snapshot().currentTime >= {ADVANCE_S}", TIMEOUT_S)
    snapshot = state()
    add("plays from the start", started and not fatal_errors(snapshot["errors"])
        and snapshot["currentTime"] >= ADVANCE_S,
        f"at {snapshot['currentTime']:.2f} s of {snapshot['duration']:.1f} s")
    tracks = page.evaluate(_TRACKS[player])
    add("audio track listed", tracks["audio"] >= 1, f"{tracks['audio']} audio track(s)")
    add("subtitle track listed", tracks["text"] >= 1, f"{tracks['text']} subtitle track(s)")
    decoded = page.evaluate("document.getElementById('video').webkitAudioDecodedByteCount")
    add("audio decoded", bool(decoded), f"{decoded} bytes of audio decoded")
    if tracks["text"]:
        page.evaluate(_SUBTITLES_ON[player])

    target = seek_point(float(snapshot["duration"] or 0.0), seek_s)
    page.evaluate(f"document.getElementById('video').currentTime = {target}")
    advanced = _wait(page, f"{_FAILED} || lf.snapshot().currentTime >= {target + ADVANCE_S}",
                     TIMEOUT_S)
    snapshot = state()
    add(f"plays after a seek to {_clock(target)}", advanced
        and not fatal_errors(snapshot["errors"]) and snapshot["currentTime"] >= target + ADVANCE_S,
        f"at {snapshot['currentTime']:.2f} s")
    _wait(page, f"({_CUES_NEAR})() > 0", 15.0)
    cues = page.evaluate(f"({_CUES_NEAR})()")
    add("subtitle cues around the seek point", cues > 0, f"{cues} cue(s) within 30 s")
    return checks


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--title", required=True, help="the published title's folder")
    parser.add_argument("--seek_s", type=float, help="default: 60 s before the end")
    parser.add_argument("--players", default="hls.js,dash.js")
    args = parser.parse_args()
    title = Path(args.title)
    missing = [m for m in (HLS_MANIFEST, DASH_MANIFEST) if not (title / m).is_file()]
    if missing:
        raise SystemExit(f"{title} has no {' or '.join(missing)}")
    if not all((BROWSER_DIR / library).is_file() for library in PLAYER_LIBRARIES):
        raise SystemExit(f"no hls.js or dash.js: run `npm ci` in {BROWSER_DIR}")
    chromium = shutil.which("chromium")
    if not chromium:
        raise SystemExit("no `chromium` on PATH")

    checks: list[Check] = []
    with SiteServer({"player": BROWSER_DIR, "title": title}) as base_url, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=CHROMIUM_ARGS)
        for label in args.players.split(","):
            context = browser.new_context()
            checks += check_player(context.new_page(), base_url, label, args.seek_s)
            context.close()
        browser.close()
    for check in checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.player:8s} {check.name}: "
              f"{check.detail}")
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
