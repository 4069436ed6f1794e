"""Tests for media.core.naming: sanitised title ids, safe joins, and the output layout.

Every name the pipeline writes is a pure function of (root, title, track, index), and a
name that comes from input must stay one safe path component under the output root.
"""

from __future__ import annotations

import re

import pytest

from media.core import naming
from media.core.naming import (
    MAX_TITLE_ID_LENGTH,
    chunk_record_uri,
    chunk_uri,
    error_record_uri,
    init_uri,
    join,
    playlist_uri,
    sanitize_title_id,
    segment_name,
    segment_uri,
    title_id_for,
    vmaf_log_uri,
    work_root,
)

SAFE = re.compile(r"[A-Za-z0-9._-]+")

# (raw name, title id): each row worked by hand from "runs of unsafe characters become
# one '_', then leading/trailing '.', '_', '-' go and runs of dots collapse".
SANITIZE_TABLE = [
    ("My Film (2024).mov", "My_Film_2024_.mov"),
    ("my  film", "my_film"),
    ("Amélie", "Am_lie"),
    ("日本語のタイトル", "untitled"),
    ("Ｆｉｌｍ", "untitled"),
    ("../../etc/passwd", "etc_passwd"),
    ("/abs/path/title", "abs_path_title"),
    ("a;b|c&d$(e)`f`", "a_b_c_d_e_f"),
    ("$(rm -rf ~)", "rm_-rf"),
    (".", "untitled"),
    ("..", "untitled"),
    ("...", "untitled"),
    ("._-", "untitled"),
    ("", "untitled"),
    ("   ", "untitled"),
    ("a..b", "a.b"),
    ("a....b...c", "a.b.c"),
    ("gs://bucket/in/clip.mp4", "gs_bucket_in_clip.mp4"),
    ("C:\\Videos\\clip.mkv", "C_Videos_clip.mkv"),
    ("-rf", "rf"),
    ("x" * 300, "x" * MAX_TITLE_ID_LENGTH),
    # Cut at 100 characters, then the cut's trailing '-' is stripped.
    ("a" * 99 + "-b", "a" * 99),
    ("ok_name-1.2", "ok_name-1.2"),
]


@pytest.mark.parametrize("raw, expected", SANITIZE_TABLE)
def test_sanitize_title_id_known_answers(raw, expected):
    assert sanitize_title_id(raw) == expected


# (source URI, title id): the file name without one short extension, sanitised.
TITLE_ID_TABLE = [
    ("gs://bucket/in/My Film.final.mp4", "My_Film.final"),
    ("/data/in/clip.mov", "clip"),
    ("clip.mp4", "clip"),
    ("clip", "clip"),
    ("archive.tar.gz", "archive.tar"),
    ("movie.version2", "movie.version2"),
    ("C:\\Users\\me\\Videos\\clip.mkv", "clip"),
    ("..\\..\\Windows\\evil.avi", "evil"),
    ("gs://bucket/dir/", "dir"),
    ("../../etc/passwd", "passwd"),
    ("..", "untitled"),
    ("../", "untitled"),
    ("/", "untitled"),
    ("", "untitled"),
    (".mp4", "mp4"),
    ("s3://b/$(touch x);`id`|cat&.mp4", "touch_x_id_cat"),
    ("gs://b/" + "y" * 250 + ".mp4", "y" * MAX_TITLE_ID_LENGTH),
    ("gs://b/Ünïcödé clip.webm", "n_c_d_clip"),
]


@pytest.mark.parametrize("uri, expected", TITLE_ID_TABLE)
def test_title_id_for_known_answers(uri, expected):
    assert title_id_for(uri) == expected


HOSTILE = [row[0] for row in SANITIZE_TABLE + TITLE_ID_TABLE] + [
    "\x00\n\t", "a/../..", "....mp4", "-", "_", "..\\..", "%2e%2e", "~", "*?", "'\"",
    "." * 150, "a." * 80, "é" * 120,
]


@pytest.mark.parametrize("raw", HOSTILE)
@pytest.mark.parametrize("fn", [sanitize_title_id, title_id_for], ids=["sanitize", "title_id"])
def test_title_ids_are_always_one_safe_path_component(fn, raw):
    result = fn(raw)
    assert SAFE.fullmatch(result), result
    assert result not in (".", "..", "")
    assert len(result) <= MAX_TITLE_ID_LENGTH
    # Safe to join: a title id never escapes the root.
    assert join("gs://out", result) == f"gs://out/{result}"


