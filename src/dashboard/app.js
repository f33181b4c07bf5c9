/* global window, document, sessionStorage, fetch, URLSearchParams, setTimeout, clearTimeout, mermaid, overviewView */
/**
 * The Conveyor dashboard: plain JavaScript over the HTTP API, with the API key kept in
 * sessionStorage and sent as a Bearer token. Views (hash routes): #/overview (the first page,
 * overview.js), #/requests (search, live),
 * #/request/<id> (timeline and graph), #/queue (waiting actions), #/errors (error_stop),
 * #/pipelines and #/pipeline/<id>, #/sources (broker sources and their rejects, sources.js). Everything from the API is put on the page as text
 * (textContent), never as HTML; the graph is drawn by mermaid with securityLevel "strict".
 */
'use strict';

const KEY = 'conveyor.key';
const POLL_MS = 2000;
const FINAL = new Set(['completed', 'stopped', 'error_stop']);
let pollTimer;
let renderSeq = 0;
let graphSeq = 0;

// --- helpers ------------------------------------------------------------------------------

/** Builds an element: h('td', { className: 'x', onclick }, 'text', child). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'className' || k === 'textContent' || k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof window.Node ? c : document.createTextNode(String(c)));
  return el;
}

const badge = (status) => h('span', { className: `badge ${status}`, 'data-status': status }, status);
const time = (iso) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');
const json = (v) => (v === undefined ? '' : JSON.stringify(v, null, 2));

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error && body.error.code;
  }
}

/** Calls the API with the stored key; a 401 sends the user back to the login page. */
async function api(method, path, body) {
  const view = renderSeq;
  try {
    return await call(method, path, body);
  } catch (e) {
    // Which view asked: an answer that arrives after the user moved on must not be shown.
    if (e && typeof e === 'object') e.viewSeq = view;
    throw e;
  }
}

