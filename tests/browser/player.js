// Plays ?src= with hls.js or dash.js (?player=hls|dash) at ?rate= and records, on
// window.lf, what the player rendered, so tests/test_browser_playback.py can assert it.
//
// Playback starts on the lowest-bitrate rendition with ABR off: with ABR on, a fast
// localhost would pick the top rendition by itself and a forced switch would prove
// nothing. Renditions are named by the player's own index (both players order them by
// ascending bitrate); lf.force(index) is the only way the rendition changes.
'use strict';

(function () {
  const params = new URLSearchParams(location.search);
  const video = document.getElementById('video');
  const LIBRARIES = {
    hls: 'node_modules/hls.js/dist/hls.min.js',
    dash: 'node_modules/dashjs/dist/dash.all.min.js',
  };

  const state = {
    player: params.get('player'),
    src: params.get('src'),
    rate: Number(params.get('rate') || '1'),
    ready: false, // renditions are known and playback was asked for
    renditions: [], // [{index, width, height, bitrate}] of the video renditions
    currentLevel: -1, // index of the rendition being rendered now
    requested: [], // indexes passed to lf.force(), in order
    switches: 0, // changes of the rendered rendition after the first one
    rendered: [], // [{index, height, atTime}] each time the rendered rendition changes
    resizes: [], // [{width, height, atTime}] each change of the decoded frame size
    errors: [], // player, <video> and loading errors, as text
    stalls: [], // hls.js non-fatal stall reports: a busy CPU, not a bad stream
    events: [], // buffering events of the video track, to explain a failure
    ended: false,
  };
  let forceRendition = null;

  function noteError(source, detail) {
    state.errors.push(source + ': ' + detail);
  }

  function noteRendered(index) {
    if (index === state.currentLevel) return;
    if (state.currentLevel !== -1) state.switches += 1;
    state.currentLevel = index;
    const rendition = state.renditions[index];
    state.rendered.push({
      index: index,
      height: rendition ? rendition.height : null,
      atTime: video.currentTime,
    });
  }

  function noteEvent(text) {
    state.events.push(video.currentTime.toFixed(2) + ' ' + text);
  }

  function lowestBitrateIndex() {
    let lowest = 0;
    state.renditions.forEach((r, i) => {
      if (r.bitrate < state.renditions[lowest].bitrate) lowest = i;
    });
    return lowest;
  }

  function play() {
    video.play().catch((e) => noteError('video.play', e.name + ': ' + e.message));
  }

  function startHls(Hls) {
    // By default hls.js buffers the whole short title at once; nextLevel then flushes
    // only from the fragment after the one it expects to be playing by the time the new
    // one loads, so the switch landed at 8 s or, in 2 runs of 10, never. Buffering about
    // one 4 s segment ahead, as over a long title, leaves later segments to switch.
    // (At startup, while no audio is buffered, hls.js may still fetch the third segment;
    // the switch then takes effect at 8 s.)
    const hls = new Hls({ autoStartLoad: false, maxBufferLength: 5, maxMaxBufferLength: 5 });
    const E = Hls.Events;
    hls.on(E.ERROR, (_, d) => {
      const message = d.error ? ': ' + d.error.message : '';
      if (!d.fatal && d.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) {
        // The playhead waited with data buffered (the decoder starved at 4x on a
        // loaded machine); a hole in the stream shows up as a split <video>.buffered.
        state.stalls.push(video.currentTime.toFixed(2) + message);
        return;
      }
      noteError('hls.js', (d.fatal ? 'fatal ' : '') + d.type + '/' + d.details + message);
    });
    hls.on(E.MANIFEST_PARSED, () => {
      state.renditions = hls.levels.map((l, i) => ({
        index: i, width: l.width, height: l.height, bitrate: l.bitrate,
      }));
      const lowest = lowestBitrateIndex();
      hls.startLevel = lowest;
      hls.loadLevel = lowest; // a manual level turns ABR off
      hls.startLoad(0);
      state.ready = true;
      play();
    });
    hls.on(E.LEVEL_SWITCHED, (_, d) => noteRendered(d.level));
    hls.on(E.FRAG_BUFFERED, (_, d) => {
      if (d.frag.type === 'main') noteEvent('buffered level ' + d.frag.level + ' sn ' + d.frag.sn);
    });
    hls.on(E.BUFFER_FLUSHING, (_, d) => {
      noteEvent('flush ' + d.type + ' ' + d.startOffset + '..' + d.endOffset);
    });
    // nextLevel switches at the next fragment boundary and keeps what is playing, which
    // is what a viewer's player does; currentLevel would flush the whole buffer.
    forceRendition = (index) => { hls.nextLevel = index; };
    window.lf.hls = hls;
    hls.loadSource(state.src);
    hls.attachMedia(video);
  }

  function startDash(dashjs) {
    const player = dashjs.MediaPlayer().create();
    player.updateSettings({
      streaming: {
        abr: {
          autoSwitchBitrate: { video: false },
          // 1 kbps is below every rendition, so dash.js starts on the lowest one.
          initialBitrate: { video: 1 },
        },
        lastBitrateCachingInfo: { enabled: false },
        lastMediaSettingsCachingInfo: { enabled: false },
      },
    });
    const E = dashjs.MediaPlayer.events;
    player.on(E.ERROR, (e) => noteError('dash.js', JSON.stringify(e.error)));
    player.on(E.PLAYBACK_ERROR, (e) => noteError('dash.js playback', JSON.stringify(e.error)));
    player.on(E.STREAM_INITIALIZED, () => {
      state.renditions = player.getBitrateInfoListFor('video').map((b) => ({
        index: b.qualityIndex, width: b.width, height: b.height, bitrate: b.bitrate,
      }));
      state.ready = true;
    });
    // Fired once the segment under the playhead is of the new quality, which can be
    // seconds before its frames show: a replaced segment plays from its next IDR frame.
    player.on(E.QUALITY_CHANGE_RENDERED, (e) => {
      if (e.mediaType === 'video') noteRendered(e.newQuality);
    });
    player.on(E.FRAGMENT_LOADING_COMPLETED, (e) => {
      const r = e.request;
      if (r.mediaType === 'video' && r.type === 'MediaSegment') {
        noteEvent('loaded quality ' + r.quality + ' at ' + r.startTime);
      }
    });
    // replace=true drops the buffered segments of the old rendition ahead of the
    // playhead, as hls.js nextLevel does; otherwise all 12 s are already buffered.
    forceRendition = (index) => player.setQualityFor('video', index, true);
    window.lf.dash = player;
    player.initialize(video, state.src, true);
  }

  function snapshot() {
    const buffered = [];
    for (let i = 0; i < video.buffered.length; i++) {
      buffered.push([video.buffered.start(i), video.buffered.end(i)]);
    }
    return Object.assign({}, state, {
      buffered: buffered,
      currentTime: video.currentTime,
      duration: video.duration,
      videoWidth: video.videoWidth,
      videoHeight: video.videoHeight,
      paused: video.paused,
      readyState: video.readyState,
      playbackRate: video.playbackRate,
    });
  }

  function force(index) {
    if (!forceRendition) throw new Error('lf.force() called before the player started');
    state.requested.push(index);
    forceRendition(index);
  }

  window.lf = { state: state, snapshot: snapshot, force: force };

  video.muted = true;
  // The media element's load algorithm resets playbackRate to defaultPlaybackRate.
  video.defaultPlaybackRate = state.rate;
  video.playbackRate = state.rate;
  video.addEventListener('resize', () => {
    state.resizes.push({
      width: video.videoWidth, height: video.videoHeight, atTime: video.currentTime,
    });
  });
  video.addEventListener('ended', () => { state.ended = true; });
  // dash.js now and then pauses on the last frame without the element firing "ended":
  // paused at the duration is the end all the same.
  video.addEventListener('pause', () => {
    if (Number.isFinite(video.duration) && video.currentTime >= video.duration - 0.05) {
      state.ended = true;
    }
  });
  video.addEventListener('error', () => {
    const e = video.error;
    noteError('video', e ? e.code + ' ' + e.message : 'unknown');
  });

  if (!(state.player in LIBRARIES) || !state.src) {
    noteError('page', 'expected ?player=hls|dash&src=<manifest url>');
    return;
  }
  const script = document.createElement('script');
  script.src = LIBRARIES[state.player];
  script.onerror = () => noteError('page', 'could not load ' + script.src);
  script.onload = () => {
    if (state.player === 'hls') startHls(window.Hls);
    else startDash(window.dashjs);
  };
  document.head.appendChild(script);
})();
