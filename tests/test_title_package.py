"""Title packages (*.title.json): parsing, checking, and resolving their URIs."""

from __future__ import annotations

import json

import pytest

from media.core.naming import title_id_for
from media.ingest.title_package import (
    PackageAudio,
    PackageSubtitle,
    TitlePackageError,
    is_title_package,
    parse_title_package,
    resolve_uri,
)


def _parse(doc, uri="/studio/film/film.title.json"):
    return parse_title_package(json.dumps(doc).encode(), uri)


def test_a_package_names_video_audio_subtitles_and_metadata():
    package = _parse({
        "video": "film.mov",
        "audio": [{"uri": "audio/fr.wav", "language": "fra", "name": "Français"}],
        "subtitles": [{"uri": "/subs/en.srt", "language": "en-GB", "forced": True}],
        "metadata": {"studio": "Acme", "year": 2026},
    })
    assert package.video == "/studio/film/film.mov"
    assert package.audio == (PackageAudio("/studio/film/audio/fr.wav", "fra", "Français"),)
    assert package.subtitles == (PackageSubtitle("/subs/en.srt", "en-GB", "", True),)
    assert json.loads(package.metadata_json) == {"studio": "Acme", "year": 2026}


def test_uris_resolve_against_the_package_on_gcs_too():
    assert resolve_uri("a/b.wav", "gs://bucket/in/film.title.json") == "gs://bucket/in/a/b.wav"
    assert resolve_uri("../x.srt", "gs://bucket/in/film.title.json") == "gs://bucket/x.srt"
    assert resolve_uri("gs://other/v.mp4", "/local/film.title.json") == "gs://other/v.mp4"


def test_the_title_id_drops_the_package_suffix():
    assert is_title_package("gs://b/My Film.TITLE.json")
    assert not is_title_package("film.json")
    assert title_id_for("gs://b/in/My Film.title.json") == "My_Film"


@pytest.mark.parametrize("doc, message", [
    ({}, '"video" must name the video file'),
    ({"video": "v.mp4", "subtitle": []}, "unknown key(s) subtitle"),
    ({"video": "v.mp4", "audio": {}}, '"audio" must be a list'),
    ({"video": "v.mp4", "audio": [{"uri": "a.wav"}]}, "is not an ISO 639 code"),
    ({"video": "v.mp4", "audio": [{"uri": "a.wav", "language": "english!"}]}, "ISO 639"),
    ({"video": "v.mp4", "audio": [{"language": "eng"}]}, '"uri" must name a file'),
    ({"video": "v.mp4", "subtitles": [{"uri": "s.srt", "language": "en", "forced": "yes"}]},
     '"forced" must be true or false'),
    ({"video": "v.mp4", "metadata": []}, '"metadata" must be a JSON object'),
    ([1, 2], "must be a JSON object"),
])
def test_mistakes_are_refused_with_what_to_fix(doc, message):
    with pytest.raises(TitlePackageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _parse(doc)


def test_not_json_is_refused():
    with pytest.raises(TitlePackageError, match="is not JSON"):
        parse_title_package(b"{video: x}", "/a/b.title.json")
