"""Fault injection for tests: kill FFmpeg, fail a storage write, corrupt an encoded chunk.

A test sets the environment variable `LADDERFLOW_FAULTS`; the code under test is not
edited. Unset or empty, every hook returns at once and changes nothing.

Syntax: rules separated by commas, each `KIND[:SITE][@MATCH]:WHEN`:

    kill-ffmpeg:encode:2             the 2nd chunk encode (an FFmpeg process) gets SIGKILL
    storage-write:chunk:1            the 1st write of an encoded chunk raises OSError
    corrupt-chunk:3                  the 3rd encoded chunk is truncated before it is checked
    kill-ffmpeg:encode@film/234p-125k:*   every encode of film's 234p-125k rendition is killed

KIND and SITE (the default site first):

    kill-ffmpeg    encode | score     the FFmpeg process that encodes a chunk / scores it
                                      with VMAF; killed (SIGKILL) right after it starts,
                                      before it can finish
    storage-write  chunk | record     storing an encoded chunk / its JSON record; raises
                                      OSError before anything is written
    corrupt-chunk  chunk              an encoded chunk in the scratch folder, cut to half
                                      its size after FFmpeg wrote it, before it is checked

MATCH (optional) is a substring of the event's label, `<title>/<rendition>/<chunk index>`;
only matching events count. WHEN is `N` (the N-th matching event), `N+` (the N-th and
every later one) or `*` (every one).

Counting is per process: each rule counts its matching events under a lock, so it is
right across the threads of one process (the DirectRunner's `multi_threading` mode, a
Beam worker's bundle threads), but every process (a `multi_processing` DirectRunner, a
Dataflow worker) counts on its own. The counts start again when the variable's value
changes, or on `reset()`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass

ENV = "LADDERFLOW_FAULTS"

SITES = {
    "kill-ffmpeg": ("encode", "score"),
    "storage-write": ("chunk", "record"),
    "corrupt-chunk": ("chunk",),
}

_RULE = re.compile(r"^(?P<what>[^@]+?)(?:@(?P<match>[^:]+))?:(?P<when>\d+\+?|\*)$")


@dataclass
class Rule:
    kind: str
    site: str
    match: str
    first: int
    """The first matching event (1-based) that fires."""
    every_after: bool
    """Fire on every matching event from `first` on (`N+`, `*`), not only on `first`."""
    seen: int = 0
    fired: int = 0

    def text(self) -> str:
        when = (
            "*"
            if self.every_after and self.first == 1
            else (f"{self.first}+" if self.every_after else str(self.first))
        )
        match = f"@{self.match}" if self.match else ""
        return f"{self.kind}:{self.site}{match}:{when}"


def parse(spec: str) -> list[Rule]:
    """The rules `spec` describes; ValueError (naming the rule) when one is malformed."""
    rules = []
    for raw in (part.strip() for part in spec.split(",")):
        if not raw:
            continue
        found = _RULE.match(raw)
        if not found:
            raise ValueError(
                f"{ENV}: {raw!r}: use KIND[:SITE][@MATCH]:WHEN (see media/core/faults.py)"
            )
        kind, _, site = found["what"].partition(":")
        if kind not in SITES:
            raise ValueError(f"{ENV}: {raw!r}: kind is one of {', '.join(SITES)}")
        site = site or SITES[kind][0]
        if site not in SITES[kind]:
            raise ValueError(f"{ENV}: {raw!r}: {kind} sites are {', '.join(SITES[kind])}")
        when = found["when"]
        first = 1 if when == "*" else int(when.rstrip("+"))
        if first < 1:
            raise ValueError(f"{ENV}: {raw!r}: events count from 1")
        rules.append(Rule(kind, site, found["match"] or "", first, when.endswith(("+", "*"))))
    return rules


_lock = threading.Lock()
_state: dict = {"spec": "", "rules": []}
"""The variable's value last read, and its rules with their counts."""


def _rules() -> list[Rule]:
    """The rules in force (call with the lock held)."""
    spec = os.environ.get(ENV, "")
    if spec != _state["spec"]:
        _state.update(spec=spec, rules=parse(spec))
    return _state["rules"]


def reset() -> None:
    """Start every count again (the variable is read anew)."""
    with _lock:
        _state.update(spec="", rules=[])


def fired() -> dict[str, int]:
    """How often each rule has fired in this process, by its text."""
    with _lock:
        return {rule.text(): rule.fired for rule in _rules()}


def fire(kind: str, site: str, label: str) -> bool:
    """Count one event; True when a rule says this one fails."""
    if not os.environ.get(ENV):
        return False
    hit = False
    with _lock:
        for rule in _rules():
            if rule.kind != kind or rule.site != site or rule.match not in label:
                continue
            rule.seen += 1
            if rule.seen == rule.first or (rule.every_after and rule.seen > rule.first):
                rule.fired += 1
                hit = True
    return hit


def ffmpeg_hook(site: str, label: str) -> Callable[[subprocess.Popen], None] | None:
    """A hook for `ffmpeg.run(on_start=...)` that may kill the process; None without faults."""
    return ffmpeg_hook_all(site, [label])


def ffmpeg_hook_all(site: str, labels: list[str]) -> Callable[[subprocess.Popen], None] | None:
    """`ffmpeg_hook` for one process that does the work of several events (every
    rendition of a chunk): each label counts as its own event, and the process is killed
    if a rule fires for any of them. None without faults."""
    if not os.environ.get(ENV):
        return None

    def on_start(proc: subprocess.Popen) -> None:
        fired = [fire("kill-ffmpeg", site, label) for label in labels]  # count every one
        if any(fired):
            os.kill(proc.pid, signal.SIGKILL)

    return on_start


def storage_write(site: str, label: str, uri: str) -> None:
    """Raise OSError if a rule says this write fails."""
    if os.environ.get(ENV) and fire("storage-write", site, label):
        raise OSError(f"injected fault ({ENV}): writing {uri} failed")


def corrupt_chunk(label: str, path: str) -> None:
    """Cut the file at `path` to half its size if a rule says so."""
    if os.environ.get(ENV) and fire("corrupt-chunk", "chunk", label):
        with open(path, "r+b") as handle:
            handle.truncate(os.path.getsize(path) // 2)
