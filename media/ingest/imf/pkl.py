"""Packing List (SMPTE ST 2067-2 / ST 429-8): each asset's size, SHA-1 and type.

The hash is the base64 of the file's SHA-1 (`<HashAlgorithm>` xmldsig#sha1, the
default); `hash_file` computes it streaming, one file at a time, so the pipeline can
run it as one task per track file.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from media.ingest.imf.errors import ImfMalformedXml
from media.ingest.imf.storage import LOCAL, Storage
from media.ingest.imf.xml import child, children, integer, local, read_xml, text, uuid_text

SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
HASH_BLOCK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class PklAsset:
    id: str
    size: int
    hash_b64: str
    type: str
    original_filename: str = ""


@dataclass(frozen=True)
class PackingList:
    path: str
    id: str
    assets: tuple[PklAsset, ...]

    def by_id(self) -> dict[str, PklAsset]:
        return {asset.id: asset for asset in self.assets}


def read_pkl(path: str, storage: Storage = LOCAL) -> PackingList:
    root = read_xml(path, storage)
    if local(root.tag) != "PackingList":
        raise ImfMalformedXml(f"{path}: root element is <{local(root.tag)}>, not <PackingList>")
    asset_list = child(root, "AssetList")
    if asset_list is None:
        raise ImfMalformedXml(f"{path}: <PackingList> has no <AssetList>")
    assets = []
    for number, element in enumerate(children(asset_list, "Asset"), 1):
        where = f"{path}: asset {number}"
        algorithm = child(element, "HashAlgorithm")
        if algorithm is not None and algorithm.get("Algorithm", SHA1) != SHA1:
            raise ImfMalformedXml(f"{where}: hash algorithm {algorithm.get('Algorithm')!r} "
                                  "is not SHA-1")
        hash_b64 = text(element, "Hash", where)
        try:
            if len(base64.b64decode(hash_b64, validate=True)) != 20:
                raise ValueError
        except ValueError:
            raise ImfMalformedXml(f"{where}: <Hash> {hash_b64!r} is not a base64 SHA-1") from None
        assets.append(PklAsset(
            id=uuid_text(text(element, "Id", where), where),
            size=integer(element, "Size", where),
            hash_b64=hash_b64,
            type=text(element, "Type", where, ""),
            original_filename=text(element, "OriginalFileName", where, ""),
        ))
    return PackingList(path, uuid_text(text(root, "Id", path), path), tuple(assets))


def hash_file(path: str, storage: Storage = LOCAL) -> str:
    """Base64 SHA-1 of a file, read in 4 MiB blocks (memory stays flat whatever its size)."""
    digest = hashlib.sha1(usedforsecurity=False)
    with storage.open(path) as handle:
        while block := handle.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode("ascii")
