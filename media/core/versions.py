"""Versions of a title: which published version wins, and what a new one leaves stale.

A source announced by an event carries a generation (Cloud Storage object generations
only grow). Each version is published into its own folder below the title root
(`SourceInfo.media_dir`), and the manifests at the root switch to it last; the previous
version's folders are then removed. A version older than the one already published is
superseded and not published at all.
"""

from __future__ import annotations

import posixpath


def is_superseded(published_generation: str, generation: str) -> bool:
    """True when the version already published is newer than `generation`.

    >>> is_superseded("1700000000000002", "1700000000000001")
    True
    >>> is_superseded("", "1700000000000001") or is_superseded("5", "")
    False
    """
    if not published_generation or not generation:
        return False
    try:
        return int(published_generation) > int(generation)
    except ValueError:
        return False


def published_generation(report: dict | None) -> str:
    """The generation a published report was made from ('' when unversioned or none)."""
    source = (report or {}).get("source") or {}
    return str(source.get("generation") or "")


def stale_dirs(previous: dict | None, track_dirs: set[str]) -> list[str]:
    """Folders, relative to the title root, that the previous version (its report) used
    and the new version (whose track folders are `track_dirs`) does not.

    A versioned previous version goes as a whole (its `g<generation>` folder); an
    unversioned one leaves the track folders (and their VMAF logs) the new one lacks.
    """
    if not previous:
        return []
    generation = published_generation(previous)
    if generation:
        folder = f"g{generation}"
        return [] if any(d.split("/", 1)[0] == folder for d in track_dirs) else [folder]
    stale = []
    for track in previous.get("tracks") or []:
        folder = posixpath.dirname(track.get("playlist") or "")
        if folder and folder not in track_dirs:
            stale.append(folder)
            if track.get("kind") == "video":
                stale.append(f"vmaf/{track.get('id')}")
    return sorted(set(stale))
