"""ASSETMAP (SMPTE ST 429-9): which file holds which asset id.

Each `<Asset>` has an `<Id>` and a `<ChunkList>` whose `<Chunk>` gives the file's
`<Path>` relative to the folder holding the ASSETMAP; `<PackingList>true` marks PKLs.
A path that is absolute, a URL or climbs out of the package is refused: a package must
never make the pipeline read or write outside its own folder.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from media.ingest.imf.errors import ImfMalformedXml, ImfUnsafePath
from media.ingest.imf.storage import LOCAL, Storage, join, parent
from media.ingest.imf.xml import child, children, local, read_xml, text, uuid_text

ASSETMAP_NAMES = ("ASSETMAP.xml", "ASSETMAP")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class MappedAsset:
    id: str
    """'urn:uuid:…', lower case."""
    path: str
    """Where the file is (the package folder joined with the ASSETMAP's path)."""
    relative_path: str
    """The path as the ASSETMAP writes it."""
    packing_list: bool


@dataclass(frozen=True)
class AssetMap:
    path: str
    """The ASSETMAP file itself."""
    id: str
    assets: tuple[MappedAsset, ...]

    @property
    def folder(self) -> str:
        return parent(self.path)

    def by_id(self) -> dict[str, MappedAsset]:
        return {asset.id: asset for asset in self.assets}


def find_assetmap(folder: str, storage: Storage = LOCAL) -> str | None:
    """The ASSETMAP file of a package folder, None when it has none."""
    for name in ASSETMAP_NAMES:
        candidate = join(folder, name)
        if storage.size(candidate) is not None:
            return candidate
    return None


def safe_relative_path(raw: str, where: str) -> str:
    """`raw` if it is a relative path inside the package, else `ImfUnsafePath`."""
    value = raw.strip().replace("\\", "/")
    if not value or _SCHEME.match(value) or value.startswith("/") or value.startswith("//"):
        raise ImfUnsafePath(f"{where}: path {raw!r} is absolute or a URL")
    if re.match(r"^[A-Za-z]:", value):
        raise ImfUnsafePath(f"{where}: path {raw!r} is a drive path")
    if any(part == ".." for part in value.split("/")):
        raise ImfUnsafePath(f"{where}: path {raw!r} climbs out of the package")
    normal = posixpath.normpath(value)
    if normal in (".", "") or normal.startswith("../"):
        raise ImfUnsafePath(f"{where}: path {raw!r} does not name a file in the package")
    return normal


def read_assetmap(path: str, storage: Storage = LOCAL) -> AssetMap:
    """Parse an ASSETMAP file; paths are checked and joined to its folder."""
    root = read_xml(path, storage)
    if local(root.tag) != "AssetMap":
        raise ImfMalformedXml(f"{path}: root element is <{local(root.tag)}>, not <AssetMap>")
    folder = parent(path)
    asset_list = child(root, "AssetList")
    if asset_list is None:
        raise ImfMalformedXml(f"{path}: <AssetMap> has no <AssetList>")
    assets = []
    for number, element in enumerate(children(asset_list, "Asset"), 1):
        where = f"{path}: asset {number}"
        asset_id = uuid_text(text(element, "Id", where), where)
        chunks = child(element, "ChunkList")
        chunk = None if chunks is None else child(chunks, "Chunk")
        if chunk is None:
            raise ImfMalformedXml(f"{where}: <Asset> {asset_id} has no <ChunkList><Chunk>")
        if len(children(chunks, "Chunk")) != 1:
            raise ImfMalformedXml(f"{where}: assets split into several chunks (volumes) are "
                                  "not supported")
        relative = safe_relative_path(text(chunk, "Path", where), where)
        packing = text(element, "PackingList", where, "false").lower() in ("true", "1")
        assets.append(MappedAsset(asset_id, join(folder, relative), relative, packing))
    map_id = uuid_text(text(root, "Id", path), path)
    return AssetMap(path, map_id, tuple(assets))
