"""Small IMF packages written by the tests from a description.

Track files are made by the bundled FFmpeg: JPEG 2000 or ProRes image in MXF OP1a and
PCM audio in MXF OP-Atom (the only audio-only MXF it writes), a couple of seconds at
160x90. Timed text is an IMSC1 document, bare or in a KLV wrapper the way an MXF timed
text track file carries it (a partition pack, one header metadata set, then the timed
text essence element). CPLs, the PKL and the ASSETMAP are written from the
description with real UUIDs, sizes and SHA-1 hashes, so the same package can then be
damaged on purpose (a byte flipped, a file removed, a path edited) for the bad cases.

    imf = ImfFactory(tmp_path)
    imf.image("v1", "pkg", frames=48)
    imf.audio("en", "pkg", frames=48, language="en")
    imf.package("pkg", [CplSpec("Film", [Seg(image=[Res("v1")], audio=[[Res("en")]])])])
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from media.core import ffmpeg

CPL_NS = "http://www.smpte-ra.org/schemas/2067-3/2016"
CORE_NS = "http://www.smpte-ra.org/schemas/2067-2/2016"
PKL_NS = "http://www.smpte-ra.org/schemas/2067-2/2016/PKL"
AM_NS = "http://www.smpte-ra.org/schemas/429-9/2007/AM"
R0_NS = "http://www.smpte-ra.org/reg/395/2014/13/1/aaf"
R1_NS = "http://www.smpte-ra.org/reg/335/2012"
TTML_NS = "http://www.w3.org/ns/ttml"
# The KLV key of an MXF timed text essence element (ST 429-5), and a partition pack's.
TT_KLV_KEY = bytes.fromhex("060e2b34010201010d01030117010b01")
PARTITION_KEY = bytes.fromhex("060e2b34020501010d01020101020400")
METADATA_KEY = bytes.fromhex("060e2b34025301010d01010101016400")


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


@dataclass
class TrackFile:
    name: str
    kind: str
    """'image', 'audio' or 'text'."""
    path: str
    frames: int
    """IntrinsicDuration, in edit units of `edit_rate`."""
    edit_rate: str = "24 1"
    language: str = ""
    id: str = field(default_factory=urn)
    descriptor_id: str = field(default_factory=urn)


@dataclass
class Res:
    """A CPL resource: `file` names a TrackFile (or an unknown name, for the bad case)."""

    file: str
    entry: int = 0
    duration: int | None = None
    """SourceDuration; None: the rest of the track file."""
    repeat: int = 1
    edit_rate: str | None = None
    """The resource's EditRate; None: the track file's."""
    intrinsic: int | None = None
    """IntrinsicDuration written; None: the track file's true length."""


@dataclass
class Seg:
    image: list[Res]
    audio: list[list[Res]] = field(default_factory=list)
    """One resource list per audio track (MainAudioSequence)."""
    subtitles: list[Res] = field(default_factory=list)
    forced: list[Res] = field(default_factory=list)
    markers: list[tuple[str, int]] = field(default_factory=list)
    """(label, offset in CPL edit units from the segment's start)."""


@dataclass
class CplSpec:
    title: str
    segments: list[Seg]
    version: str = "v1"
    edit_rate: str = "24 1"
    id: str = field(default_factory=urn)
    locale_languages: list[str] = field(default_factory=list)


