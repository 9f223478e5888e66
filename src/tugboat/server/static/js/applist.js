// The Applications page: every Application as a tile or a table row, with search, status filters and
// counts, kept live by the application stream (or by polling when the stream is not available).
//
// It has to stay quick with a thousand apps, so: the list asks only for the fields it shows; each app's
// element is built once and cached until that app changes; the first screenful is drawn at once and the
// rest in later animation frames; stream events are batched and patch single elements in place.
import { api, badge, h, mount, navigate, repeat, route, shortSha, stream, timeAgo } from './core.js';
import { appPath, destinationText, primarySource, sourceText } from './appcommon.js';

export const LIST_FIELDS = [
  'items.metadata.name', 'items.metadata.namespace', 'items.metadata.creationTimestamp',
  'items.metadata.resourceVersion', 'items.spec',
  'items.status.sync.status', 'items.status.sync.revision', 'items.status.health', 'items.status.summary',
  'items.status.operationState.phase', 'items.status.operationState.finishedAt', 'items.status.reconciledAt',
].join(',');

const VIEW_KEY = 'tugboat.applications.view';
const FIRST_CHUNK = 120;
const NEXT_CHUNK = 200;
const FLUSH_MS = 400;
const POLL_MS = 5000;
const STREAM_GIVE_UP_ERRORS = 3;
const STREAM_GIVE_UP_MS = 8000;
const SYNC_STATUSES = ['Synced', 'OutOfSync', 'Unknown'];
const HEALTH_STATUSES = ['Healthy', 'Progressing', 'Degraded', 'Suspended', 'Missing', 'Unknown'];

const keyOf = (app) => `${app.metadata.namespace || ''}/${app.metadata.name}`;
const syncOf = (app) => (app.status && app.status.sync && app.status.sync.status) || 'Unknown';
const healthOf = (app) => (app.status && app.status.health && app.status.health.status) || 'Unknown';
const projectOf = (app) => (app.spec && app.spec.project) || 'default';
const versionOf = (app) => (app && app.metadata && app.metadata.resourceVersion) || '';

// ------------------------------------------------------------------------------------ elements

function lastSync(app) {
  const op = (app.status && app.status.operationState) || {};
  return op.finishedAt || '';
}

function timeEl(iso, prefix) {
  if (!iso) return h('span', { class: 'muted' }, 'never synced');
  return h('time', { datetime: iso, 'data-ts': iso, 'data-prefix': prefix, title: new Date(iso).toLocaleString() },
    `${prefix}${timeAgo(iso)}`);
}

function operationBadge(app) {
  const phase = app.status && app.status.operationState && app.status.operationState.phase;
  return phase && phase !== 'Succeeded' ? badge('phase', phase, { testid: 'operation-status' }) : null;
}

function buildTile(app) {
  const source = primarySource(app);
  const health = healthOf(app);
  const revision = app.status && app.status.sync && app.status.sync.revision;
  const auto = app.spec && app.spec.syncPolicy && app.spec.syncPolicy.automated;
  return h('a', {
    class: 'app-tile', href: appPath(app), 'data-testid': 'app-tile', 'data-name': app.metadata.name,
    'data-namespace': app.metadata.namespace || '', 'data-health': health, 'data-sync': syncOf(app),
    'aria-label': `${app.metadata.name}: ${health}, ${syncOf(app)}`,
  },
  h('div', { class: 'app-tile-head' },
    // elementtiming: the browser records when the first names are painted (bench/server.py reads it)
    h('span', { class: 'app-tile-name', title: app.metadata.name, elementtiming: 'app-tile' }, app.metadata.name),
    auto ? h('span', { class: 'tag tag-primary', title: 'Automated sync' }, 'auto') : null),
  h('div', { class: 'app-tile-badges' }, badge('health', health), badge('sync', syncOf(app)), operationBadge(app)),
  h('dl', { class: 'kv' },
    h('dt', {}, 'Project'), h('dd', {}, projectOf(app)),
    h('dt', {}, 'Repository'), h('dd', { title: source.repoURL || '' }, sourceText(source)),
    h('dt', {}, source.chart ? 'Chart' : 'Path'), h('dd', {}, source.chart || source.path || '.'),
    h('dt', {}, 'Target'), h('dd', {}, source.targetRevision || 'HEAD'),
    h('dt', {}, 'Destination'), h('dd', {}, destinationText(app))),
  h('div', { class: 'app-tile-foot' },
    timeEl(lastSync(app), 'Synced '),
    h('span', { class: 'spacer' }),
    revision ? h('span', { class: 'sha', title: revision }, shortSha(revision)) : null));
}