async function call(method, path, body) {
  const headers = { authorization: `Bearer ${sessionStorage.getItem(KEY) || ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  if (res.status === 401 && !path.startsWith('/api/actions?limit=1')) {
    logout('Your key was refused; sign in again.');
    throw new ApiError(401, parsed);
  }
  if (!res.ok) throw new ApiError(res.status, parsed);
  return parsed;
}

function stamp() {
  document.getElementById('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
}

/** A message that outlives re-renders (the views redraw every few seconds). */
function flash(message) {
  document.getElementById('flash').textContent = message || '';
}

/** Runs `fn` at the next live update (Server-Sent Events, `live.js`); polls only without it. */
function schedule(fn) {
  clearTimeout(pollTimer);
  pollTimer = window.ConveyorLive ? window.ConveyorLive.next(fn) : setTimeout(fn, POLL_MS);
}

// --- login --------------------------------------------------------------------------------

function logout(message) {
  sessionStorage.removeItem(KEY);
  clearTimeout(pollTimer);
  if (window.ConveyorLive) window.ConveyorLive.stop();
  if (window.ConveyorRoles) window.ConveyorRoles.clear();
  document.getElementById('app').hidden = true;
  document.getElementById('login').hidden = false;
  document.getElementById('login-error').textContent = message || '';
}

async function login(event) {
  event.preventDefault();
  const key = document.getElementById('login-key').value.trim();
  sessionStorage.setItem(KEY, key);
  try {
    // Any actor may list its own tasks: a key with `read`, or a customer's token without it.
    await api('GET', '/api/actions?limit=1');
  } catch (e) {
    sessionStorage.removeItem(KEY);
    document.getElementById('login-error').textContent = e.status === 401 ? (e.code && e.code.startsWith('CONVEYOR_ERR_TOKEN') ? `Token refused: ${e.message}.` : 'Unknown or revoked key.') : e.message;
    return;
  }
  document.getElementById('login-key').value = '';
  show();
}

function show() {
  document.getElementById('login').hidden = true;
  document.getElementById('app').hidden = false;
  void window.ConveyorRoles.load().finally(() => {
    // The live stream needs `read`; a person without it polls its own tasks instead.
    if (window.ConveyorLive && window.ConveyorRoles.may('read')) window.ConveyorLive.start(() => sessionStorage.getItem(KEY) || '');
    // A person without `read` (a customer's token) starts on the work offered to them.
    if (!window.location.hash) window.location.hash = window.ConveyorRoles.may('read') ? '#/overview' : '#/tasks';
    else void route();
  });
}

// --- views --------------------------------------------------------------------------------

let pipelinesCache;
async function pipelines() {
  pipelinesCache = pipelinesCache || (await api('GET', '/api/pipelines')).items;
  return pipelinesCache;
}

function setView(title, ...children) {
  const view = document.getElementById('view');
  view.replaceChildren(h('h1', {}, title), ...children);
  return view;
}

function readFilters() {
  const q = new URLSearchParams(window.location.hash.split('?')[1] || '');
  return { pipeline: q.get('pipeline') || '', status: q.get('status') || '', businessKey: q.get('businessKey') || '', test: q.get('test') || '' };
}

async function requestsView(seq) {
  const f = readFilters();
  const list = await pipelines();
  const form = h('form', { className: 'filters', id: 'filters', onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const name of ['pipeline', 'status', 'businessKey', 'test']) {
      const v = form.elements[name].type === 'checkbox' ? (form.elements[name].checked ? '1' : '') : form.elements[name].value.trim();
      if (v) q.set(name, v);
    }
    window.location.hash = `#/requests?${q}`;
  } },
  h('label', {}, 'Pipeline', h('select', { name: 'pipeline' }, h('option', { value: '' }, 'any'), list.map((p) => h('option', { value: p.id, selected: p.id === f.pipeline }, p.id)))),
  h('label', {}, 'Status', h('select', { name: 'status' }, h('option', { value: '' }, 'any'), ['buffered', 'running', 'waiting', 'completed', 'stopped', 'error_stop'].map((s) => h('option', { value: s, selected: s === f.status }, s)))),
  h('label', {}, 'Business key', h('input', { name: 'businessKey', value: f.businessKey, size: 16 })),
  h('label', {}, 'Test only', h('input', { name: 'test', type: 'checkbox', checked: f.test === '1' })),
  h('button', { type: 'submit', className: 'primary' }, 'Search'));
  const body = h('tbody', { id: 'request-rows' });
  const more = h('button', { type: 'button', hidden: true, id: 'more' }, 'Load more');
  setView('Requests', form, h('table', {}, h('thead', {}, h('tr', {}, ['ID', 'Pipeline', 'Status', 'Created', 'Business key', 'Error'].map((c) => h('th', {}, c)))), body), h('p', {}, more));

  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) query.set(k, v);
  let extra = [];
  let cursor = null;
  const row = (r) => h('tr', { 'data-id': r.id },
    h('td', { className: 'mono' }, h('a', { href: `#/request/${r.id}` }, r.id)),
    h('td', {}, r.pipeline), h('td', {}, badge(r.status), r.test ? ' test' : ''), h('td', {}, time(r.createdAt)),
    h('td', {}, r.businessKey || ''), h('td', {}, r.error ? `${r.error.stepId}: ${r.error.message}` : ''));
  more.onclick = async () => {
    const next = await api('GET', `/api/requests?${query}&cursor=${encodeURIComponent(cursor)}`);
    extra = extra.concat(next.items);
    cursor = next.nextCursor;
    body.append(...next.items.map(row));
    more.hidden = !cursor;
  };
  // Live: the first page is read again every few seconds; pages loaded with "more" stay.
  const refresh = async () => {
    if (seq !== renderSeq) return;
    const page = await api('GET', `/api/requests?${query}`);
    if (seq !== renderSeq) return;
    const shown = new Set(page.items.map((r) => r.id));
    body.replaceChildren(...page.items.map(row), ...extra.filter((r) => !shown.has(r.id)).map(row));
    if (!extra.length) {
      cursor = page.nextCursor;
      more.hidden = !cursor;
    }
    if (!page.items.length) body.replaceChildren(h('tr', {}, h('td', { colspan: 6, className: 'muted' }, 'No requests match.')));
    stamp();
    schedule(() => void refresh().catch(showError));
  };
  await refresh();
}

