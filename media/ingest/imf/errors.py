"""The errors an IMF package can raise: each a `MediaError` (the title goes to the dead
letter) whose hint says what the delivery must fix."""

from __future__ import annotations

from media.core.errors import MediaError


class ImfError(MediaError):
    """An IMF package that cannot be used as delivered."""

    hint = ("Fix the IMF package (ASSETMAP, PKL, CPL and track files must agree) and "
            "deliver it again.")


class ImfMalformedXml(ImfError):
    hint = ("An XML file of the package is not well-formed or lacks a required element; "
            "re-export the package from the mastering tool.")


class ImfUnsafeXml(ImfError):
    hint = ("The package's XML declares a DTD, entities or external references, which IMF "
            "XML never needs; they are refused (no file or network read, no entity "
            "expansion). Re-export the package without a DOCTYPE.")


class ImfUnsafePath(ImfError):
    hint = ("An ASSETMAP path must be relative and stay inside the package folder: no "
            "absolute path, no URL, no '..'. Re-export the ASSETMAP.")


class ImfMissingAsset(ImfError):
    hint = ("An asset the package lists is not there. Upload every file the ASSETMAP "
            "names (with a supplemental package, give its original package too, e.g. "
            "with --imf_assetmaps).")


class ImfSizeMismatch(ImfError):
    hint = ("A file's size differs from the size its PKL lists: the upload is truncated "
            "or the file was replaced. Upload the file again.")


class ImfHashMismatch(ImfError):
    hint = ("A file's SHA-1 differs from the hash its PKL lists: the file is corrupted "
            "or was changed after packaging. Upload it again or re-export the package.")


class ImfUnknownTrackFile(ImfError):
    hint = ("The CPL references a track file that no ASSETMAP or PKL given lists. For a "
            "supplemental package, give the original package's ASSETMAP too.")


class ImfResourceOverrun(ImfError):
    hint = ("A CPL resource reads past its track file: EntryPoint + SourceDuration must "
            "not exceed IntrinsicDuration. Fix the CPL's resource timing.")


class ImfEditRateMismatch(ImfError):
    hint = ("Edit rates disagree: image resources must use the CPL's EditRate, and every "
            "sequence of a segment must last as long as its image sequence. Fix the CPL.")


class ImfEmptyComposition(ImfError):
    hint = ("The CPL composes nothing: it needs at least one segment with a "
            "MainImageSequence of non-zero duration.")


class ImfNoComposition(ImfError):
    hint = ("No Composition Playlist was found (or not the one asked for with --cpl). "
            "Give the folder holding ASSETMAP.xml, or a CPL file, and a CPL id it lists.")
