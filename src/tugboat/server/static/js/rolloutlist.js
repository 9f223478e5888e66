// The Rollouts page (/rollouts): every Rollout of one namespace at a glance, live.
// Namespaces come from where the Applications deploy (plus whatever the user types); the choice is
// remembered in localStorage. Rows link to the Rollout page.

import { api, badge, h, link, mount, navigate, repeat, route, showError, stream, throttle } from './core.js';

const STORAGE_KEY = 'tugboat.rollouts.namespace';
const POLL_MS = 3000;
// Each stream holds one of the browser's ~6 HTTP/1.1 connections to the server for as long as the page is
// open (other tabs share them): with more namespaces than this on screen, poll them all in one round.
const MAX_STREAMS = 2;

function remembered() {
  try { return localStorage.getItem(STORAGE_KEY) || ''; } catch { return ''; }
}

function remember(namespace) {
  try { localStorage.setItem(STORAGE_KEY, namespace); } catch { /* private mode */ }
}

// Namespaces the Applications deploy to: the natural places to look for Rollouts.
async function knownNamespaces() {
  try {
    const apps = await api('/api/v1/applications?fields=items.metadata.name,items.spec.destination');
    const found = new Set();
    for (const app of (apps && apps.items) || []) {
      const ns = app && app.spec && app.spec.destination && app.spec.destination.namespace;
      if (ns) found.add(ns);
    }
    return [...found].sort();
  } catch {
    return [];
  }
}

function images(info) {
  const all = (info.containers || []).map((c) => c.image).filter(Boolean);
  return [...new Set(all)];
}

function strategyChip(strategy) {
  const name = strategy === 'BlueGreen' ? 'Blue-green' : (strategy || 'unknown');
  return h('span', { class: `ro-chip ro-chip-${(strategy || 'unknown').toLowerCase()}` }, name);
}

function replicasCell(info) {
  const ready = info.ready ?? 0;
  const desired = info.desired ?? 0;
  const full = desired > 0 && ready >= desired;
  return h('span', { class: ['ro-replicas', full ? 'ro-replicas-full' : 'ro-replicas-short'] }, `${ready}/${desired}`);
}

function canaryShare(info) {
  const running = (info.replicaSets || []).some((rs) => rs.canary);
  if (!running && (info.status === 'Healthy' || info.status === 'Degraded')) return 0;
  return Math.max(0, Math.min(100, Number(info.setWeight) || 0));
}

function weightCell(info) {
  if (info.strategy !== 'Canary' || info.setWeight === '' || info.setWeight === undefined) return h('span', { class: 'ro-muted' }, '—');
  const weight = canaryShare(info);
  return h('span', { class: 'ro-mini-weight', title: `canary ${weight}% / stable ${100 - weight}%` },
    h('span', { class: 'ro-mini-bar' }, h('span', { class: 'ro-mini-fill', style: { width: `${weight}%` } })),
    `${weight}%`);
}

function row(info) {
  const meta = info.objectMeta || {};
  const href = `/rollouts/${encodeURIComponent(meta.namespace)}/${encodeURIComponent(meta.name)}`;
  const open = (event) => {
    if (event.target.closest('a') || window.getSelection().toString()) return;
    navigate(href);
  };
  return h('tr', { class: 'ro-row clickable', 'data-testid': 'rollout-row', 'data-name': meta.name, 'data-namespace': meta.namespace, onclick: open },
    h('td', {}, link(href, { class: 'ro-name-link' }, meta.name)),
    h('td', { class: 'ro-mono ro-muted' }, meta.namespace),
    h('td', {}, strategyChip(info.strategy)),
    h('td', {}, badge('phase', info.status)),
    h('td', { class: 'ro-mono' }, info.step || h('span', { class: 'ro-muted' }, '—')),
    h('td', {}, weightCell(info)),
    h('td', {}, replicasCell(info)),
    h('td', {}, h('div', { class: 'ro-images' }, images(info).map((image) => h('code', { class: 'ro-image' }, image)))));
}

function summary(rollouts) {
  const counts = new Map();
  for (const info of rollouts) counts.set(info.status || 'Unknown', (counts.get(info.status || 'Unknown') || 0) + 1);
  return h('div', { class: 'ro-summary' }, [...counts.entries()].sort().map(([status, n]) => h('span', { class: 'ro-summary-item' },
    badge('phase', status, { testid: 'rollout-summary-status' }), h('span', { class: 'ro-summary-count' }, String(n)))));
}

function table(rollouts) {
  if (!rollouts.length) {
    return h('div', { class: 'empty ro-empty' },
      h('h3', {}, 'No Rollouts here'),
      h('p', {}, 'Pick another namespace above, or deploy a Rollout with an Application.'));
  }
  return [
    summary(rollouts),
    h('div', { class: 'card ro-table-card' },
      h('table', { class: 'table ro-table' },
        h('thead', {}, h('tr', {}, ['Name', 'Namespace', 'Strategy', 'Status', 'Step', 'Weight', 'Ready', 'Images'].map((t) => h('th', {}, t)))),
        h('tbody', {}, rollouts.map(row)))),
  ];
}

