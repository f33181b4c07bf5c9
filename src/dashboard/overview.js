/* global window, document, uPlot, h, api, setView, badge, stamp, schedule, renderSeq, showError */
/**
 * The overview, the dashboard's first page: per pipeline, the requests open now and those that
 * ended in the last hour (each count links to the matching search); throughput and error rate
 * per minute over the last hour as charts (uPlot, served from node_modules); the slowest steps
 * by p50 / p95. It redraws from each `overview` event of the live stream: no polling.
 */
'use strict';

const OPEN_STATUSES = ['buffered', 'running', 'waiting', 'error_stop'];
const ENDED_STATUSES = ['completed', 'error_stop', 'stopped'];

function countLink(pipeline, status, n, scope) {
  const link = h('a', { href: `#/requests?pipeline=${encodeURIComponent(pipeline)}&status=${status}`, 'data-count': `${scope}:${status}` }, String(n));
  return h('td', { className: n > 0 && status === 'error_stop' ? 'count bad' : 'count' }, n > 0 ? link : h('span', { className: 'muted', 'data-count': `${scope}:${status}` }, '0'));
}

function countsTable(view) {
  const head = h('tr', {}, h('th', { rowspan: 2 }, 'Pipeline'), h('th', { colspan: OPEN_STATUSES.length }, 'Now'), h('th', { colspan: ENDED_STATUSES.length }, 'Ended in the last hour'));
  const sub = h('tr', {}, [...OPEN_STATUSES, ...ENDED_STATUSES].map((s) => h('th', {}, badge(s))));
  const rows = view.pipelines.map((p) => h('tr', { 'data-pipeline': p.id },
    h('td', {}, h('a', { href: `#/pipeline/${encodeURIComponent(p.id)}` }, p.id)),
    OPEN_STATUSES.map((s) => countLink(p.id, s, p.open[s] || 0, 'open')),
    ENDED_STATUSES.map((s) => countLink(p.id, s, p.lastHour[s] || 0, 'hour'))));
  return h('table', { id: 'overview-counts' }, h('thead', {}, head, sub), h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 8, className: 'muted' }, 'No pipelines.'))));
}

function slowTable(view) {
  const rows = view.slowSteps.map((s) => h('tr', { 'data-step': `${s.pipeline}/${s.stepId}` },
    h('td', {}, s.pipeline), h('td', { className: 'mono' }, s.stepId), h('td', {}, `${s.p50Ms} ms`), h('td', {}, `${s.p95Ms} ms`), h('td', {}, `${s.maxMs} ms`), h('td', {}, s.count)));
  return h('table', { id: 'overview-slow' },
    h('thead', {}, h('tr', {}, ['Pipeline', 'Step', 'p50', 'p95', 'max', 'attempts'].map((c) => h('th', {}, c)))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 6, className: 'muted' }, 'No step finished in the last hour.'))));
}

/** uPlot's columns: x in seconds, then one array per series. */
function chartData(view) {
  const xs = view.series.map((p) => Date.parse(p.at) / 1000);
  return {
    throughput: [xs, view.series.map((p) => p.created), view.series.map((p) => p.completed), view.series.map((p) => p.errorStop)],
    errors: [xs, view.series.map((p) => (p.errorRate === null ? null : Math.round(p.errorRate * 1000) / 10))],
  };
}

function makeChart(el, series, data, yLabel) {
  if (!window.uPlot) {
    el.textContent = 'The chart library did not load.';
    return null;
  }
  const width = Math.max(320, el.clientWidth || 600);
  return new uPlot({
    width, height: 200, legend: { show: true }, cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true } },
    axes: [{}, { label: yLabel, size: 50 }],
    series: [{}, ...series],
  }, data, el);
}

async function overviewView(seq) {
  const counts = h('div', { id: 'overview-counts-box' });
  const throughputEl = h('div', { id: 'chart-throughput', className: 'chart' });
  const errorsEl = h('div', { id: 'chart-errors', className: 'chart' });
  const slow = h('div', { id: 'overview-slow-box' });
  const note = h('p', { className: 'muted', id: 'overview-note' });
  setView('Overview', h('div', { id: 'overview' },
    h('div', { className: 'card' }, h('h2', {}, 'Requests by status'), counts),
    h('div', { className: 'grid' },
      h('div', { className: 'card' }, h('h2', {}, 'Throughput per minute, last hour'), throughputEl),
      h('div', { className: 'card' }, h('h2', {}, 'Error rate per minute (% of ended requests in error_stop)'), errorsEl)),
    h('div', { className: 'card' }, h('h2', {}, 'Slowest steps, last hour'), slow),
    note));
  let charts = null;
  const draw = (view) => {
    counts.replaceChildren(countsTable(view));
    slow.replaceChildren(slowTable(view));
    const data = chartData(view);
    if (!charts) {
      charts = {
        throughput: makeChart(throughputEl, [{ label: 'arrived', stroke: '#1d4ed8', width: 2 }, { label: 'completed', stroke: '#15803d', width: 2 }, { label: 'error_stop', stroke: '#b91c1c', width: 2 }], data.throughput, 'requests'),
        errors: makeChart(errorsEl, [{ label: 'error rate %', stroke: '#b91c1c', fill: 'rgba(185,28,28,.08)', width: 2, spanGaps: false, points: { show: true, size: 6 } }], data.errors, '%'),
      };
    } else {
      if (charts.throughput) charts.throughput.setData(data.throughput);
      if (charts.errors) charts.errors.setData(data.errors);
    }
    const points = view.series.filter((p) => p.created || p.completed || p.errorStop || p.stopped).length;
    throughputEl.dataset.points = String(points);
    document.getElementById('overview').dataset.marker = view.marker;
    note.textContent = `Since ${view.since.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}; live: updates arrive as they happen.`;
    stamp();
  };
  // Drawn from the live stream's events; the first one from the API (or the stream's last).
  const refresh = async (pushed) => {
    if (seq !== renderSeq) return;
    const view = pushed || (await api('GET', '/api/overview'));
    if (seq !== renderSeq) return;
    draw(view);
    schedule((next) => void refresh(next).catch(showError));
  };
  await refresh(window.ConveyorLive && window.ConveyorLive.latest());
}

// app.js's router calls it.
window.overviewView = overviewView;
