"""IMF (SMPTE ST 2067) ingest, Beam-free: read an Interoperable Master Package, check it
against its PKL, and compose each CPL's timeline (see docs/imf.md)."""