const ALL = '*';

function render(params, query, outlet) {
  let selected = query.get('namespace') || remembered() || ALL;
  let known = [];
  let closers = [];
  let stopPolling = null;
  let generation = 0; // bumped on each namespace choice and on leaving: late answers are dropped
  let byKey = new Map();
  const listSlot = h('div', { class: 'ro-list-slot' }, h('div', { class: 'boot' }, 'Loading rollouts…'));
  const countSlot = h('span', { class: 'ro-count', 'data-testid': 'rollout-count' });
  const liveDot = h('span', { class: 'ro-live', title: 'Live updates' });
  const select = h('select', { class: 'ro-ns-select', 'data-testid': 'rollout-namespace', 'aria-label': 'Namespace' });
  const input = h('input', {
    class: 'ro-ns-input', type: 'text', placeholder: 'other namespace…', 'aria-label': 'Other namespace',
    'data-testid': 'rollout-namespace-input',
  });
  const keyOf = (info) => `${info.objectMeta.namespace}/${info.objectMeta.name}`;
  const namespaces = () => (selected === ALL ? known : [selected]);

  const draw = throttle(() => {
    const rollouts = [...byKey.values()].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1));
    mount(countSlot, `${rollouts.length} rollout${rollouts.length === 1 ? '' : 's'}`
      + (selected === ALL ? ` in ${known.length} namespace${known.length === 1 ? '' : 's'}` : ` in ${selected}`));
    mount(listSlot, table(rollouts));
  }, 250);

  // One round: every shown namespace's Rollouts at once.
  async function load() {
    const round = generation;
    const next = new Map();
    let unavailable = null;
    await Promise.all(namespaces().map(async (ns) => {
      try {
        const data = await api(`/api/v1/rollouts/${encodeURIComponent(ns)}/info`);
        for (const info of (data && data.rollouts) || []) next.set(keyOf(info), info);
      } catch (err) {
        if (err.status === 404) unavailable = err;
        else if (err.status !== 403) throw err;
      }
    })).then(() => {
      if (round !== generation) return;
      byKey = next;
      if (!next.size && unavailable) {
        mount(listSlot, h('div', { class: 'empty ro-empty' }, h('h3', {}, 'Rollouts are not available'),
          h('p', {}, String(unavailable.message || 'This server has no Rollout API.'))));
      } else {
        draw();
      }
    }, (err) => { if (round === generation) showError(listSlot, err); });
  }

  function polling(on) {
    if (on && !stopPolling) stopPolling = repeat(load, POLL_MS);
    if (!on && stopPolling) { stopPolling(); stopPolling = null; }
    liveDot.title = on ? `Polling every ${POLL_MS / 1000} s` : 'Live updates';
  }

  function stopWatching() {
    for (const close of closers) close();
    closers = [];
    polling(false);
  }

  // Streams for a namespace or two (polling while any of them is down); one poll round for more.
  function watch() {
    stopWatching();
    const shown = namespaces();
    liveDot.classList.remove('ro-live-on');
    if (shown.length > MAX_STREAMS) { polling(true); return; }
    const states = shown.map(() => 'connecting');
    closers = shown.map((ns, i) => stream(`/api/v1/rollouts/${encodeURIComponent(ns)}/info/watch`, (event) => {
      const info = event && event.result;
      if (!info || !info.objectMeta) return;
      if (event.type === 'DELETED') byKey.delete(keyOf(info));
      else byKey.set(keyOf(info), info);
      draw();
    }, (state) => {
      states[i] = state;
      liveDot.classList.toggle('ro-live-on', states.every((s) => s === 'open'));
      polling(states.some((s) => s === 'error' || s === 'closed'));
    }));
  }

  function fillSelect() {
    const all = new Set(known);
    if (selected !== ALL) all.add(selected);
    mount(select, h('option', { value: ALL }, 'All namespaces'), [...all].sort().map((ns) => h('option', { value: ns }, ns)));
    select.value = selected;
  }

  function choose(value) {
    generation += 1;
    selected = (value || '').trim() || ALL;
    remember(selected);
    const search = selected === ALL ? '' : `?namespace=${encodeURIComponent(selected)}`;
    history.replaceState(null, '', `/rollouts${search}`);
    fillSelect();
    byKey = new Map();
    mount(listSlot, h('div', { class: 'boot' }, 'Loading rollouts…'));
    load();
    watch();
  }

  select.addEventListener('change', () => choose(select.value));
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') { choose(input.value); input.value = ''; }
  });

  mount(outlet, h('div', { class: 'ro-list-page' },
    h('div', { class: 'ro-page-head' },
      h('div', {}, h('h1', { class: 'ro-title' }, 'Rollouts', liveDot), countSlot),
      h('div', { class: 'ro-ns-picker' }, h('label', { class: 'ro-label' }, 'Namespace'), select, input)),
    listSlot));

  let left = false;
  knownNamespaces().then((found) => {
    if (left) return;
    known = found.length ? found : ['default'];
    choose(selected);
  });

  return () => {
    left = true;
    generation += 1;
    stopWatching();
  };
}

route('/rollouts', render, { title: 'Rollouts' });
