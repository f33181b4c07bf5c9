/* global window, FormData, setTimeout */
/**
 * The pipeline page's versions card: each stored version with how many requests run on it,
 * a comparison of two versions (steps added, removed, renamed by a mapping, changed), and, for
 * a key with `operate`, a migration that shows its dry run's result before it runs. Everything
 * from the API is put on the page as text. `app.js` calls it with its helpers: h, api, may.
 */
'use strict';

/** The compare / migrate form: two versions, the renamed steps, a status filter, the buttons. */
function versionsForm(h, versions, operate) {
  const select = (name, value) => h('select', { name }, versions.map((v) => h('option', { value: String(v), selected: v === value }, String(v))));
  const last = versions[versions.length - 1];
  const first = versions.length > 1 ? versions[versions.length - 2] : last;
  return h('form', { className: 'versions-form' },
    h('label', {}, 'From ', select('from', first)), h('label', {}, ' to ', select('to', last)),
    h('label', {}, ' renamed steps ', h('input', { name: 'map', placeholder: 'OLD=NEW, OLD2=NEW2', size: 30 })),
    h('label', {}, ' status ', h('select', { name: 'status' }, ['', 'waiting', 'running', 'error_stop', 'buffered'].map((s) => h('option', { value: s }, s || 'any')))),
    h('button', { type: 'button', 'data-do': 'diff' }, 'Compare'),
    operate ? h('button', { type: 'button', 'data-do': 'dry-run' }, 'Migrate: dry run') : null,
    operate ? h('button', { type: 'button', 'data-do': 'migrate', disabled: true }, 'Migrate') : null);
}

/** A migration's counts, and its refusals with their reasons. */
function migrationNodes(h, m) {
  const verb = m.dryRun ? 'would move' : 'moved';
  const head = h('p', { 'data-migration-status': m.status }, `Migration ${m.id} ${m.status}${m.dryRun ? ' (dry run: nothing changed)' : ''}: ${verb} ${m.counts.migrated}, refused ${m.counts.refused}, left ${m.counts.left}, of ${m.counts.total}`);
  const refusals = m.refusals.length === 0 ? h('p', { className: 'muted' }, 'No request was refused.')
    : h('table', {}, h('thead', {}, h('tr', {}, ['Request', 'Path', 'Reason'].map((c) => h('th', {}, c)))),
      h('tbody', {}, m.refusals.flatMap((r) => r.problems.map((p) => h('tr', {}, h('td', {}, h('a', { href: `#/request/${r.requestId}` }, r.requestId)), h('td', {}, p.path), h('td', {}, p.message))))));
  return [head, refusals];
}

window.conveyorVersionsCard = async function versionsCard({ h, api, may }, id) {
  const base = `/api/pipelines/${encodeURIComponent(id)}`;
  const body = await api('GET', `${base}/versions`);
  const versions = body.items.map((v) => v.version);
  const rows = body.items.map((v) => h('tr', { 'data-version': String(v.version) },
    h('td', {}, `${v.version}${v.current ? ' (current)' : ''}`), h('td', {}, v.createdAt), h('td', {}, String(v.active)),
    h('td', {}, Object.entries(v.requests).map(([s, n]) => `${s} ${n}`).join(', '))));
  const table = h('table', {}, h('thead', {}, h('tr', {}, ['Version', 'Stored', 'Running on it', 'Requests by status'].map((c) => h('th', {}, c)))), h('tbody', {}, rows));
  const out = h('div', { className: 'versions-result' });
  const form = versionsForm(h, versions, may('operate'));
  const read = () => {
    const f = new FormData(form);
    const mapping = {};
    for (const pair of String(f.get('map') || '').split(',').map((x) => x.trim()).filter(Boolean)) {
      const [a, b] = pair.split('=').map((x) => x.trim());
      if (a && b) mapping[a] = b;
    }
    return { from: Number(f.get('from')), to: Number(f.get('to')), mapping, status: String(f.get('status') || '') };
  };
  const list = (title, items) => h('p', {}, h('strong', {}, `${title}: `), items.length ? items.join(', ') : 'none');
  const showDiff = (d) => out.replaceChildren(list('Added', d.added), list('Removed', d.removed),
    list('Renamed', d.renamed.map((r) => `${r.from} → ${r.to}`)), list('Changed', d.changed));
  const showMigration = (m) => out.replaceChildren(...migrationNodes(h, m));
  const migrate = async (dryRun) => {
    const v = read();
    const filter = v.status ? { status: v.status } : {};
    let m = await api('POST', `${base}/migrations`, { fromVersion: v.from, plan: { toVersion: v.to, mapping: v.mapping }, filter, dryRun });
    for (;;) {
      showMigration(m);
      if (m.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 300));
      m = await api('GET', `/api/migrations/${m.id}`);
    }
    const run = form.querySelector('[data-do="migrate"]');
    if (run) run.disabled = !dryRun;
  };
  form.addEventListener('click', (e) => {
    const what = e.target && e.target.dataset ? e.target.dataset.do : undefined;
    if (!what) return;
    const v = read();
    const done = what === 'diff'
      ? api('GET', `${base}/diff?from=${v.from}&to=${v.to}&map=${encodeURIComponent(Object.entries(v.mapping).map(([a, b]) => `${a}:${b}`).join(','))}`).then(showDiff)
      : migrate(what === 'dry-run');
    done.catch((err) => out.replaceChildren(h('p', { className: 'error', role: 'alert' }, String(err && err.message ? err.message : err))));
  });
  form.addEventListener('change', () => {
    const run = form.querySelector('[data-do="migrate"]');
    if (run) run.disabled = true;
  });
  return h('div', { className: 'card' }, h('h2', {}, 'Versions'), table, form, out);
};
