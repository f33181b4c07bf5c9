/* global window, setTimeout, clearTimeout, h, api, setView, flash, stamp, renderSeq, pollTimer: writable, POLL_MS */
/**
 * "My tasks" (#/tasks): the actions the signed-in actor may take now, across requests, from
 * `GET /api/actions`. A customer, an executor or a moderator signed in with a token (or a
 * key) sees the actions of its own requests only; each can be taken from here. Loaded before
 * app.js, which routes #/tasks to `window.tasksView`; the helpers it uses are app.js globals.
 */
'use strict';

/** One task: its request, step and label, the fields it needs, and the button that takes it. */
function taskCard(item, refresh) {
  const inputs = item.fields.map((f) => h('input', { placeholder: f.label || f.name, name: f.name, 'aria-label': f.name, required: f.required }));
  const button = h('button', { type: 'button', className: 'primary', 'data-action': item.code, onclick: async () => {
    const data = {};
    for (const i of inputs) if (i.value) data[i.name] = i.value;
    button.disabled = true;
    try {
      await api('POST', `/api/requests/${item.requestId}/actions/${encodeURIComponent(item.code)}`, { step: item.stepId, data });
      flash('');
    } catch (e) {
      flash(`${item.label || item.code} on ${item.requestId}: ${e.status === 403 ? 'you may not take this action' : e.message}`);
    }
    await refresh();
  } }, item.label || item.code);
  return h('div', { className: 'task', 'data-request': item.requestId, 'data-code': item.code },
    h('span', { className: 'muted' }, `${item.stepId} · `), ...inputs, button);
}

window.tasksView = async function tasksView(seq) {
  const list = h('div', { id: 'task-list' });
  setView('My tasks: actions you may take now', list);
  const refresh = async () => {
    if (seq !== renderSeq) return;
    const page = await api('GET', '/api/actions?limit=100');
    if (seq !== renderSeq) return;
    const byRequest = new Map();
    for (const item of page.items) {
      if (!byRequest.has(item.requestId)) byRequest.set(item.requestId, []);
      byRequest.get(item.requestId).push(item);
    }
    list.replaceChildren(...(byRequest.size ? [...byRequest.entries()].map(([id, items]) => h('div', { className: 'card', 'data-id': id },
      h('div', { className: 'head' }, h('a', { href: `#/request/${id}`, className: 'mono' }, id), ` ${items[0].pipeline}`),
      h('div', { className: 'actions' }, items.map((i) => taskCard(i, refresh))))) : [h('p', { className: 'muted', id: 'no-tasks' }, 'Nothing to do: no action is offered to you now.')]));
    list.dataset.loaded = String(page.items.length);
    stamp();
    // Polled, not woken by the live stream: that stream needs `read`, and tasks are per actor.
    clearTimeout(pollTimer);
    pollTimer = setTimeout(() => void refresh().catch(() => {}), POLL_MS);
  };
  await refresh();
};

