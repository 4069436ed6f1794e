"""The two ways RFC 8216 playlists write values, shared by every HLS writer here (media
and multivariant playlists, I-frame playlists, subtitle playlists).

    >>> decimal(Fraction(30000, 1001), 3), quoted("audio")
    ('29.970', '"audio"')
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = ["decimal", "quoted"]

_HALF = Fraction(1, 2)


def decimal(value: Fraction, places: int) -> str:
    """A non-negative `value` with exactly `places` (> 0) decimals, rounded half up.

    Exact: 30000/1001 gives '29.970' and 4.0106666... gives '4.010667', with no float
    on the way.
    """
    whole, frac = divmod(math.floor(value * 10**places + _HALF), 10**places)
    return f"{whole}.{frac:0{places}d}"


def quoted(value: str) -> str:
    """An RFC 8216 quoted-string; it cannot hold a double quote or a line break."""
    if any(c in value for c in '"\r\n'):
        raise ValueError(f"cannot write {value!r} as an HLS quoted-string (no '\"', CR or LF)")
    return f'"{value}"'
