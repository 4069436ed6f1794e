"""Checks that read the package's files: presence, sizes and SHA-1 hashes against the PKL.

`check_assets` is cheap (a stat per file) and runs before anything else; `hash_tasks`
lists one `HashTask` per file so the pipeline can hash track files in parallel, one
task each, and `check_hash` runs one. `missing_assets` tells whether an upload in
progress is complete (every asset a PKL lists present at its listed size).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from media.ingest.imf.composition import Composition
from media.ingest.imf.errors import (
    ImfHashMismatch,
    ImfMissingAsset,
    ImfSizeMismatch,
    ImfUnknownTrackFile,
)
from media.ingest.imf.package import ImfPackage
from media.ingest.imf.pkl import hash_file
from media.ingest.imf.storage import LOCAL, Storage


@dataclass(frozen=True)
class HashTask:
    asset_id: str
    path: str
    size: int
    hash_b64: str


def _needed(package: ImfPackage, composition: Composition) -> list[HashTask]:
    tasks = []
    for asset_id in [composition.cpl.id, *composition.track_file_ids()]:
        path = package.path_of(asset_id)
        if path is None:
            if asset_id == composition.cpl.id:
                continue  # a CPL given as a file need not be in the ASSETMAP
            raise ImfUnknownTrackFile(f"track file {asset_id} is in no ASSETMAP given")
        entry = package.pkl_entry(asset_id)
        if entry is None:
            if asset_id == composition.cpl.id:
                continue
            raise ImfUnknownTrackFile(
                f"track file {asset_id} ({posixpath.basename(path)}) is in no PKL: its size "
                "and hash cannot be checked")
        tasks.append(HashTask(asset_id, path, entry.size, entry.hash_b64))
    return tasks


def check_assets(package: ImfPackage, composition: Composition) -> list[HashTask]:
    """Every file the composition needs is there at its PKL size; returns the hash tasks."""
    tasks = _needed(package, composition)
    for task in tasks:
        _check_size(task, package.storage)
    return tasks


def hash_tasks(package: ImfPackage, composition: Composition) -> list[HashTask]:
    return check_assets(package, composition)


def _check_size(task: HashTask, storage: Storage) -> None:
    size = storage.size(task.path)
    if size is None:
        raise ImfMissingAsset(f"asset {task.asset_id} ({task.path}) is missing")
    if size != task.size:
        raise ImfSizeMismatch(f"{task.path}: {size} bytes, the PKL lists {task.size}")


def check_hash(task: HashTask, storage: Storage = LOCAL) -> None:
    """Hash one file (streaming) and compare with its PKL hash."""
    _check_size(task, storage)
    actual = hash_file(task.path, storage)
    if actual != task.hash_b64:
        raise ImfHashMismatch(f"{task.path}: SHA-1 {actual}, the PKL lists {task.hash_b64}")


def missing_assets(package: ImfPackage) -> list[str]:
    """'relative path (why)' for each asset of the package's own PKLs not yet complete."""
    mapped = package.assetmaps[0].by_id()
    missing = []
    for pkl in package.own_pkls():
        for entry in pkl.assets:
            asset = mapped.get(entry.id)
            if asset is None:
                missing.append(f"{entry.id} (not in the ASSETMAP)")
                continue
            size = package.storage.size(asset.path)
            if size is None:
                missing.append(f"{asset.relative_path} (absent)")
            elif size != entry.size:
                missing.append(f"{asset.relative_path} ({size} of {entry.size} bytes)")
    return missing


def validate(package: ImfPackage, composition: Composition, hashes: bool = True) -> None:
    """All checks in this process, one file at a time (tests and single-machine runs)."""
    for task in check_assets(package, composition):
        if hashes:
            check_hash(task, package.storage)