const LIST_COLUMNS = ['Name', 'Project', 'Health', 'Sync', 'Repository', 'Path', 'Target', 'Destination', 'Last sync'];

// List rows are grid rows (ARIA table semantics): unlike <tr>, they can skip layout while off screen.
function buildRow(app) {
  const source = primarySource(app);
  const revision = app.status && app.status.sync && app.status.sync.revision;
  const cell = (...children) => h('div', { class: 'cell', role: 'cell' }, ...children);
  return h('div', {
    class: 'app-row', role: 'row', 'data-testid': 'app-row', 'data-name': app.metadata.name,
    'data-namespace': app.metadata.namespace || '', 'data-health': healthOf(app), 'data-href': appPath(app),
  },
  h('div', { class: 'cell name', role: 'cell' }, h('a', { href: appPath(app), title: app.metadata.name }, app.metadata.name)),
  cell(projectOf(app)),
  cell(badge('health', healthOf(app))),
  cell(badge('sync', syncOf(app)), operationBadge(app)),
  h('div', { class: 'cell', role: 'cell', title: source.repoURL || '' }, sourceText(source)),
  cell(source.chart || source.path || '.'),
  cell(source.targetRevision || 'HEAD', revision ? [' ', h('span', { class: 'sha', title: revision }, shortSha(revision))] : null),
  cell(destinationText(app)),
  cell(timeEl(lastSync(app), '')));
}

// ---------------------------------------------------------------------------------------- page

function readView() {
  try { return localStorage.getItem(VIEW_KEY) === 'list' ? 'list' : 'tiles'; } catch { return 'tiles'; }
}

function writeView(view) {
  try { localStorage.setItem(VIEW_KEY, view); } catch { /* private mode */ }
}