/**
 * Mermaid text of a pipeline graph (the server's `graph.mermaid`, as `conveyor graph` prints
 * it), with the request's path highlighted when `runs` are given. Its links are the start link
 * and then `graph.edges` in order, so link i + 1 is edge i.
 */
function graphText(graph, runs) {
  const id = (s) => `n_${s.replace(/[^A-Za-z0-9_]/g, '_')}`;
  if (!runs) return graph.mermaid;
  const lines = [graph.mermaid];
  const byRun = new Map(runs.map((r) => [r.id, r]));
  const last = new Map();
  for (const r of runs) last.set(r.stepId, r);
  const taken = new Set();
  for (const r of runs) {
    const cause = r.causedBy && byRun.get(r.causedBy);
    taken.add(`${cause ? cause.stepId : ''}>${r.stepId}`);
  }
  const edges = [[null, graph.start]].concat(graph.edges.map((e) => [e.from, e.to]));
  const styled = [];
  edges.forEach(([from, to], i) => {
    if (taken.has(`${from || ''}>${to}`)) styled.push(i);
  });
  lines.push('  classDef done fill:#dcfce7,stroke:#15803d,stroke-width:2px', '  classDef failed fill:#fee2e2,stroke:#b91c1c,stroke-width:2px', '  classDef open fill:#fef3c7,stroke:#b45309,stroke-width:2px');
  for (const [stepId, r] of last) {
    const cls = r.status === 'completed' ? 'done' : r.status === 'failed' || r.status === 'cancelled' ? 'failed' : 'open';
    if (graph.nodes.some((n) => n.id === stepId)) lines.push(`  class ${id(stepId)} ${cls}`);
  }
  if (styled.length) lines.push(`  linkStyle ${styled.join(',')} stroke:#15803d,stroke-width:3px`);
  return lines.join('\n');
}

async function drawGraph(container, text) {
  if (!window.mermaid) {
    container.replaceChildren(h('pre', {}, text));
    return;
  }
  const seq = ++graphSeq;
  mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', flowchart: { htmlLabels: false } });
  const { svg } = await mermaid.render(`graph-${seq}`, text);
  if (seq !== graphSeq) return;
  // mermaid's output, drawn from the pipeline's step ids in strict mode: it is SVG markup.
  container.innerHTML = svg;
  container.dataset.rendered = 'true';
}

async function operate(id, verb, body) {
  try {
    await api('POST', `/api/requests/${id}/${verb}`, body);
    return null;
  } catch (e) {
    return e.status === 404 && e.code === 'CONVEYOR_ERR_NOT_FOUND' ? 'This server has no such route.' : e.status === 403 ? 'Your key lacks the role for this.' : e.message;
  }
}

/** Buttons for what the caller may do with one request: its offered actions, resume and stop. */
function controls(r, after) {
  const box = h('div', { className: 'actions' });
  const run = async (verb, body) => {
    for (const b of box.querySelectorAll('button')) b.disabled = true;
    const problem = await operate(r.id, verb, body);
    flash(problem ? `${verb.replace(/^actions\//, '')} on ${r.id}: ${problem}` : '');
    await after();
  };
  for (const a of r.actions || []) {
    const inputs = a.fields.map((f) => h('input', { placeholder: f.label || f.name, name: f.name, 'aria-label': f.name, required: f.required }));
    box.append(...inputs, h('button', { type: 'button', className: 'primary', 'data-action': a.code, onclick: () => {
      const data = {};
      for (const i of inputs) if (i.value) data[i.name] = i.value;
      void run(`actions/${encodeURIComponent(a.code)}`, { step: a.stepId, data });
    } }, a.label || a.code));
  }
  const operator = window.ConveyorRoles.may('operate');
  if (operator && r.status === 'error_stop') box.append(h('button', { type: 'button', className: 'primary', 'data-op': 'resume', onclick: () => void run('resume', {}) }, 'Resume'));
  if (operator && !FINAL.has(r.status)) box.append(h('button', { type: 'button', className: 'danger', 'data-op': 'stop', onclick: () => {
    if (window.confirm(`Stop request ${r.id}?`)) void run('stop', { reason: 'stopped from the dashboard' });
  } }, 'Stop'));
  return box;
}

