"""From a composed IMF title to what the rest of the pipeline reads: FFmpeg input
arguments for the composed timeline, and the `SourceInfo` of the title.

`load_titles` is the one call an ingest/inspect stage needs: open the package, compose
one title per CPL (or the chosen one), and run the checks that read no essence
(presence and sizes against the PKL, resources against their track files). Hashing is
separate (`validate.hash_tasks` / `check_hash`), so it can run one task per track file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from fractions import Fraction

from media.core.types import AudioStreamInfo, SourceInfo
from media.ingest.imf.composition import Composition
from media.ingest.imf.essence import check_track_files
from media.ingest.imf.package import ImfPackage, compositions, open_package
from media.ingest.imf.storage import LOCAL, Storage
from media.ingest.imf.validate import check_assets

CONTAINER = "imf"


def load_titles(source: str, other_assetmaps: Sequence[str] = (), cpl_id: str = "",
                storage: Storage = LOCAL) -> tuple[ImfPackage, list[Composition]]:
    """The package and its checked titles (no hashing; see `validate.hash_tasks`)."""
    package = open_package(source, other_assetmaps, storage)
    titles = compositions(package, cpl_id)
    for composition in titles:
        check_assets(package, composition)
        check_track_files(composition, package.storage)
    return package, titles


def ffmpeg_input_args(package: ImfPackage, composition: Composition,
                      start_s: Fraction | float | None = None) -> list[str]:
    """FFmpeg arguments that open the composed title (video stream 0, then one audio
    stream per MainAudioSequence); `start_s` seeks there first (frame-exact for intra-only
    JPEG 2000 and ProRes). For a package on local disk (FFmpeg opens the files itself);
    ASSETMAP paths must not contain commas (FFmpeg splits on them)."""
    seek = [] if start_s is None else ["-ss", f"{float(start_s):.6f}"]
    return [*seek, "-f", "imf", "-assetmaps", ",".join(package.assetmap_paths),
            "-i", composition.cpl.path]


def source_info(composition: Composition, image: SourceInfo,
                audio: Sequence[AudioStreamInfo] = ()) -> SourceInfo:
    """The title's `SourceInfo`: the image track file's inspection (`inspect_source` on
    the first image track file: size, pixel format, colour) with the composition's
    identity, length and audio tracks. `audio` holds one `inspect_audio_file` result per
    audio track (its first track file); the language is the CPL's."""
    tracks = tuple(
        dataclasses.replace(info, stream_index=number + 1, language=track.language,
                            uri=composition.cpl.path)
        for number, (track, info) in enumerate(zip(composition.audio, audio, strict=True)))
    return dataclasses.replace(
        image,
        source_uri=composition.cpl.path,
        title_id=composition.title_id,
        container=CONTAINER,
        frame_rate=composition.edit_rate,
        frame_count=composition.frame_count,
        video_start_s=0.0,
        container_start_s=0.0,
        audio=tracks,
        package_uri=composition.cpl.path,
    )