function renderApplications(params, query, outlet) {
  const apps = new Map(); // key -> app
  let order = []; // keys sorted by name
  const cache = { tiles: new Map(), list: new Map() }; // key -> {app, el}
  const filters = {
    search: query.get('search') || '',
    sync: new Set(query.getAll('sync')),
    health: new Set(query.getAll('health')),
    project: query.get('proj') || '',
  };
  let view = readView();
  let chunkJob = 0;
  let closed = false;
  const timers = [];
  let closeStream = null;

  // ---- skeleton of the page
  const count = h('span', { class: 'app-count', 'data-testid': 'app-count', 'aria-live': 'polite' }, '');
  const live = h('span', { class: 'live-state', title: 'Live updates' }, h('span', { class: 'pulse' }), h('span', { class: 'lbl' }, 'connecting'));
  const search = h('input', {
    type: 'search', placeholder: 'Search applications', value: filters.search, 'aria-label': 'Search applications by name',
    'data-testid': 'app-search', oninput: () => { filters.search = search.value.trim(); scheduleRender(); },
    onkeydown: (event) => { if (event.key === 'Escape') { search.value = ''; filters.search = ''; scheduleRender(); } },
  });
  const projectSelect = h('select', {
    'aria-label': 'Filter by project', 'data-testid': 'app-project-filter',
    onchange: () => { filters.project = projectSelect.value; scheduleRender(); },
  }, h('option', { value: '' }, 'All projects'));
  const viewTiles = h('button', { class: 'btn btn-secondary', type: 'button', 'data-testid': 'view-tiles', title: 'Tiles', onclick: () => setView('tiles') }, '▦ Tiles');
  const viewList = h('button', { class: 'btn btn-secondary', type: 'button', 'data-testid': 'view-list', title: 'List', onclick: () => setView('list') }, '☰ List');
  const syncChips = h('div', { class: 'row', role: 'group', 'aria-label': 'Sync status filter' });
  const healthChips = h('div', { class: 'row', role: 'group', 'aria-label': 'Health status filter' });
  const clearBtn = h('button', { class: 'btn btn-ghost btn-sm', type: 'button', hidden: true, onclick: clearFilters }, 'Clear filters');
  const body = h('div', { class: 'app-list-body' }, h('div', { class: 'loading' }, 'Loading applications…'));
  const filtersRow = h('div', { class: 'filters', hidden: true },
    h('div', { class: 'filter-group' }, h('span', { class: 'label' }, 'Sync'), syncChips),
    h('div', { class: 'filter-group' }, h('span', { class: 'label' }, 'Health'), healthChips),
    clearBtn);

  mount(outlet,
    h('div', { class: 'page-header' },
      h('h1', {}, 'Applications'), count, h('span', { class: 'spacer' }), live),
    h('div', { class: 'toolbar' },
      h('label', { class: 'search' }, h('span', { class: 'sr-only' }, 'Search'), search),
      projectSelect,
      h('span', { class: 'spacer' }),
      h('div', { class: 'btn-group', role: 'group', 'aria-label': 'View' }, viewTiles, viewList)),
    filtersRow,
    body);
  body.addEventListener('click', onBodyClick);

  function onBodyClick(event) {
    const target = event.target.closest('[data-testid="app-tile"], [data-testid="app-row"]');
    if (!target || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    navigate(target.getAttribute('href') || target.dataset.href);
  }

  function setView(next) {
    view = next;
    writeView(view);
    renderList();
  }

  function clearFilters() {
    filters.search = '';
    search.value = '';
    filters.sync.clear();
    filters.health.clear();
    filters.project = '';
    renderList();
  }

  // ---- filtering
  function matchesBase(app) {
    if (filters.project && projectOf(app) !== filters.project) return false;
    return !filters.search || app.metadata.name.toLowerCase().includes(filters.search.toLowerCase());
  }

  function matches(app) {
    if (!matchesBase(app)) return false;
    if (filters.sync.size && !filters.sync.has(syncOf(app))) return false;
    return !filters.health.size || filters.health.has(healthOf(app));
  }

  function visibleKeys() {
    return order.filter((key) => matches(apps.get(key)));
  }

  function syncUrl() {
    const q = new URLSearchParams();
    if (filters.search) q.set('search', filters.search);
    if (filters.project) q.set('proj', filters.project);
    for (const s of filters.sync) q.append('sync', s);
    for (const s of filters.health) q.append('health', s);
    const qs = q.toString();
    const url = `${location.pathname}${qs ? `?${qs}` : ''}`;
    if (url !== location.pathname + location.search) history.replaceState(null, '', url);
  }

  // ---- drawing
  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; if (!closed) renderList(); });
  }

  function elementFor(key) {
    const app = apps.get(key);
    const store = cache[view];
    const cached = store.get(key);
    if (cached && cached.app === app) return cached.el;
    const el = view === 'tiles' ? buildTile(app) : buildRow(app);
    store.set(key, { app, el });
    return el;
  }

  function renderControls() {
    const base = order.map((key) => apps.get(key)).filter(matchesBase);
    const counts = { sync: {}, health: {} };
    for (const app of base) {
      counts.sync[syncOf(app)] = (counts.sync[syncOf(app)] || 0) + 1;
      counts.health[healthOf(app)] = (counts.health[healthOf(app)] || 0) + 1;
    }
    const chip = (kind, status) => h('button', {
      class: 'chip', type: 'button', 'aria-pressed': String(filters[kind].has(status)),
      'data-testid': `filter-${kind}-${status}`,
      onclick: () => { if (filters[kind].has(status)) filters[kind].delete(status); else filters[kind].add(status); renderList(); },
    }, h('span', { class: `dot status-${status.toLowerCase()}`, 'aria-hidden': 'true' }), status,
    h('span', { class: 'count' }, String(counts[kind][status] || 0)));
    mount(syncChips, SYNC_STATUSES.map((s) => chip('sync', s)));
    mount(healthChips, HEALTH_STATUSES.filter((s) => s !== 'Missing' || counts.health[s]).map((s) => chip('health', s)));
    const projects = [...new Set(order.map((key) => projectOf(apps.get(key))))].sort();
    if (filters.project && !projects.includes(filters.project)) projects.push(filters.project);
    mount(projectSelect, h('option', { value: '' }, 'All projects'),
      projects.map((p) => h('option', { value: p, selected: p === filters.project }, p)));
    projectSelect.value = filters.project;
    viewTiles.classList.toggle('active', view === 'tiles');
    viewList.classList.toggle('active', view === 'list');
    viewTiles.setAttribute('aria-pressed', String(view === 'tiles'));
    viewList.setAttribute('aria-pressed', String(view === 'list'));
    const filtered = filters.search || filters.project || filters.sync.size || filters.health.size;
    clearBtn.hidden = !filtered;
    return filtered;
  }

  // `live`: a redraw for stream changes. It keeps the drawn container (and so the scroll position) and
  // sets all its children at once: unchanged apps reuse their cached elements, so only changes are built.
  let drawn = null; // {view, target} of the list on screen
  function renderList({ live = false } = {}) {
    chunkJob += 1;
    filtersRow.hidden = !apps.size;
    const filtered = renderControls();
    syncUrl();
    const keys = visibleKeys();
    count.textContent = filtered ? `${keys.length} of ${apps.size}` : `${apps.size} total`;
    if (!apps.size) { drawn = null; mount(body, emptyState()); return; }
    if (!keys.length) {
      drawn = null;
      mount(body, h('div', { class: 'empty' }, h('h2', {}, 'No applications match'),
        h('p', {}, 'Nothing matches the search and filters.'),
        h('button', { class: 'btn btn-secondary', type: 'button', onclick: clearFilters }, 'Clear filters')));
      return;
    }
    if (live && drawn && drawn.view === view && drawn.target.isConnected) {
      drawn.target.replaceChildren(...keys.map(elementFor));
      return;
    }
    let container;
    let target;
    if (view === 'tiles') {
      container = target = h('div', { class: 'tiles', 'data-testid': 'app-tiles' });
    } else {
      target = h('div', { class: 'list-body', role: 'rowgroup' });
      container = h('div', { class: 'list-view', role: 'table', 'aria-label': 'Applications', 'data-testid': 'app-table' },
        h('div', { class: 'list-head', role: 'rowgroup' }, h('div', { class: 'app-row-head', role: 'row' },
          LIST_COLUMNS.map((title) => h('div', { class: 'cell', role: 'columnheader' }, title)))),
        target);
    }
    target.append(...keys.slice(0, FIRST_CHUNK).map(elementFor));
    mount(body, container);
    drawn = { view, target };
    performance.mark('apps-first-chunk');
    appendChunks(target, keys, FIRST_CHUNK, chunkJob);
  }

  function appendChunks(target, keys, from, job) {
    if (from >= keys.length) return;
    requestAnimationFrame(() => {
      if (job !== chunkJob || closed) return;
      const fragment = document.createDocumentFragment();
      fragment.append(...keys.slice(from, from + NEXT_CHUNK).map(elementFor));
      target.append(fragment);
      appendChunks(target, keys, from + NEXT_CHUNK, job);
    });
  }

  function emptyState() {
    return h('div', { class: 'empty', 'data-testid': 'apps-empty' },
      h('h2', {}, 'No applications yet'),
      h('p', {}, 'An Application tells Tugboat which Git repository and path to deploy, and where. Create one with the CLI:'),
      h('pre', {}, 'tugboat app create guestbook \\\n  --repo https://github.com/argoproj/argocd-example-apps \\\n  --path guestbook --dest-namespace guestbook --sync-policy automated'),
      h('p', {}, 'or apply an argoproj.io/v1alpha1 Application manifest to the argocd namespace with kubectl apply -f. It appears here within seconds.'));
  }

  // ---- data
  function setAll(items) {
    apps.clear();
    for (const app of items || []) if (app && app.metadata) apps.set(keyOf(app), app);
    order = [...apps.keys()].sort(byName);
  }

  function byName(a, b) {
    const an = apps.get(a).metadata.name;
    const bn = apps.get(b).metadata.name;
    return an < bn ? -1 : an > bn ? 1 : a < b ? -1 : a > b ? 1 : 0;
  }

  // Changes waiting for the next flush: key -> app (null = deleted).
  const pending = new Map();
  let flushTimer = null;

  function queue(key, app) {
    pending.set(key, app);
    if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
  }

  function flush() {
    flushTimer = null;
    if (closed || !pending.size) return;
    let structural = false;
    const changed = [];
    for (const [key, app] of pending) {
      const before = apps.get(key);
      if (!app) {
        if (before) { apps.delete(key); cache.tiles.delete(key); cache.list.delete(key); structural = true; }
        continue;
      }
      if (!before) structural = true;
      else if (same(before, app)) continue;
      else if (matches(before) !== matches(app) || syncOf(before) !== syncOf(app) || healthOf(before) !== healthOf(app)
        || projectOf(before) !== projectOf(app)) structural = true;
      apps.set(key, app);
      changed.push(key);
    }
    pending.clear();
    if (structural) {
      order = [...apps.keys()].sort(byName);
      renderList({ live: true });
      return;
    }
    for (const key of changed) {
      const cached = cache[view].get(key);
      if (!cached || !cached.el.isConnected) continue; // drawn when its chunk comes
      const old = cached.el;
      old.replaceWith(elementFor(key));
    }
  }

  // Same resourceVersion: the same object (the cheap test that lets the stream's opening replay of every
  // app cost nothing). Otherwise compare what the page shows: a write that changed none of it redraws nothing.
  function same(a, b) {
    if (a === b) return true;
    const version = versionOf(a);
    if (version && version === versionOf(b)) return true;
    return shown(a) === shown(b);
  }

  function shown(app) {
    return JSON.stringify({ ...app, metadata: { ...app.metadata, resourceVersion: undefined } });
  }

  // The stream starts by sending every app as ADDED (again on each reconnect): apps the page already has
  // at that version are dropped here, so only real changes reach the batch.
  function onEvent(data) {
    const result = data && data.result;
    if (!result || !result.application || !result.application.metadata) return;
    const app = result.application;
    const key = keyOf(app);
    if (result.type === 'DELETED') { queue(key, null); return; }
    const latest = pending.has(key) ? pending.get(key) : apps.get(key);
    const version = versionOf(app);
    if (latest && version && versionOf(latest) === version) return;
    queue(key, app);
  }

  async function load() {
    const data = await api(`/api/v1/applications?fields=${encodeURIComponent(LIST_FIELDS)}`);
    return (data && data.items) || [];
  }

  // Stream first; after repeated errors (or a stream that never opens) poll instead.
  let streamErrors = 0;
  let everOpened = false;
  let giveUpTimer = null;
  let polling = false;
  let stopPolling = null;

  function setLive(state, text) {
    live.className = `live-state ${state}`;
    live.querySelector('.lbl').textContent = text;
  }

  function startStream() {
    closeStream = stream(`/api/v1/stream/applications?fields=${encodeURIComponent(LIST_FIELDS)}`, onEvent, (state) => {
      if (closed || polling) return;
      if (state === 'open') {
        if (everOpened && streamErrors) resync();
        everOpened = true;
        streamErrors = 0;
        clearTimeout(giveUpTimer);
        setLive('live', 'Live');
        return;
      }
      streamErrors += 1;
      setLive('', 'reconnecting');
      if (streamErrors >= STREAM_GIVE_UP_ERRORS) startPolling();
      else if (!giveUpTimer) giveUpTimer = setTimeout(() => { giveUpTimer = null; if (streamErrors) startPolling(); }, STREAM_GIVE_UP_MS);
    });
  }

  function startPolling() {
    if (polling || closed) return;
    polling = true;
    if (closeStream) { closeStream(); closeStream = null; }
    setLive('polling', `Polling every ${POLL_MS / 1000}s`);
    stopPolling = repeat(resync, POLL_MS);
  }

  async function resync() {
    try {
      const items = await load();
      if (closed) return;
      const seen = new Set();
      for (const app of items) {
        const key = keyOf(app);
        seen.add(key);
        const before = apps.get(key);
        if (!before || !same(before, app)) queue(key, app);
      }
      for (const key of apps.keys()) if (!seen.has(key)) queue(key, null);
    } catch (err) {
      if (!closed) setLive('', `Update failed: ${err.message || err}`);
    }
  }

  // Relative times ("3m ago") age; refresh the drawn ones now and then.
  timers.push(setInterval(() => {
    for (const el of body.querySelectorAll('time[data-ts]')) {
      el.textContent = `${el.dataset.prefix || ''}${timeAgo(el.dataset.ts)}`;
    }
  }, 30000));

  async function start() {
    mount(body, h('div', { class: 'loading' }, 'Loading applications…'));
    try {
      const items = await load();
      performance.mark('apps-loaded');
      setAll(items);
    } catch (err) {
      if (closed) return;
      setLive('', 'offline');
      mount(body, h('div', { class: 'error-panel', role: 'alert' }, h('strong', {}, 'Could not load applications'),
        h('p', {}, String(err.message || err)),
        h('button', { class: 'btn btn-secondary', type: 'button', style: { marginTop: '8px' }, onclick: start }, 'Retry')));
      return;
    }
    if (closed) return;
    renderList();
    if (!closeStream && !polling) startStream();
  }
  start();

  return () => {
    closed = true;
    chunkJob += 1;
    if (closeStream) closeStream();
    clearTimeout(flushTimer);
    clearTimeout(giveUpTimer);
    if (stopPolling) stopPolling();
    for (const t of timers) clearInterval(t);
  };
}

route('/applications', renderApplications, { title: 'Applications' });