async function requestView(seq, id) {
  const facts = h('dl', { className: 'facts', id: 'facts' });
  const errorBox = h('div', { id: 'request-error' });
  const ctl = h('div', { id: 'controls' });
  const timeline = h('ol', { className: 'timeline', id: 'timeline' });
  const graph = h('div', { id: 'graph' });
  const graphNote = h('p', { className: 'muted', id: 'graph-note' });
  setView(`Request ${id}`, h('div', { className: 'card' }, facts, errorBox, ctl),
    h('div', { className: 'grid' },
      h('div', { className: 'card' }, h('h2', {}, 'Timeline: every step attempt'), timeline),
      h('div', { className: 'card' }, h('h2', {}, 'Pipeline graph'), graphNote, graph)));
  let drawn = '';
  const refresh = async () => {
    if (seq !== renderSeq) return;
    const [r, steps] = await Promise.all([api('GET', `/api/requests/${id}`), api('GET', `/api/requests/${id}/steps`)]);
    if (seq !== renderSeq) return;
    facts.replaceChildren(...[['Status', badge(r.status)], ['Pipeline', `${r.pipeline} (version ${r.version})`], ['Business key', r.businessKey || '—'],
      ['Mode', r.mode || '—'], ['Test', r.test ? 'yes' : 'no'], ['Created', time(r.createdAt)], ['Updated', time(r.updatedAt)], ['Finished', time(r.finishedAt) || '—'],
      ['Current steps', r.currentSteps.map((c) => `${c.stepId}#${c.attempt} ${c.status}`).join(', ') || '—'],
      ['Variables', r.vars && Object.keys(r.vars).length ? h('pre', { className: 'vars', id: 'vars' }, json(r.vars)) : '—']].flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    errorBox.replaceChildren(...(r.error ? [h('div', { className: 'errorbox' }, h('strong', {}, `${r.error.stepId}#${r.error.attempt} ${r.error.code}`), h('div', {}, r.error.message))] : []));
    ctl.replaceChildren(controls(r, refresh));
    timeline.replaceChildren(...steps.items.map((s) => h('li', { className: s.status, 'data-step': s.stepId, 'data-attempt': s.attempt },
      h('div', { className: 'head' }, h('strong', {}, `${s.stepId} #${s.attempt}`), badge(s.status),
        h('span', { className: 'muted' }, `${s.kind}${s.module ? ` · ${s.module}` : ''} · ${s.transport || '—'}`),
        h('span', { className: 'muted' }, s.durationMs === null ? 'running' : `${s.durationMs} ms`),
        h('span', { className: 'muted' }, time(s.startedAt))),
      s.error ? h('div', { className: 'errorbox' }, `${s.error.code || ''}: ${s.error.message || ''}`) : null,
      h('details', {}, h('summary', {}, 'params'), h('pre', { className: 'params' }, json(s.params))),
      s.output !== null ? h('details', {}, h('summary', {}, 'output'), h('pre', { className: 'output' }, json(s.output))) : null,
      s.assigned ? h('details', {}, h('summary', {}, 'assigned'), h('pre', { className: 'assigned' }, json(s.assigned))) : null,
      s.error ? h('details', {}, h('summary', {}, 'error'), h('pre', {}, json(s.error))) : null)));
    const p = await api('GET', `/api/pipelines/${encodeURIComponent(r.pipeline)}`).catch(() => null);
    if (p) {
      graphNote.textContent = p.version === r.version ? 'Green: steps and routes this request took; red: failed; amber: open.' : `Drawn from version ${p.version}; this request runs on version ${r.version}.`;
      const text = graphText(p.graph, steps.items);
      if (text !== drawn) {
        drawn = text;
        await drawGraph(graph, text);
      }
    }
    stamp();
    if (!FINAL.has(r.status)) schedule(() => void refresh().catch(showError));
  };
  await refresh();
}

/** A list of requests in one status, each with its controls: the actions queue and the error_stop list. */
async function statusListView(seq, status, title, empty) {
  const list = h('div', { id: `${status}-list` });
  setView(title, list);
  const refresh = async () => {
    if (seq !== renderSeq) return;
    const page = await api('GET', `/api/requests?status=${status}&limit=50`);
    const full = await Promise.all(page.items.map((r) => api('GET', `/api/requests/${r.id}`).catch(() => null)));
    if (seq !== renderSeq) return;
    const rows = full.filter(Boolean).filter((r) => r.status === status);
    list.replaceChildren(...(rows.length ? rows.map((r) => h('div', { className: 'card', 'data-id': r.id },
      h('div', { className: 'head' }, h('a', { href: `#/request/${r.id}`, className: 'mono' }, r.id), ' ', badge(r.status), ` ${r.pipeline} · created ${time(r.createdAt)}`,
        r.businessKey ? ` · ${r.businessKey}` : ''),
      r.error ? h('div', { className: 'errorbox' }, `${r.error.stepId}#${r.error.attempt} ${r.error.code}: ${r.error.message}`) : null,
      status === 'waiting' && !(r.actions || []).length ? h('p', { className: 'muted' }, 'Waiting for an event or a callback; no action your key may take.') : null,
      controls(r, refresh))) : [h('p', { className: 'muted' }, empty)]));
    stamp();
    schedule(() => void refresh().catch(showError));
  };
  await refresh();
}

async function pipelinesView() {
  const list = await pipelines();
  setView('Pipelines', h('table', {}, h('thead', {}, h('tr', {}, ['Pipeline', 'Version', 'Steps', 'Start', 'Description'].map((c) => h('th', {}, c)))),
    h('tbody', {}, list.map((p) => h('tr', {}, h('td', {}, h('a', { href: `#/pipeline/${p.id}` }, p.id)), h('td', {}, p.version), h('td', {}, p.steps), h('td', {}, p.start), h('td', {}, p.description || ''))))));
}

async function pipelineView(id) {
  const p = await api('GET', `/api/pipelines/${encodeURIComponent(id)}`);
  const graph = h('div', { id: 'graph' });
  setView(`Pipeline ${p.id} (version ${p.version})`, h('div', { className: 'card' }, graph), await window.conveyorVersionsCard({ h, api, may: window.ConveyorRoles.may }, p.id),
    h('div', { className: 'card' }, h('h2', {}, 'Definition'), h('pre', {}, json(p.definition))));
  await drawGraph(graph, graphText(p.graph, null));
}

function showError(e) {
  if (e && e.status === 401) return;
  // An error of a view the user already left (its call was slow) must not land on the new one.
  if (e && e.viewSeq !== undefined && e.viewSeq !== renderSeq) return;
  const view = document.getElementById('view');
  view.prepend(h('p', { className: 'error', role: 'alert' }, `Could not load: ${e && e.message ? e.message : e}`));
}

async function route() {
  clearTimeout(pollTimer);
  flash('');
  const seq = ++renderSeq;
  const hash = window.location.hash.replace(/^#/, '') || '/overview';
  const [path] = hash.split('?');
  const parts = path.split('/').filter(Boolean);
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === parts[0] || (a.dataset.nav === 'requests' && parts[0] === 'request'));
  try {
    if (parts[0] === 'overview') await overviewView(seq);
    else if (parts[0] === 'request' && parts[1]) await requestView(seq, parts[1]);
    else if (parts[0] === 'tasks') await window.tasksView(seq);
    else if (parts[0] === 'queue') await statusListView(seq, 'waiting', 'Actions queue: requests waiting', 'No request is waiting.');
    else if (parts[0] === 'errors') await statusListView(seq, 'error_stop', 'Errors: requests in error_stop', 'No request is in error_stop.');
    else if (parts[0] === 'pipelines') await pipelinesView();
    else if (parts[0] === 'sources') await window.conveyorSourcesView({ h, api, setView, time });
    else if (parts[0] === 'pipeline' && parts[1]) await pipelineView(decodeURIComponent(parts[1]));
    else await requestsView(seq);
  } catch (e) {
    if (seq === renderSeq) showError(e);
  }
}

document.getElementById('login-form').addEventListener('submit', (e) => void login(e));
document.getElementById('logout').addEventListener('click', () => logout(''));
window.addEventListener('hashchange', () => {
  if (sessionStorage.getItem(KEY)) void route();
});
if (sessionStorage.getItem(KEY)) show();
else logout('');
