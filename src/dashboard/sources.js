/* global window */
/**
 * The dashboard's #/sources view: each broker source (queue or stream, its state in the
 * serving process, counts) and the latest messages the sources dead-lettered, with the
 * reason. Everything from the API is put on the page as text. `app.js` calls it with its
 * helpers: h (element builder), api (authenticated fetch), setView, time.
 */
'use strict';

window.conveyorSourcesView = async function sourcesView({ h, api, setView, time }) {
  const body = await api('GET', '/api/sources?limit=100');
  const where = (s) => (s.kind === 'amqp' ? `queue ${s.queue}` : `stream ${s.stream}, ${s.subject} (${s.durable})`);
  const sources = body.sources.length === 0
    ? h('p', { className: 'muted' }, 'No pipeline declares sources.')
    : h('table', {}, h('thead', {}, h('tr', {}, ['Pipeline', 'Source', 'Broker', 'From', 'State', 'Stored', 'Duplicates', 'Rejected', 'Backlog / max', 'Last error'].map((c) => h('th', {}, c)))),
      h('tbody', {}, body.sources.map((s) => h('tr', { 'data-source': `${s.pipeline}/${s.name}` },
        h('td', {}, h('a', { href: `#/pipeline/${encodeURIComponent(s.pipeline)}` }, s.pipeline)), h('td', {}, s.name), h('td', {}, s.url), h('td', {}, where(s)),
        h('td', {}, h('span', { className: `badge ${s.state}` }, s.state)), h('td', {}, s.stored), h('td', {}, s.duplicates), h('td', {}, s.rejected),
        h('td', {}, `${s.backlog === null ? '?' : s.backlog} / ${s.maxBuffered}`), h('td', {}, s.failures > 0 ? `${s.lastError} (${s.failures} failed attempts)` : s.lastError || '')))));
  const rejects = body.rejects.length === 0
    ? h('p', { className: 'muted' }, 'No message was rejected.')
    : h('table', {}, h('thead', {}, h('tr', {}, ['Time', 'Pipeline', 'Source', 'Message id', 'Code', 'Reason'].map((c) => h('th', {}, c)))),
      h('tbody', {}, body.rejects.map((r) => h('tr', { 'data-reject': r.id },
        h('td', {}, time(r.at)), h('td', {}, r.pipeline), h('td', {}, r.source), h('td', {}, r.messageId || ''), h('td', {}, r.code), h('td', {}, r.reason)))));
  setView('Broker sources', h('div', { className: 'card' }, sources),
    h('div', { className: 'card' }, h('h2', {}, 'Rejected messages (dead-lettered)'), rejects));
};
