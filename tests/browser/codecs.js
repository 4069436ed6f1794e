// Plays ?src= with hls.js, dash.js or shaka-player (?player=hls|dash|shaka) at ?rate=
// with the players' own choices (ABR on), and records on window.lf the video codec of
// each variant the player selected, for tests/test_codecs_ladder_browser.py.
//
// shaka-player is told the app's codec preference (AV1, then H.264); hls.js and dash.js
// choose by themselves (dash.js by the MPD's selectionPriority).
//
// ?noav1=1 makes AV1 unsupported in the page before a player loads:
// MediaSource.isTypeSupported (and HTMLMediaElement.canPlayType and
// MediaCapabilities.decodingInfo, which some players ask) answer no for any type
// naming av01, as on a device without an AV1 decoder. A player must then fall back to
// the title's H.264 ladder.
'use strict';

(function () {
  const params = new URLSearchParams(location.search);
  const video = document.getElementById('video');
  const LIBRARIES = {
    hls: 'node_modules/hls.js/dist/hls.min.js',
    dash: 'node_modules/dashjs/dist/dash.all.min.js',
    shaka: 'node_modules/shaka-player/dist/shaka-player.compiled.js',
  };
  const state = {
    player: params.get('player'),
    src: params.get('src'),
    rate: Number(params.get('rate') || '1'),
    noAv1: params.get('noav1') === '1',
    codecs: [], // the video codec of each variant the player switched to, in order
    heights: [], // the decoded frame heights, in order
    errors: [],
    ended: false,
  };

  if (state.noAv1) {
    const isTypeSupported = MediaSource.isTypeSupported.bind(MediaSource);
    MediaSource.isTypeSupported = (type) => !/av01/i.test(type) && isTypeSupported(type);
    const canPlayType = HTMLMediaElement.prototype.canPlayType;
    HTMLMediaElement.prototype.canPlayType = function (type) {
      return /av01/i.test(type) ? '' : canPlayType.call(this, type);
    };
    // shaka-player asks MediaCapabilities rather than isTypeSupported.
    const capabilities = navigator.mediaCapabilities;
    const decodingInfo = capabilities.decodingInfo.bind(capabilities);
    capabilities.decodingInfo = (config) => {
      const video = config && config.video;
      if (video && /av01/i.test(video.contentType || '')) {
        return Promise.resolve({ supported: false, smooth: false, powerEfficient: false });
      }
      return decodingInfo(config);
    };
  }

  function noteCodec(codec) {
    if (!codec) return;
    const family = codec.split('.')[0];
    if (state.codecs[state.codecs.length - 1] !== family) state.codecs.push(family);
  }

  function noteError(source, detail) {
    state.errors.push(source + ': ' + detail);
  }

  function play() {
    video.play().catch((e) => noteError('video.play', e.name + ': ' + e.message));
  }

  function startHls(Hls) {
    const hls = new Hls({ maxBufferLength: 5, maxMaxBufferLength: 5 });
    hls.on(Hls.Events.ERROR, (_, d) => {
      if (!d.fatal && d.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) return;
      noteError('hls.js', (d.fatal ? 'fatal ' : '') + d.type + '/' + d.details);
    });
    hls.on(Hls.Events.MANIFEST_PARSED, play);
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => noteCodec(hls.levels[d.level].videoCodec));
    window.lf.hls = hls;
    hls.loadSource(state.src);
    hls.attachMedia(video);
  }

  function startDash(dashjs) {
    const player = dashjs.MediaPlayer().create();
    player.updateSettings({
      streaming: {
        lastBitrateCachingInfo: { enabled: false },
        lastMediaSettingsCachingInfo: { enabled: false },
      },
    });
    const E = dashjs.MediaPlayer.events;
    player.on(E.ERROR, (e) => noteError('dash.js', JSON.stringify(e.error)));
    player.on(E.PLAYBACK_ERROR, (e) => noteError('dash.js playback', JSON.stringify(e.error)));
    const current = () => {
      const track = player.getCurrentTrackFor('video');
      if (track) noteCodec((track.codec || '').replace(/^.*codecs="?([^"]*)"?.*$/, '$1'));
    };
    player.on(E.STREAM_INITIALIZED, current);
    player.on(E.QUALITY_CHANGE_RENDERED, (e) => { if (e.mediaType === 'video') current(); });
    window.lf.dash = player;
    player.initialize(video, state.src, true);
  }

  function startShaka(shaka) {
    shaka.polyfill.installAll();
    const player = new shaka.Player();
    // Shaka keeps, per resolution, the codec whose variant declares the lower peak
    // bandwidth; a service states its preference for the codec it wants where the
    // device decodes it (AV1 first), as here. Without AV1 it takes H.264.
    const prefer = (codec) => ({
      label: '', role: '', language: '', codec: codec, hdrLevel: 'AUTO', layout: '',
    });
    player.configure({ preferredVideo: [prefer('av01'), prefer('avc1')] });
    player.addEventListener('error', (e) => noteError('shaka', JSON.stringify(e.detail)));
    const current = () => {
      const active = player.getVariantTracks().find((t) => t.active);
      if (active) noteCodec(active.videoCodec);
    };
    player.addEventListener('variantchanged', current);
    player.addEventListener('adaptation', current);
    window.lf.shaka = player;
    player.attach(video)
      .then(() => player.load(state.src))
      .then(() => { current(); play(); })
      .catch((e) => noteError('shaka load', JSON.stringify(e)));
  }

  function snapshot() {
    return Object.assign({}, state, {
      currentTime: video.currentTime,
      duration: video.duration,
      videoHeight: video.videoHeight,
    });
  }

  window.lf = { state: state, snapshot: snapshot };
  video.muted = true;
  video.defaultPlaybackRate = state.rate;
  video.playbackRate = state.rate;
  video.addEventListener('resize', () => state.heights.push(video.videoHeight));
  video.addEventListener('ended', () => { state.ended = true; });
  video.addEventListener('error', () => {
    const e = video.error;
    noteError('video', e ? e.code + ' ' + e.message : 'unknown');
  });
  if (!(state.player in LIBRARIES) || !state.src) {
    noteError('page', 'expected ?player=hls|dash|shaka&src=<manifest url>');
    return;
  }
  const script = document.createElement('script');
  script.src = LIBRARIES[state.player];
  script.onerror = () => noteError('page', 'could not load ' + script.src);
  script.onload = () => {
    if (state.player === 'hls') startHls(window.Hls);
    else if (state.player === 'dash') startDash(window.dashjs);
    else startShaka(window.shaka);
  };
  document.head.appendChild(script);
})();
