"""Safe XML for IMF: `defusedxml` with DTDs refused, namespace-blind element lookup.

IMF XML (ASSETMAP, PKL, CPL) never needs a DOCTYPE, so any DTD, entity declaration or
external reference is refused before anything is expanded or read: no file or network
access from a package's XML and no entity blow-up. Elements are matched by local name,
so the 2013, 2016 and 2020 namespace editions of the standards read the same.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction

import defusedxml
import defusedxml.ElementTree as SafeET

from media.ingest.imf.errors import ImfMalformedXml, ImfMissingAsset, ImfUnsafeXml
from media.ingest.imf.storage import LOCAL, Storage, read_head

MAX_XML_BYTES = 32 * 1024 * 1024
"""Larger than any real CPL (a feature's is well under 1 MB); a bigger 'XML' is refused."""


def parse_xml(data: bytes, name: str) -> ET.Element:
    """The root element of an IMF XML document, or an `ImfUnsafeXml`/`ImfMalformedXml`."""
    if len(data) > MAX_XML_BYTES:
        raise ImfMalformedXml(f"{name}: {len(data)} bytes is too large for IMF XML")
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise ImfUnsafeXml(f"{name}: refused: {exc}") from None
    except ET.ParseError as exc:
        raise ImfMalformedXml(f"{name}: not well-formed XML: {exc}") from None


def read_xml(path: str, storage: Storage = LOCAL) -> ET.Element:
    """`parse_xml` of a file, reading at most `MAX_XML_BYTES` + 1 bytes."""
    try:
        data = read_head(storage, path, MAX_XML_BYTES + 1)
    except OSError as exc:
        raise ImfMissingAsset(f"{path}: cannot be read: {exc.strerror or exc}") from None
    return parse_xml(data, path)


def local(tag: str) -> str:
    """'Asset' from '{http://...}Asset'."""
    return tag.rsplit("}", 1)[-1]


def children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if local(child.tag) == name]


def child(element: ET.Element, name: str) -> ET.Element | None:
    for item in element:
        if local(item.tag) == name:
            return item
    return None


def text(element: ET.Element, name: str, where: str, default: str | None = None) -> str:
    """Stripped text of the child `name`; `default` when absent, else `ImfMalformedXml`."""
    item = child(element, name)
    if item is None or item.text is None or not item.text.strip():
        if default is not None:
            return default
        raise ImfMalformedXml(f"{where}: <{local(element.tag)}> has no <{name}>")
    return item.text.strip()


def integer(element: ET.Element, name: str, where: str, default: int | None = None) -> int:
    raw = text(element, name, where, None if default is None else str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ImfMalformedXml(f"{where}: <{name}> is {raw!r}, not an integer") from None
    if value < 0:
        raise ImfMalformedXml(f"{where}: <{name}> is negative ({value})")
    return value


def rational(raw: str, where: str) -> Fraction:
    """An IMF rational ('24 1', '24000 1001') as a Fraction."""
    parts = raw.split()
    try:
        numerator, denominator = (int(p) for p in parts)
        if numerator <= 0 or denominator <= 0:
            raise ValueError
    except ValueError:
        raise ImfMalformedXml(f"{where}: edit rate {raw!r} is not two positive "
                              "integers like '24 1'") from None
    return Fraction(numerator, denominator)


def uuid_text(raw: str, where: str) -> str:
    """The canonical form of an IMF id: lower-case 'urn:uuid:…' ids compare equal."""
    value = raw.strip().lower()
    bare = value[len("urn:uuid:"):] if value.startswith("urn:uuid:") else value
    hexdigits = bare.replace("-", "")
    if len(hexdigits) != 32 or any(c not in "0123456789abcdef" for c in hexdigits):
        raise ImfMalformedXml(f"{where}: {raw!r} is not a urn:uuid id")
    return "urn:uuid:" + bare
