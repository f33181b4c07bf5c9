/* global window, fetch, TextDecoder, AbortController, setTimeout, clearTimeout */
/**
 * Live updates for the dashboard: one `GET /api/live` stream (Server-Sent Events, read with
 * fetch so the key goes in the Authorization header, never in a URL). Each `overview` event
 * wakes the view waiting in `next()`, with the overview as its argument; without a stream
 * (not yet connected, or dropped) the view is woken by a slow fallback timer instead.
 */
'use strict';

window.ConveyorLive = (() => {
  const FALLBACK_MS = 15000;
  let abort = null;
  let pending = null;
  let fallback = null;
  let retry = null;
  let latest = null;
  let getKey = () => '';

  function wake(overview) {
    const fn = pending;
    pending = null;
    clearTimeout(fallback);
    if (fn) fn(overview);
  }

  /** Splits the text stream into events and hands out the `overview` ones. */
  function feed(state, text) {
    state.buffer += text;
    let end;
    while ((end = state.buffer.indexOf('\n\n')) !== -1) {
      const block = state.buffer.slice(0, end);
      state.buffer = state.buffer.slice(end + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (event === 'overview' && data.length) {
        latest = JSON.parse(data.join('\n'));
        wake(latest);
      }
    }
  }

  async function connect() {
    const controller = new AbortController();
    abort = controller;
    try {
      const res = await fetch('/api/live', { headers: { authorization: `Bearer ${getKey()}` }, signal: controller.signal });
      if (!res.ok || !res.body) throw new Error(`live: HTTP ${res.status}`);
      window.document.documentElement.dataset.live = 'connected';
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      const state = { buffer: '' };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        feed(state, decoder.decode(value, { stream: true }));
      }
    } catch {
      // dropped or refused: try again below, unless stopped
    }
    window.document.documentElement.dataset.live = 'disconnected';
    if (abort === controller) retry = setTimeout(() => void connect(), 3000);
  }

  return {
    /** Opens the stream with the key `key()` returns (again after every drop). */
    start(key) {
      getKey = key;
      if (!abort) void connect();
    },
    stop() {
      const a = abort;
      abort = null;
      pending = null;
      latest = null;
      clearTimeout(fallback);
      clearTimeout(retry);
      if (a) a.abort();
    },
    /** Calls `fn(overview)` at the next event (or `fn()` after the fallback delay); replaces a waiting `fn`. */
    next(fn) {
      pending = fn;
      clearTimeout(fallback);
      fallback = setTimeout(() => wake(undefined), FALLBACK_MS);
      return fallback;
    },
    /** The last overview received, if any. */
    latest: () => latest,
  };
})();
