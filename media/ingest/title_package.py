"""Title packages: one JSON file that names a title's video, audio and subtitle files.

A source named `NAME.title.json` is a package (the title id is NAME):

    {
      "video": "film.mov",
      "audio": [{"uri": "film-fr.wav", "language": "fra", "name": "Français"}],
      "subtitles": [{"uri": "film-en.srt", "language": "eng", "name": "English",
                     "forced": false}],
      "metadata": {"studio": "..."}
    }

URIs are relative to the JSON file or absolute (a path starting with '/', or any URI
with a scheme such as gs://); a package in object storage names no local path, and its
relative paths stay in its bucket. Audio streams inside the video file are tracks too;
the package's audio files come after them. Plain functions: parsing and checking only;
reading the files is the caller's.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from dataclasses import dataclass

from media.core.errors import MediaError

PACKAGE_SUFFIX = ".title.json"
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_TOP_KEYS = {"video", "audio", "subtitles", "metadata"}
_AUDIO_KEYS = {"uri", "language", "name"}
_SUBTITLE_KEYS = {"uri", "language", "name", "forced"}


class TitlePackageError(MediaError):
    hint = ('Fix the title package JSON: {"video": URI, "audio": [{"uri", "language", '
            '"name"?}], "subtitles": [{"uri", "language", "name"?, "forced"?}], '
            '"metadata": {...}}, URIs relative to the JSON file or absolute; languages as '
            'ISO 639 codes ("eng", "fr", "pt-BR").')


@dataclass(frozen=True)
class PackageAudio:
    uri: str
    """Absolute URI of the audio file (its first audio stream is the track)."""
    language: str
    name: str = ""


@dataclass(frozen=True)
class PackageSubtitle:
    uri: str
    """Absolute URI of the SRT or WebVTT file."""
    language: str
    name: str = ""
    forced: bool = False


@dataclass(frozen=True)
class TitlePackage:
    package_uri: str
    video: str
    """Absolute URI of the video file."""
    audio: tuple[PackageAudio, ...] = ()
    subtitles: tuple[PackageSubtitle, ...] = ()
    metadata_json: str = "{}"
    """The package's "metadata" object, as canonical JSON (kept hashable)."""


def is_title_package(uri: str) -> bool:
    return uri.lower().endswith(PACKAGE_SUFFIX)


def resolve_uri(uri: str, package_uri: str) -> str:
    """`uri` as written in the package at `package_uri`, made absolute.

    A package in object storage (gs://...) names objects: a local path ('/...') there
    would be a file of whichever worker runs it, and a relative path stays in the
    package's bucket; both are refused otherwise."""
    if "://" in uri:
        return uri
    if "://" in package_uri:
        if uri.startswith("/"):
            raise TitlePackageError(
                f"{package_uri}: {uri!r} is a local path; a package in object storage names "
                "objects (gs://...) or paths relative to itself")
        scheme, rest = package_uri.split("://", 1)
        bucket, _, key = rest.partition("/")
        path = posixpath.normpath(posixpath.join(posixpath.dirname(key), uri))
        if path == ".." or path.startswith("../"):
            raise TitlePackageError(
                f"{package_uri}: {uri!r} leaves the bucket {scheme}://{bucket}/")
        return f"{scheme}://{bucket}/{path}"
    if uri.startswith("/"):
        return uri
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(package_uri)), uri))


def parse_title_package(data: bytes, package_uri: str) -> TitlePackage:
    """The package's contents, checked; raises `TitlePackageError` saying what is wrong."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TitlePackageError(f"{package_uri} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise TitlePackageError(f"{package_uri}: the package must be a JSON object")
    _known(doc, _TOP_KEYS, package_uri)
    video = doc.get("video")
    if not isinstance(video, str) or not video.strip():
        raise TitlePackageError(f'{package_uri}: "video" must name the video file')
    audio = tuple(
        PackageAudio(resolve_uri(_uri(item, where, package_uri), package_uri),
                     _language(item, where, package_uri), _name(item, where, package_uri))
        for where, item in _items(doc, "audio", _AUDIO_KEYS, package_uri))
    subtitles = []
    for where, item in _items(doc, "subtitles", _SUBTITLE_KEYS, package_uri):
        forced = item.get("forced", False)
        if not isinstance(forced, bool):
            raise TitlePackageError(f'{package_uri}: {where}: "forced" must be true or false')
        subtitles.append(PackageSubtitle(
            resolve_uri(_uri(item, where, package_uri), package_uri),
            _language(item, where, package_uri), _name(item, where, package_uri), forced))
    metadata = doc.get("metadata", {})
    if not isinstance(metadata, dict):
        raise TitlePackageError(f'{package_uri}: "metadata" must be a JSON object')
    return TitlePackage(package_uri, resolve_uri(video.strip(), package_uri), audio,
                        tuple(subtitles), json.dumps(metadata, sort_keys=True))


def _known(doc: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise TitlePackageError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                                f"allowed: {', '.join(sorted(allowed))}")


def _items(doc: dict, key: str, allowed: set[str], package_uri: str):
    items = doc.get(key, [])
    if not isinstance(items, list):
        raise TitlePackageError(f'{package_uri}: "{key}" must be a list')
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise TitlePackageError(f"{package_uri}: {where} must be a JSON object")
        _known(item, allowed, f"{package_uri}: {where}")
        yield where, item


def _uri(item: dict, where: str, package_uri: str) -> str:
    uri = item.get("uri")
    if not isinstance(uri, str) or not uri.strip():
        raise TitlePackageError(f'{package_uri}: {where}: "uri" must name a file')
    return uri.strip()


def _language(item: dict, where: str, package_uri: str) -> str:
    language = item.get("language")
    if not isinstance(language, str) or not _LANGUAGE.match(language):
        raise TitlePackageError(f'{package_uri}: {where}: "language" {language!r} is not an '
                                "ISO 639 code")
    return language


def _name(item: dict, where: str, package_uri: str) -> str:
    name = item.get("name", "")
    if not isinstance(name, str) or any(c in name for c in '"\r\n'):
        raise TitlePackageError(f'{package_uri}: {where}: "name" must be text without '
                                "quotes or line breaks")
    return name.strip()
