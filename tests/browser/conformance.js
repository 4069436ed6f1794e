// Loads ?src= with hls.js, dash.js or shaka-player (?player=hls|dash|shaka) and records,
// on window.lfc, what the player offers and what it does, so that
// tests/test_player_conformance.py can assert it:
//
//   lfc.state.renditions    [{index, width, height, bitrate}], ascending bitrate
//   lfc.state.rendered      [{index, height, atTime}] the player's own "now rendering"
//   lfc.state.resizes       [{width, height, atTime}] each change of the decoded frame size
//   lfc.state.audioTracks   [{index, language, name}] as the player lists them
//   lfc.state.activeAudio   {index, language, name} the audio track the player says plays
//   lfc.state.textTracks    [{index, language, name}] as the player lists them
//   lfc.state.activeText    {index, language, name} or null
//   lfc.state.cuesShown     [{text, startTime, endTime, atTime, language}] cues that were
//                           active on a <video> text track in mode "showing"
//   lfc.state.errors        player, <video> and page errors, as text
//   lfc.state.seeks         [{from, to}] where each seek of the <video> left and went (the
//                           tests never seek: a player seeks on its own to jump a gap or
//                           break a stall; shaka-player also seeks to where the playhead
//                           stands, from 0 to 0, after it flushes or resets a buffer)
//   lfc.state.stalls        [{kind, atTime}] gaps jumped and stalls the player reported
//   lfc.state.ended         the <video> fired "ended"
//
// and lfc.forceRendition(index), lfc.selectAudio(lang), lfc.showSubtitles(lang), lfc.play().
//
// Playback starts on the lowest-bitrate rendition with ABR off (a fast localhost would
// otherwise go straight to the top rendition), and only when asked: with ?autoplay=0 the
// player loads, lfc.state.ready turns true, and lfc.play() starts it. A rendition index is
// a position in lfc.state.renditions. Languages match by their primary subtag once
// canonical, so "fra", "fre" and "fr" are one language (dash.js and shaka-player report
// ISO 639-1 codes for the manifest's ISO 639-2 ones).
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
    autoplay: params.get('autoplay') !== '0',
    version: null, // the player library's version
    ready: false, // renditions and tracks are known
    playRequested: false,
    renditions: [],
    requested: [], // rendition indexes passed to lfc.forceRendition(), in order
    rendered: [],
    resizes: [],
    audioTracks: [],
    activeAudio: null,
    audioSwitches: [], // [{language, name, atTime}] each new activeAudio
    audioRequested: [], // languages passed to lfc.selectAudio()
    textTracks: [],
    activeText: null,
    textRequested: [], // languages passed to lfc.showSubtitles()
    cuesShown: [],
    cuesHidden: [], // cues active on a track in mode "hidden": loaded but not shown
    errors: [],
    warnings: [], // non-fatal reports that are not failures (a stall on a busy CPU)
    seeks: [],
    stalls: [],
    events: [], // what happened, with the playhead, to explain a failure
    ended: false,
  };
  // Set by the player's start function.
  let impl = null;

  function noteError(source, detail) {
    state.errors.push(source + ': ' + detail);
  }

  function noteEvent(text) {
    state.events.push(video.currentTime.toFixed(2) + ' ' + text);
  }

  function primaryLanguage(tag) {
    if (!tag) return '';
    let canonical = String(tag);
    try {
      canonical = Intl.getCanonicalLocales(canonical)[0];
    } catch (e) {
      // Not a BCP 47 tag; compare it as it is.
    }
    return canonical.toLowerCase().split('-')[0];
  }

  function sameLanguage(a, b) {
    return primaryLanguage(a) !== '' && primaryLanguage(a) === primaryLanguage(b);
  }

  function findLanguage(tracks, lang) {
    const track = tracks.find((t) => sameLanguage(t.language, lang));
    if (!track) {
      throw new Error('no track in ' + lang + ' among ' + JSON.stringify(tracks));
    }
    return track;
  }

  function noteRendered(index) {
    const last = state.rendered[state.rendered.length - 1];
    if (last && last.index === index) return;
    const rendition = state.renditions[index];
    state.rendered.push({
      index: index,
      height: rendition ? rendition.height : null,
      atTime: video.currentTime,
    });
  }

  function noteActiveAudio(track) {
    const last = state.activeAudio;
    state.activeAudio = track;
    if (track && (!last || last.index !== track.index)) {
      state.audioSwitches.push({
        language: track.language, name: track.name, atTime: video.currentTime,
      });
      noteEvent('audio ' + track.language + ' active');
    }
  }

  function lowestBitrateIndex(renditions) {
    let lowest = 0;
    renditions.forEach((r, i) => {
      if (r.bitrate < renditions[lowest].bitrate) lowest = i;
    });
    return lowest;
  }

  function play() {
    state.playRequested = true;
    video.play().catch((e) => noteError('video.play', e.name + ': ' + e.message));
  }

  function becomeReady() {
    if (state.ready) return;
    state.ready = true;
    noteEvent('ready');
    if (state.autoplay) play();
  }

  // --- hls.js ------------------------------------------------------------------------

  function startHls(Hls) {
    state.version = Hls.version;
    // A short buffer ahead, as over a long title; subtitles off until asked for.
    const hls = new Hls({
      autoStartLoad: false,
      maxBufferLength: 5,
      maxMaxBufferLength: 5,
      subtitleDisplay: false,
    });
    const E = Hls.Events;
    const track = (t, i) => ({ index: i, language: t.lang || '', name: t.name || '' });
    hls.on(E.ERROR, (_, d) => {
      const message = d.error ? ': ' + d.error.message : '';
      if (!d.fatal && d.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) {
        // The playhead waited with data buffered (the decoder starved on a loaded
        // machine); a hole in the stream is an error of its own.
        state.warnings.push(video.currentTime.toFixed(2) + ' stalled' + message);
        return;
      }
      noteError('hls.js', (d.fatal ? 'fatal ' : '') + d.type + '/' + d.details + message);
    });
    // hls.js lists the audio and subtitle tracks of a level's groups once that level
    // loads, after MANIFEST_PARSED: ready waits for both lists and the active audio.
    let parsed = null;
    const readyWhenListed = () => {
      if (parsed && state.audioTracks.length >= parsed.audio &&
          state.textTracks.length >= parsed.text &&
          (parsed.audio === 0 || state.activeAudio)) becomeReady();
    };
    hls.on(E.MANIFEST_PARSED, (_, d) => {
      state.renditions = hls.levels.map((l, i) => ({
        index: i, width: l.width, height: l.height, bitrate: l.bitrate,
      }));
      const lowest = lowestBitrateIndex(state.renditions);
      hls.startLevel = lowest;
      hls.loadLevel = lowest; // a manual level turns ABR off
      parsed = {
        audio: d.audioTracks ? d.audioTracks.length : 0,
        text: d.subtitleTracks ? d.subtitleTracks.length : 0,
      };
      hls.startLoad(0);
      readyWhenListed();
    });
    hls.on(E.AUDIO_TRACKS_UPDATED, (_, d) => {
      state.audioTracks = d.audioTracks.map(track);
      if (hls.audioTrack >= 0) noteActiveAudio(state.audioTracks[hls.audioTrack]);
      readyWhenListed();
    });
    hls.on(E.SUBTITLE_TRACKS_UPDATED, (_, d) => {
      state.textTracks = d.subtitleTracks.map(track);
      readyWhenListed();
    });
    hls.on(E.LEVEL_SWITCHED, (_, d) => noteRendered(d.level));
    hls.on(E.AUDIO_TRACK_SWITCHED, () => {
      noteActiveAudio(state.audioTracks[hls.audioTrack] || null);
      readyWhenListed();
    });
    hls.on(E.SUBTITLE_TRACK_SWITCH, (_, d) => {
      state.activeText = d.id >= 0 ? state.textTracks[d.id] || null : null;
      noteEvent('subtitle track ' + d.id);
    });
    hls.on(E.FRAG_BUFFERED, (_, d) => {
      noteEvent('buffered ' + d.frag.type + ' level ' + d.frag.level + ' sn ' + d.frag.sn);
    });
    hls.on(E.SUBTITLE_FRAG_PROCESSED, (_, d) => {
      noteEvent('subtitle sn ' + d.frag.sn + (d.success ? ' parsed' : ' failed'));
    });
    impl = {
      // currentLevel switches now and flushes what is buffered: the title is two 4 s
      // segments, so a switch at the next fragment boundary could land at its end.
      forceRendition: (index) => { hls.currentLevel = index; },
      selectAudio: (lang) => { hls.audioTrack = findLanguage(state.audioTracks, lang).index; },
      showSubtitles: (lang) => {
        hls.subtitleDisplay = true;
        hls.subtitleTrack = findLanguage(state.textTracks, lang).index;
      },
    };
    window.lfc.hls = hls;
    hls.loadSource(state.src);
    hls.attachMedia(video);
  }

  // --- dash.js -----------------------------------------------------------------------

  function startDash(dashjs) {
    const player = dashjs.MediaPlayer().create();
    state.version = player.getVersion();
    player.updateSettings({
      streaming: {
        abr: {
          autoSwitchBitrate: { video: false },
          // 1 kbps is below every rendition, so dash.js starts on the lowest one.
          initialBitrate: { video: 1 },
        },
        lastBitrateCachingInfo: { enabled: false },
        lastMediaSettingsCachingInfo: { enabled: false },
        text: { defaultEnabled: false },
      },
    });
    const E = dashjs.MediaPlayer.events;
    const track = (t, i) => ({
      index: i,
      language: t.lang || '',
      name: (t.labels && t.labels.length ? t.labels[0].text : t.label) || '',
    });
    // setTextTrack() takes an index into the text tracks dash.js added to the <video>.
    let addedTextTracks = null;
    let pendingText = null;
    const applyText = (lang) => {
      const index = addedTextTracks.findIndex((t) => sameLanguage(t.lang, lang));
      if (index < 0) {
        noteError('lfc', 'dash.js added no text track in ' + lang);
        return;
      }
      player.enableText(true);
      player.setTextTrack(index);
      state.activeText = findLanguage(state.textTracks, lang);
    };
    player.on(E.ERROR, (e) => noteError('dash.js', JSON.stringify(e.error)));
    player.on(E.PLAYBACK_ERROR, (e) => noteError('dash.js playback', JSON.stringify(e.error)));
    player.on(E.STREAM_INITIALIZED, () => {
      state.renditions = player.getBitrateInfoListFor('video').map((b) => ({
        index: b.qualityIndex, width: b.width, height: b.height, bitrate: b.bitrate,
      }));
      state.audioTracks = player.getTracksFor('audio').map(track);
      state.textTracks = player.getTracksFor('text').map(track);
      const current = player.getCurrentTrackFor('audio');
      if (current) {
        noteActiveAudio(state.audioTracks.find((t) => sameLanguage(t.language, current.lang)));
      }
      becomeReady();
    });
    player.on(E.TEXT_TRACKS_ADDED, (e) => {
      addedTextTracks = e.tracks;
      noteEvent('text tracks added: ' + e.tracks.map((t) => t.lang).join(','));
      if (pendingText !== null) applyText(pendingText);
    });
    // Fired once the segment under the playhead is of the new quality.
    player.on(E.QUALITY_CHANGE_RENDERED, (e) => {
      if (e.mediaType === 'video') noteRendered(e.newQuality);
    });
    player.on(E.TRACK_CHANGE_RENDERED, (e) => {
      if (e.mediaType === 'audio' && e.newMediaInfo) {
        const lang = e.newMediaInfo.lang;
        noteActiveAudio(state.audioTracks.find((t) => sameLanguage(t.language, lang)));
      }
    });
    player.on(E.FRAGMENT_LOADING_COMPLETED, (e) => {
      const r = e.request;
      if (r.type === 'MediaSegment') {
        noteEvent('loaded ' + r.mediaType + ' quality ' + r.quality + ' at ' + r.startTime);
      }
    });
    impl = {
      // replace=true drops the old rendition's buffered segments ahead of the playhead.
      forceRendition: (index) => player.setQualityFor('video', index, true),
      selectAudio: (lang) => {
        const wanted = player.getTracksFor('audio').find((t) => sameLanguage(t.lang, lang));
        if (!wanted) throw new Error('dash.js lists no audio track in ' + lang);
        player.setCurrentTrack(wanted);
      },
      showSubtitles: (lang) => {
        findLanguage(state.textTracks, lang);
        if (addedTextTracks === null) pendingText = lang; // applied on TEXT_TRACKS_ADDED
        else applyText(lang);
      },
    };
    window.lfc.dash = player;
    player.initialize(video, state.src, false);
  }

  // --- shaka-player ------------------------------------------------------------------

  async function startShaka(shaka) {
    state.version = shaka.Player.version;
    if (params.get('debug') && shaka.log && shaka.log.setLevel) {
      shaka.log.setLevel(Number(params.get('debug')) || shaka.log.Level.DEBUG);
    }
    shaka.polyfill.installAll();
    if (!shaka.Player.isBrowserSupported()) {
      noteError('shaka', 'browser not supported');
      return;
    }
    const player = new shaka.Player();
    window.lfc.shaka = player;
    const describe = (e) => {
      const d = e.detail || e;
      return 'severity ' + d.severity + ' category ' + d.category + ' code ' + d.code +
        ' data ' + JSON.stringify(d.data);
    };
    player.addEventListener('error', (e) => noteError('shaka', describe(e)));
    for (const kind of ['gapjumped', 'stalldetected']) {
      player.addEventListener(kind, () => {
        state.stalls.push({ kind: kind, atTime: video.currentTime });
        noteEvent('shaka ' + kind);
      });
    }
    // Shaka's tracks have ids; an index here is a position in the list lfc reports.
    const activeVariant = () => player.getVariantTracks().find((t) => t.active);
    // One variant per rendition: those with the audio that plays now, by video bitrate.
    const videoTracks = () => {
      const active = activeVariant();
      return player.getVariantTracks()
        .filter((t) => !active || t.audioId === active.audioId)
        .filter((t, i, all) => all.findIndex((u) => u.videoId === t.videoId) === i)
        .sort((a, b) => a.videoBandwidth - b.videoBandwidth || a.bandwidth - b.bandwidth);
    };
    const audioTracks = () => player.getAudioTracks();
    const textTracks = () => player.getTextTracks();
    const track = (t, i) => ({ index: i, language: t.language || '', name: t.label || '' });
    const refresh = () => {
      const active = activeVariant();
      if (!active) return;
      const index = state.renditions.findIndex((r) => r.videoId === active.videoId);
      if (index >= 0) noteRendered(index);
      const audio = audioTracks();
      const activeAudio = audio.findIndex((t) => t.active);
      if (activeAudio >= 0) noteActiveAudio(track(audio[activeAudio], activeAudio));
      const text = textTracks();
      const activeText = text.findIndex((t) => t.active);
      state.activeText = activeText >= 0 ? track(text[activeText], activeText) : null;
    };
    for (const name of ['variantchanged', 'adaptation', 'trackschanged', 'textchanged',
      'audiotrackchanged']) {
      player.addEventListener(name, () => { noteEvent('shaka ' + name); refresh(); });
    }
    player.configure({
      abr: { enabled: false, defaultBandwidthEstimate: 1, useNetworkInformation: false },
      streaming: { bufferingGoal: 5 },
    });
    impl = {
      // clearBuffer with no safe margin: the switch takes effect now.
      forceRendition: (index) => {
        const wanted = videoTracks()[index];
        if (!wanted) throw new Error('shaka: no rendition ' + index);
        player.selectVariantTrack(wanted, true, 0);
        refresh();
      },
      selectAudio: (lang) => {
        const wanted = audioTracks().find((t) => sameLanguage(t.language, lang));
        if (!wanted) throw new Error('shaka lists no audio track in ' + lang);
        player.selectAudioTrack(wanted);
        refresh();
      },
      showSubtitles: (lang) => {
        const wanted = textTracks().find((t) => sameLanguage(t.language, lang));
        if (!wanted) throw new Error('shaka lists no text track in ' + lang);
        if (player.setTextTrackVisibility) {
          // shaka-player 4: selection and visibility are separate.
          player.selectTextTrack(wanted);
          player.setTextTrackVisibility(true);
        } else {
          player.selectTextTrack(wanted); // shaka-player 5: selecting a track shows it
        }
        refresh();
      },
    };
    try {
      await player.attach(video);
      await player.load(state.src);
    } catch (e) {
      noteError('shaka load', describe(e));
      return;
    }
    state.renditions = videoTracks().map((t, i) => ({
      index: i, width: t.width, height: t.height, bitrate: t.videoBandwidth || t.bandwidth,
      videoId: t.videoId,
    }));
    state.audioTracks = audioTracks().map(track);
    state.textTracks = textTracks().map(track);
    const lowest = lowestBitrateIndex(state.renditions);
    const active = activeVariant();
    if (!active || active.videoId !== state.renditions[lowest].videoId) {
      // Not expected with the configuration above; the test then sees two heights.
      state.warnings.push('shaka did not start on the lowest rendition');
      impl.forceRendition(lowest);
    }
    refresh();
    becomeReady();
  }

  // --- the <video> and its text tracks -----------------------------------------------

  function noteCues(textTrack) {
    const showing = textTrack.mode === 'showing';
    const into = showing ? state.cuesShown : state.cuesHidden;
    for (const cue of Array.from(textTrack.activeCues || [])) {
      const seen = into.some((c) => c.startTime === cue.startTime && c.text === cue.text);
      if (seen) continue;
      into.push({
        text: cue.text,
        startTime: cue.startTime,
        endTime: cue.endTime,
        atTime: video.currentTime,
        language: textTrack.language,
        label: textTrack.label,
      });
      noteEvent('cue ' + (showing ? 'shown' : 'hidden') + ': ' + cue.text);
    }
  }

  function watchTextTrack(textTrack) {
    if (textTrack.lfcWatched) return;
    textTrack.lfcWatched = true;
    textTrack.addEventListener('cuechange', () => noteCues(textTrack));
  }

  function nativeTextTracks() {
    return Array.from(video.textTracks).map((t) => ({
      kind: t.kind,
      label: t.label,
      language: t.language,
      mode: t.mode,
      cues: t.cues ? t.cues.length : null,
    }));
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
      nativeTextTracks: nativeTextTracks(),
    });
  }

  function call(name, argument, requested) {
    if (!impl) throw new Error('lfc.' + name + '() called before the player started');
    requested.push(argument);
    noteEvent(name + '(' + argument + ')');
    impl[name](argument);
  }

  window.lfc = {
    state: state,
    snapshot: snapshot,
    play: play,
    forceRendition: (index) => call('forceRendition', index, state.requested),
    selectAudio: (lang) => call('selectAudio', lang, state.audioRequested),
    showSubtitles: (lang) => call('showSubtitles', lang, state.textRequested),
  };

  video.muted = true;
  // The media element's load algorithm resets playbackRate to defaultPlaybackRate.
  video.defaultPlaybackRate = state.rate;
  video.playbackRate = state.rate;
  video.addEventListener('resize', () => {
    state.resizes.push({
      width: video.videoWidth, height: video.videoHeight, atTime: video.currentTime,
    });
  });
  // Where the playhead stood before a seek: "seeking" already reports the seek's target.
  let position = 0;
  video.addEventListener('timeupdate', () => {
    if (!video.seeking) position = video.currentTime;
  });
  video.addEventListener('seeked', () => { position = video.currentTime; });
  video.addEventListener('seeking', () => {
    state.seeks.push({ from: position, to: video.currentTime });
    noteEvent('seeking from ' + position.toFixed(3));
  });
  video.addEventListener('ended', () => {
    state.ended = true;
    noteEvent('ended');
  });
  // dash.js now and then pauses on the last frame without the element firing "ended"
  // (seen at 3.999999 of 3.999999 s): paused at the duration is the end all the same.
  video.addEventListener('pause', () => {
    if (Number.isFinite(video.duration) && video.currentTime >= video.duration - 0.05) {
      state.ended = true;
      noteEvent('paused at the end');
    }
  });
  video.addEventListener('error', () => {
    const e = video.error;
    noteError('video', e ? e.code + ' ' + e.message : 'unknown');
  });
  video.textTracks.addEventListener('addtrack', (e) => watchTextTrack(e.track));
  // A cue's mode can turn "showing" after it became active: check on every change too.
  video.textTracks.addEventListener('change', () => {
    Array.from(video.textTracks).forEach((t) => { watchTextTrack(t); noteCues(t); });
  });
  window.addEventListener('error', (e) => noteError('page', e.message));
  window.addEventListener('unhandledrejection', (e) => noteError('page', String(e.reason)));

  if (!(state.player in LIBRARIES) || !state.src) {
    noteError('page', 'expected ?player=hls|dash|shaka&src=<manifest url>');
    return;
  }
  const script = document.createElement('script');
  // ?debug=<shaka.log level, 4: DEBUG> (by hand, not in tests): shaka-player's debug build.
  const debug = params.get('debug');
  script.src = debug && state.player === 'shaka'
    ? LIBRARIES.shaka.replace(/\.js$/, '.debug.js') : LIBRARIES[state.player];
  script.onerror = () => noteError('page', 'could not load ' + script.src);
  script.onload = () => {
    if (state.player === 'hls') startHls(window.Hls);
    else if (state.player === 'dash') startDash(window.dashjs);
    else startShaka(window.shaka);
  };
  document.head.appendChild(script);
})();
