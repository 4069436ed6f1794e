"""Title versions: which generation wins, and what a new version leaves behind."""

from __future__ import annotations

import pytest

from media.core.versions import is_superseded, published_generation, stale_dirs


@pytest.mark.parametrize("published, generation, superseded", [
    ("2", "1", True), ("1", "2", False), ("2", "2", False),
    ("", "1", False), ("1", "", False), ("x", "1", False),
    ("9", "10", False),  # numbers, not strings
])
def test_an_older_generation_is_superseded(published, generation, superseded):
    assert is_superseded(published, generation) is superseded


def _report(generation="", tracks=()):
    return {"source": {"generation": generation}, "tracks": list(tracks)}


def test_a_versioned_predecessor_goes_as_a_whole():
    previous = _report("5", [{"kind": "video", "id": "720p", "playlist": "g5/video/720p/p.m3u8"}])
    assert published_generation(previous) == "5"
    assert stale_dirs(previous, {"g6/video/720p", "g6/audio/aac-und-0"}) == ["g5"]
    # Publishing the same generation again removes nothing.
    assert stale_dirs(previous, {"g5/video/720p"}) == []


def test_an_unversioned_predecessor_loses_the_tracks_the_new_ladder_lacks():
    previous = _report(tracks=[
        {"kind": "video", "id": "720p", "playlist": "video/720p/playlist.m3u8"},
        {"kind": "video", "id": "360p", "playlist": "video/360p/playlist.m3u8"},
        {"kind": "audio", "id": "aac-und-0", "playlist": "audio/aac-und-0/playlist.m3u8"},
    ])
    assert stale_dirs(previous, {"video/720p", "audio/aac-und-0"}) == [
        "video/360p", "vmaf/360p"]
    assert stale_dirs(previous, {"g7/video/720p"}) == [
        "audio/aac-und-0", "video/360p", "video/720p", "vmaf/360p", "vmaf/720p"]
    assert stale_dirs(None, {"video/720p"}) == []