@pytest.mark.parametrize("raw", ["My Film.mov", "../x", "日本", "a" * 300])
def test_sanitize_is_idempotent(raw):
    once = sanitize_title_id(raw)
    assert sanitize_title_id(once) == once


JOIN_TABLE = [
    (("gs://bucket/out", "t", "video"), "gs://bucket/out/t/video"),
    (("gs://bucket/out/", "t/", "video"), "gs://bucket/out/t/video"),
    (("/local/out", "a/b", "c.m4s"), "/local/out/a/b/c.m4s"),
    (("/local/out", "", "c"), "/local/out/c"),
    (("out", "..a", "b..", "a.b"), "out/..a/b../a.b"),
]


@pytest.mark.parametrize("args, expected", JOIN_TABLE)
def test_join_known_answers(args, expected):
    assert join(*args) == expected


@pytest.mark.parametrize("part", ["..", "../x", "a/..", "a/../b", "/etc", "/", "//host/x"])
def test_join_refuses_parts_that_leave_the_root(part):
    with pytest.raises(ValueError, match="leaves its root"):
        join("gs://bucket/out", part)


@pytest.mark.parametrize("bad", ["..", "../t", "/abs"])
@pytest.mark.parametrize("field", ["title", "rendition"])
def test_chunk_uri_refuses_unsafe_components(field, bad):
    title, rendition = ("t", "720p-3000k")
    if field == "title":
        title = bad
    else:
        rendition = bad
    with pytest.raises(ValueError):
        chunk_uri("gs://b/out", title, rendition, 0)


@pytest.mark.parametrize("number, expected", [
    (0, "seg-00000.m4s"), (1, "seg-00001.m4s"), (42, "seg-00042.m4s"),
    (99999, "seg-99999.m4s"), (123456, "seg-123456.m4s"),
])
def test_segment_name(number, expected):
    assert segment_name(number) == expected


def test_track_relative_names():
    assert segment_uri("video", "720p-3000k", 3) == "video/720p-3000k/seg-00003.m4s"
    assert init_uri("video", "720p-3000k") == "video/720p-3000k/init.mp4"
    assert playlist_uri("audio", "aac-eng-0") == "audio/aac-eng-0/playlist.m3u8"
    assert vmaf_log_uri("720p-3000k", 7) == "vmaf/720p-3000k/chunk-00007.json"
    assert naming.rendition_id(720, 3000) == "720p-3000k"


@pytest.mark.parametrize("language, position, expected", [
    ("eng", 0, "aac-eng-0"), ("und", 2, "aac-und-2"), ("", 1, "aac-untitled-1"),
    ("../x", 0, "aac-x-0"),
])
def test_audio_track_id(language, position, expected):
    assert naming.audio_track_id(language, position) == expected


ROOT_NAMES = [
    (chunk_uri, ("gs://b/out", "film", "720p-3000k", 3),
     "gs://b/out/_work/film/chunks/720p-3000k/chunk-00003.mp4"),
    (chunk_record_uri, ("gs://b/out/", "film", "720p-3000k", 3),
     "gs://b/out/_work/film/chunks/720p-3000k/chunk-00003.json"),
    (chunk_uri, ("/tmp/o", "t", "234p-250k", 12345),
     "/tmp/o/_work/t/chunks/234p-250k/chunk-12345.mp4"),
    (work_root, ("gs://b/out", "film"), "gs://b/out/_work/film"),
    (error_record_uri, ("gs://b/out", "film"), "gs://b/out/_errors/film.json"),
    (naming.title_root, ("gs://b/out/", "film"), "gs://b/out/film"),
]


@pytest.mark.parametrize("fn, args, expected", ROOT_NAMES,
                         ids=lambda v: getattr(v, "__name__", None))
def test_root_names_are_pure_functions_of_their_arguments(fn, args, expected):
    first = fn(*args)
    assert first == expected
    # No clocks, no uuids: calling again (a retried bundle) names the same object.
    assert fn(*args) == first


def test_chunk_names_differ_by_every_argument():
    base = ("gs://b/out", "film", "720p-3000k", 3)
    variants = [("gs://b/other", "film", "720p-3000k", 3), ("gs://b/out", "film2", "720p-3000k", 3),
                ("gs://b/out", "film", "540p-1600k", 3), ("gs://b/out", "film", "720p-3000k", 4)]
    names = {chunk_uri(*args) for args in [base, *variants]}
    assert len(names) == 5
    assert chunk_uri(*base) != chunk_record_uri(*base)
