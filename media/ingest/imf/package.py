"""An IMF package as given: its ASSETMAP(s), PKL(s) and CPL(s), and the titles it holds.

`open_package` takes the package folder (the one holding ASSETMAP.xml), its ASSETMAP or
one CPL file, plus the ASSETMAPs of other packages a supplemental package draws track
files from. `compositions` composes one title per CPL, or the one CPL asked for.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from media.ingest.imf.assetmap import AssetMap, MappedAsset, find_assetmap, read_assetmap
from media.ingest.imf.composition import Composition, compose, cpl_title_id
from media.ingest.imf.cpl import CompositionPlaylist, cpl_from_root, is_cpl
from media.ingest.imf.errors import ImfMissingAsset, ImfNoComposition
from media.ingest.imf.pkl import PackingList, PklAsset, read_pkl
from media.ingest.imf.storage import LOCAL, Storage, parent
from media.ingest.imf.xml import read_xml

_XML_TYPES = ("text/xml", "application/xml")
"""PKL types of XML assets (CPLs, OPLs); TTML ('application/ttml+xml') is not one."""


@dataclass(frozen=True)
class ImfPackage:
    assetmaps: tuple[AssetMap, ...]
    """The package's own ASSETMAP first, then those given for supplemental packages."""
    pkls: tuple[PackingList, ...]
    cpls: tuple[CompositionPlaylist, ...]
    """The CPLs of the package itself (or the one CPL file given)."""
    storage: Storage = field(default=LOCAL, compare=False)
    """Where its files are read from."""

    def asset(self, asset_id: str) -> MappedAsset | None:
        """The asset's entry in the first ASSETMAP that lists it."""
        for assetmap in self.assetmaps:
            for asset in assetmap.assets:
                if asset.id == asset_id:
                    return asset
        return None

    def path_of(self, asset_id: str) -> str | None:
        asset = self.asset(asset_id)
        return asset.path if asset else None

    def pkl_entry(self, asset_id: str) -> PklAsset | None:
        for pkl in self.pkls:
            for asset in pkl.assets:
                if asset.id == asset_id:
                    return asset
        return None

    def own_pkls(self) -> list[PackingList]:
        """The PKLs the package's own ASSETMAP lists (not those of packages it draws on)."""
        own = {asset.path for asset in self.assetmaps[0].assets if asset.packing_list}
        return [pkl for pkl in self.pkls if pkl.path in own]

    @property
    def assetmap_paths(self) -> list[str]:
        return [assetmap.path for assetmap in self.assetmaps]


def _assetmap_path(source: str, storage: Storage) -> str:
    """The ASSETMAP of `source`: the file itself, or the one in the folder it names."""
    if storage.size(source) is not None:
        return source
    found = find_assetmap(source.rstrip("/"), storage)
    if found is None:
        raise ImfMissingAsset(f"{source}: no ASSETMAP.xml there (nor a file of that name)")
    return found


def open_package(source: str, other_assetmaps: Sequence[str] = (),
                 storage: Storage = LOCAL) -> ImfPackage:
    """Read the package at `source` (folder, ASSETMAP or CPL file) with the ASSETMAPs (or
    package folders) in `other_assetmaps` that its CPLs may draw track files from."""
    given_cpl = None
    primary = _assetmap_path(source, storage)
    if primary == source:
        root = read_xml(source, storage)
        if is_cpl(root):
            given_cpl = cpl_from_root(root, source)
            primary = find_assetmap(parent(source), storage)
            if primary is None:
                raise ImfMissingAsset(f"{source}: no ASSETMAP.xml beside the CPL")
    paths = [primary]
    for other in other_assetmaps:
        path = _assetmap_path(other, storage)
        if storage.canonical(path) not in {storage.canonical(p) for p in paths}:
            paths.append(path)
    assetmaps = tuple(read_assetmap(path, storage) for path in paths)
    pkls = []
    for assetmap in assetmaps:
        for asset in assetmap.assets:
            if asset.packing_list:
                if storage.size(asset.path) is None:
                    raise ImfMissingAsset(f"{assetmap.path}: packing list {asset.relative_path} "
                                          "is missing")
                pkls.append(read_pkl(asset.path, storage))
    package = ImfPackage(assetmaps, tuple(pkls), (), storage)
    cpls = (given_cpl,) if given_cpl is not None else tuple(_package_cpls(package))
    return dataclasses.replace(package, cpls=cpls)


def _package_cpls(package: ImfPackage) -> list[CompositionPlaylist]:
    """The CPLs among the XML assets of the package's own PKLs, in PKL order."""
    mapped = package.assetmaps[0].by_id()
    storage = package.storage
    found = []
    for pkl in package.own_pkls():
        for entry in pkl.assets:
            asset = mapped.get(entry.id)
            xml_type = entry.type.lower() in _XML_TYPES or (
                not entry.type and asset is not None and asset.path.endswith(".xml"))
            if asset is None or not xml_type:
                continue
            if storage.size(asset.path) is None:
                raise ImfMissingAsset(f"{pkl.path}: XML asset {asset.relative_path} is missing")
            root = read_xml(asset.path, storage)
            if is_cpl(root):
                found.append(cpl_from_root(root, asset.path))
    return found


def compositions(package: ImfPackage, cpl_id: str = "") -> list[Composition]:
    """One composed title per CPL of the package, or only the CPL whose id is `cpl_id`
    ('urn:uuid:…' or the bare UUID). Title ids are unique within the package (the
    same whether one CPL or all are asked for)."""
    if not package.cpls:
        raise ImfNoComposition(f"{package.assetmaps[0].path}: the package holds no CPL")
    chosen = package.cpls
    if cpl_id:
        wanted = cpl_id.strip().lower()
        wanted = wanted if wanted.startswith("urn:uuid:") else "urn:uuid:" + wanted
        chosen = tuple(cpl for cpl in package.cpls if cpl.id == wanted)
        if not chosen:
            listed = ", ".join(f"{cpl.id} ({cpl.content_title})" for cpl in package.cpls)
            raise ImfNoComposition(f"CPL {cpl_id} is not in the package; it has: {listed}")
    # Two CPLs with one ContentTitle and one version label still make two titles.
    counts = Counter(cpl_title_id(cpl) for cpl in package.cpls)
    titles = []
    for cpl in chosen:
        title = compose(cpl, package.path_of)
        if counts[title.title_id] > 1:
            unique = f"{title.title_id}-{cpl.id.removeprefix('urn:uuid:')[:8]}"
            title = dataclasses.replace(title, title_id=unique)
        titles.append(title)
    return titles
