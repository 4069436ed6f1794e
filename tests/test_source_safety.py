"""Sources that name other files (an HLS playlist, a concat script) are refused before
anything reads the files they name: FFmpeg would otherwise follow them anywhere."""

from __future__ import annotations

import pytest

from media.core.errors import UnreadableSource
from media.inspect.probe import inspect_source
from tests.media_factory import make_clip

POSERS = {
    "playlist.m3u8": "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{target}\n#EXT-X-ENDLIST\n",
    "playlist-as.mp4": "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://{target}\n"
                       "#EXT-X-ENDLIST\n",
    "concat.mp4": "ffconcat version 1.0\nfile '{target}'\n",
    "passwd.m3u8": "#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
}


@pytest.fixture(scope="module")
def real_clip(tmp_path_factory) -> str:
    return make_clip(str(tmp_path_factory.mktemp("safety") / "real.mp4"), duration_s=1,
                     width=160, height=90, gop=25)


@pytest.mark.parametrize("name", POSERS)
def test_a_file_list_posing_as_a_source_is_refused(name, real_clip, tmp_path):
    poser = tmp_path / name
    poser.write_text(POSERS[name].format(target=real_clip))
    with pytest.raises(UnreadableSource, match="not a media file") as caught:
        inspect_source(str(poser), str(poser), "poser")
    assert "playlists and scripts that name other files are refused" in caught.value.hint


def test_the_file_it_names_is_a_good_source_itself(real_clip):
    assert inspect_source(real_clip, real_clip, "real").frame_count == 25
