"""Packaging: assemble a rendition's chunks by stream copy, cut CMAF segments, and write
the HLS playlists (with I-frame playlists), the DASH MPD and WebVTT subtitles over them.
MP4 boxes are read in one place (`boxes`, and `isobmff` on top of it for init segments
and fragments).
"""