def _sha1_b64(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode()


def _rate_arg(rate: str) -> str:
    numerator, denominator = rate.split()
    return f"{numerator}/{denominator}"


class ImfFactory:
    """Writes track files and packages below `root`; remembers every track file by name so
    a later (supplemental) package can reference an earlier package's files."""

    def __init__(self, root: str):
        self.root = str(root)
        self.files: dict[str, TrackFile] = {}
        self.unknown: dict[str, str] = {}

    def folder(self, name: str) -> str:
        path = os.path.join(self.root, name)
        os.makedirs(path, exist_ok=True)
        return path

    def image(self, name: str, package: str, frames: int, codec: str = "jpeg2000",
              size: str = "160x90", rate: str = "24 1", pattern: str = "testsrc2") -> TrackFile:
        path = os.path.join(self.folder(package), f"{name}.mxf")
        codec_args = (["-c:v", "jpeg2000", "-pix_fmt", "yuv422p10le", "-q:v", "30"]
                      if codec == "jpeg2000" else
                      ["-c:v", "prores_ks", "-profile:v", "3", "-pix_fmt", "yuv422p10le"])
        ffmpeg.run(ffmpeg.ffmpeg_argv(
            "-f", "lavfi", "-i", f"{pattern}=size={size}:rate={_rate_arg(rate)}",
            "-frames:v", str(frames), *codec_args, "-f", "mxf", path))
        return self._add(TrackFile(name, "image", path, frames, rate))

    def audio(self, name: str, package: str, frames: int, language: str = "en",
              rate: str = "24 1", frequency: int = 440) -> TrackFile:
        """Stereo 48 kHz 24-bit PCM; its edit rate is the video's (`frames` edit units)."""
        numerator, denominator = (int(v) for v in rate.split())
        samples = frames * 48000 * denominator // numerator
        path = os.path.join(self.folder(package), f"{name}.mxf")
        ffmpeg.run(ffmpeg.ffmpeg_argv(
            "-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=48000",
            "-af", f"atrim=end_sample={samples}",
            "-c:a", "pcm_s24le", "-ar", "48000", "-mxf_audio_edit_rate", _rate_arg(rate),
            "-f", "mxf_opatom", path))
        return self._add(TrackFile(name, "audio", path, frames, rate, language))

    def imsc1(self, name: str, package: str, frames: int, cues: list[tuple[float, float, str]],
              language: str = "en", rate: str = "24 1", klv: bool = False) -> TrackFile:
        """An IMSC1 text profile document; `klv`: wrapped like a timed text track file."""
        body = "".join(
            f'<p begin="{start:.3f}s" end="{end:.3f}s">{escape(line)}</p>'
            for start, end, line in cues)
        document = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<tt xmlns="{TTML_NS}" xmlns:ttp="http://www.w3.org/ns/ttml#parameter" '
            f'ttp:profile="http://www.w3.org/ns/ttml/profile/imsc1/text" xml:lang="{language}">'
            f"<body><div>{body}</div></body></tt>\n").encode()
        path = os.path.join(self.folder(package), f"{name}.{'mxf' if klv else 'xml'}")
        with open(path, "wb") as handle:
            if klv:
                # A local set whose first tag is 3c0a (InstanceUID) starts with '<\n', as
                # real header metadata does: the reader must go by key, not by a '<'.
                metadata = bytes.fromhex("3c0a0010") + uuid.uuid4().bytes
                handle.write(_klv(PARTITION_KEY, bytes(88)) + _klv(METADATA_KEY, metadata)
                             + _klv(TT_KLV_KEY, document))
            else:
                handle.write(document)
        return self._add(TrackFile(name, "text", path, frames, rate, language))

    def _add(self, track: TrackFile) -> TrackFile:
        self.files[track.name] = track
        return track

    # -- XML ----------------------------------------------------------------------------

    def _file(self, name: str) -> TrackFile | None:
        return self.files.get(name)

    def _resource(self, res: Res, default_rate: str) -> str:
        track = self._file(res.file)
        if track is None:  # a name no package has: the 'unknown track file' case
            track_id = self.unknown.setdefault(res.file, urn())
            frames, rate, encoding = res.intrinsic or 24, res.edit_rate or default_rate, urn()
        else:
            track_id, frames, rate = track.id, track.frames, track.edit_rate
            encoding = track.descriptor_id
        intrinsic = res.intrinsic if res.intrinsic is not None else frames
        duration = res.duration if res.duration is not None else intrinsic - res.entry
        return (
            '<Resource xsi:type="TrackFileResourceType">'
            f"<Id>{urn()}</Id><EditRate>{res.edit_rate or rate}</EditRate>"
            f"<IntrinsicDuration>{intrinsic}</IntrinsicDuration>"
            f"<EntryPoint>{res.entry}</EntryPoint><SourceDuration>{duration}</SourceDuration>"
            f"<RepeatCount>{res.repeat}</RepeatCount>"
            f"<SourceEncoding>{encoding}</SourceEncoding><TrackFileId>{track_id}</TrackFileId>"
            "</Resource>")

    def _sequence(self, kind: str, track_id: str, resources: list[Res], rate: str) -> str:
        body = "".join(self._resource(r, rate) for r in resources)
        return (f"<cc:{kind}><Id>{urn()}</Id><TrackId>{track_id}</TrackId>"
                f"<ResourceList>{body}</ResourceList></cc:{kind}>")

    def _descriptor(self, track: TrackFile) -> str:
        if track.kind == "audio":
            inner = (
                "<r0:WAVEPCMDescriptor><r1:InstanceID>" + urn() + "</r1:InstanceID>"
                "<r1:SampleRate>48000/1</r1:SampleRate><r1:ChannelCount>2</r1:ChannelCount>"
                "<r1:QuantizationBits>24</r1:QuantizationBits><r0:SubDescriptors>"
                "<r0:SoundfieldGroupLabelSubDescriptor>"
                "<r1:MCATagSymbol>sgST</r1:MCATagSymbol><r1:MCATagName>Standard Stereo"
                "</r1:MCATagName>"
                f"<r1:RFC5646SpokenLanguage>{track.language}</r1:RFC5646SpokenLanguage>"
                "</r0:SoundfieldGroupLabelSubDescriptor></r0:SubDescriptors>"
                "</r0:WAVEPCMDescriptor>")
        elif track.kind == "text":
            inner = ("<r0:TimedTextDescriptor><r1:RFC5646LanguageTagList>"
                     f"{track.language}</r1:RFC5646LanguageTagList></r0:TimedTextDescriptor>")
        else:
            inner = "<r0:RGBADescriptor><r1:SampleRate>24/1</r1:SampleRate></r0:RGBADescriptor>"
        return (f"<EssenceDescriptor><Id>{track.descriptor_id}</Id>{inner}"
                "</EssenceDescriptor>")

    def cpl_xml(self, spec: CplSpec) -> str:
        rate = spec.edit_rate
        image_track, marker_track = urn(), urn()
        audio_tracks = [urn() for _ in range(max((len(s.audio) for s in spec.segments),
                                                 default=0))]
        subtitle_track, forced_track = urn(), urn()
        used: dict[str, TrackFile] = {}
        segments = []
        for seg in spec.segments:
            parts = []
            for res in [*seg.image, *[r for a in seg.audio for r in a], *seg.subtitles,
                        *seg.forced]:
                if self._file(res.file):
                    used[res.file] = self.files[res.file]
            if seg.markers:
                length = sum((r.duration if r.duration is not None else
                              (r.intrinsic or self.files[r.file].frames) - r.entry) * r.repeat
                             for r in seg.image)
                markers = "".join(f"<Marker><Label>{label}</Label><Offset>{offset}</Offset>"
                                  "</Marker>" for label, offset in seg.markers)
                parts.append(
                    f"<MarkerSequence><Id>{urn()}</Id><TrackId>{marker_track}</TrackId>"
                    '<ResourceList><Resource xsi:type="MarkerResourceType">'
                    f"<Id>{urn()}</Id><EditRate>{rate}</EditRate>"
                    f"<IntrinsicDuration>{length}</IntrinsicDuration>{markers}</Resource>"
                    "</ResourceList></MarkerSequence>")
            parts.append(self._sequence("MainImageSequence", image_track, seg.image, rate))
            for number, resources in enumerate(seg.audio):
                parts.append(self._sequence("MainAudioSequence", audio_tracks[number],
                                            resources, rate))
            if seg.subtitles:
                parts.append(self._sequence("SubtitlesSequence", subtitle_track,
                                            seg.subtitles, rate))
            if seg.forced:
                parts.append(self._sequence("ForcedNarrativeSequence", forced_track,
                                            seg.forced, rate))
            segments.append(f"<Segment><Id>{urn()}</Id><SequenceList>{''.join(parts)}"
                            "</SequenceList></Segment>")
        descriptors = "".join(self._descriptor(t) for t in used.values())
        locales = ""
        if spec.locale_languages:
            languages = "".join(f"<Language>{v}</Language>" for v in spec.locale_languages)
            locales = (f"<LocaleList><Locale><LanguageList>{languages}</LanguageList>"
                       "</Locale></LocaleList>")
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<CompositionPlaylist xmlns="{CPL_NS}" xmlns:cc="{CORE_NS}" '
            f'xmlns:r0="{R0_NS}" xmlns:r1="{R1_NS}" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<Id>{spec.id}</Id><IssueDate>2026-01-01T00:00:00Z</IssueDate>"
            f"<Creator>ladderflow tests</Creator>"
            f"<ContentTitle>{escape(spec.title)}</ContentTitle>"
            "<ContentKind>feature</ContentKind>"
            f"<ContentVersionList><ContentVersion><Id>urn:x:{escape(spec.version)}</Id>"
            f"<LabelText>{escape(spec.version)}</LabelText></ContentVersion></ContentVersionList>"
            f"<EssenceDescriptorList>{descriptors}</EssenceDescriptorList>"
            f"{locales}<EditRate>{rate}</EditRate>"
            f"<SegmentList>{''.join(segments)}</SegmentList></CompositionPlaylist>\n")

    def package(self, package: str, cpls: list[CplSpec]) -> str:
        """Write the CPLs, the PKL and the ASSETMAP of `package` (its folder below root):
        every track file in that folder is an asset of it. Returns the folder."""
        folder = self.folder(package)
        assets = []  # (id, path, type)
        for spec in cpls:
            path = os.path.join(folder, f"CPL_{spec.id[9:]}.xml")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(self.cpl_xml(spec))
            assets.append((spec.id, path, "text/xml"))
        for track in self.files.values():
            if os.path.dirname(track.path) == folder:
                kind = "application/mxf" if track.path.endswith(".mxf") else "application/ttml+xml"
                assets.append((track.id, track.path, kind))
        pkl_id = urn()
        pkl_assets = "".join(
            f"<Asset><Id>{asset_id}</Id><Hash>{_sha1_b64(path)}</Hash>"
            f"<Size>{os.path.getsize(path)}</Size><Type>{kind}</Type>"
            f"<OriginalFileName>{os.path.basename(path)}</OriginalFileName>"
            '<HashAlgorithm Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/></Asset>'
            for asset_id, path, kind in assets)
        pkl_path = os.path.join(folder, f"PKL_{pkl_id[9:]}.xml")
        with open(pkl_path, "w", encoding="utf-8") as handle:
            handle.write(
                f'<?xml version="1.0" encoding="UTF-8"?>\n<PackingList xmlns="{PKL_NS}">'
                f"<Id>{pkl_id}</Id><IssueDate>2026-01-01T00:00:00Z</IssueDate>"
                f"<Issuer>ladderflow tests</Issuer><Creator>ladderflow tests</Creator>"
                f"<AssetList>{pkl_assets}</AssetList></PackingList>\n")
        entries = [(pkl_id, pkl_path, True)] + [(a, p, False) for a, p, _ in assets]
        am_assets = "".join(
            f"<Asset><Id>{asset_id}</Id>"
            + ("<PackingList>true</PackingList>" if is_pkl else "")
            + f"<ChunkList><Chunk><Path>{os.path.basename(path)}</Path><VolumeIndex>1"
              f"</VolumeIndex><Offset>0</Offset><Length>{os.path.getsize(path)}</Length>"
              "</Chunk></ChunkList></Asset>"
            for asset_id, path, is_pkl in entries)
        with open(os.path.join(folder, "ASSETMAP.xml"), "w", encoding="utf-8") as handle:
            handle.write(
                f'<?xml version="1.0" encoding="UTF-8"?>\n<AssetMap xmlns="{AM_NS}">'
                f"<Id>{urn()}</Id><Creator>ladderflow tests</Creator><VolumeCount>1"
                "</VolumeCount><IssueDate>2026-01-01T00:00:00Z</IssueDate>"
                "<Issuer>ladderflow tests</Issuer>"
                f"<AssetList>{am_assets}</AssetList></AssetMap>\n")
        return folder


def _klv(key: bytes, value: bytes) -> bytes:
    """One KLV triplet with a 4-byte BER long-form length."""
    return key + bytes([0x83]) + len(value).to_bytes(3, "big") + value


def cpl_path(folder: str, spec: CplSpec) -> str:
    return os.path.join(folder, f"CPL_{spec.id[9:]}.xml")


def rewrite(path: str, old: str, new: str) -> None:
    """Replace text in a package's XML file (for the bad cases)."""
    with open(path, encoding="utf-8") as handle:
        content = handle.read()
    assert old in content, f"{old!r} not in {path}"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(content.replace(old, new, 1))
