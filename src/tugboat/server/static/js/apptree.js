// The Application page's resource tree (laid out left to right: the Application, its managed resources,
// then what they own) and the side panel that shows one resource's summary, live manifest and events
// (and, for a Pod, its container logs).
import { api, badge, h, link, mount, navigate, timeAgo } from './core.js';
import { appApi, parseManifest, toYaml, withoutNoise } from './appcommon.js';

const NODE_W = 260;
const NODE_H = 62;
const COL_GAP = 72;
const ROW_H = 76;
const PAD = 20;
const SVG = 'http://www.w3.org/2000/svg';

const ABBREVIATIONS = {
  Application: 'app', Deployment: 'deploy', ReplicaSet: 'rs', Pod: 'pod', Service: 'svc', Rollout: 'rollout',
  ConfigMap: 'cm', Secret: 'secret', Ingress: 'ing', StatefulSet: 'sts', DaemonSet: 'ds', Job: 'job',
  CronJob: 'cj', AnalysisRun: 'run', AnalysisTemplate: 'tmpl', ClusterAnalysisTemplate: 'tmpl', Experiment: 'exp',
  Namespace: 'ns', ServiceAccount: 'sa', PersistentVolumeClaim: 'pvc', Endpoints: 'ep', EndpointSlice: 'eps',
  HorizontalPodAutoscaler: 'hpa', Role: 'role', RoleBinding: 'rb', ClusterRole: 'cr', ClusterRoleBinding: 'crb',
  NetworkPolicy: 'netpol', PodDisruptionBudget: 'pdb', CustomResourceDefinition: 'crd',
};

export function kindIcon(kind) {
  const abbreviation = ABBREVIATIONS[kind] || (kind || '?').replace(/[a-z]/g, '').toLowerCase() || kind.slice(0, 3);
  return h('span', { class: `kind-icon k-${(kind || '').toLowerCase()}`, 'aria-hidden': 'true' }, abbreviation);
}

const refKey = (r) => `${r.group || ''}/${r.kind}/${r.namespace || ''}/${r.name}`;
export const nodeKey = (n) => n.uid || refKey(n);

// Managed resources (status.resources) by group/kind/namespace/name.
function managedIndex(app) {
  const index = new Map();
  for (const r of (app.status && app.status.resources) || []) index.set(refKey(r), r);
  return index;
}

// The tree as {node, children} from the resource-tree answer (or, when there is none, from
// status.resources alone), under a root node standing for the Application itself.
export function buildTree(app, tree) {
  const managed = managedIndex(app);
  const nodes = tree && Array.isArray(tree.nodes) ? tree.nodes
    : [...managed.values()].map((r) => ({ ...r, health: r.health || null }));
  const byUid = new Map();
  const byRef = new Map();
  const items = nodes.map((node) => ({ node, children: [], managed: managed.get(refKey(node)) || null }));
  for (const item of items) {
    if (item.node.uid) byUid.set(item.node.uid, item);
    byRef.set(refKey(item.node), item);
  }
  const root = {
    node: { kind: 'Application', group: 'argoproj.io', name: app.metadata.name, namespace: app.metadata.namespace, health: app.status && app.status.health, root: true },
    children: [], managed: null,
  };
  for (const item of items) {
    const parents = (item.node.parentRefs || [])
      .map((ref) => (ref.uid && byUid.get(ref.uid)) || byRef.get(refKey(ref)))
      .filter((parent) => parent && parent !== item);
    if (parents.length && !item.managed) parents[0].children.push(item);
    else root.children.push(item);
  }
  const sort = (item) => {
    item.children.sort((a, b) => kindRank(a.node.kind) - kindRank(b.node.kind)
      || String(a.node.kind).localeCompare(String(b.node.kind)) || String(a.node.name).localeCompare(String(b.node.name)));
    item.children.forEach(sort);
  };
  sort(root);
  return root;
}

const KIND_ORDER = ['Namespace', 'ServiceAccount', 'ConfigMap', 'Secret', 'Service', 'Ingress', 'Deployment', 'Rollout', 'StatefulSet', 'DaemonSet'];
function kindRank(kind) {
  const i = KIND_ORDER.indexOf(kind);
  return i < 0 ? KIND_ORDER.length : i;
}

// Positions: depth gives the column; leaves take rows in order; a parent sits level with its children.
function layout(root) {
  const placed = [];
  let row = 0;
  let depthMax = 0;
  const visit = (item, depth) => {
    depthMax = Math.max(depthMax, depth);
    let y;
    if (!item.children.length) {
      y = row * ROW_H;
      row += 1;
    } else {
      const ys = item.children.map((child) => visit(child, depth + 1));
      y = (ys[0] + ys[ys.length - 1]) / 2;
    }
    placed.push({ item, x: depth * (NODE_W + COL_GAP), y });
    return y;
  };
  visit(root, 0);
  return { placed, width: (depthMax + 1) * (NODE_W + COL_GAP) - COL_GAP, height: Math.max(1, row) * ROW_H - (ROW_H - NODE_H) };
}

function treeNode(item, x, y, { selected, onSelect }) {
  const { node, managed } = item;
  const health = node.health && node.health.status;
  const rollout = node.kind === 'Rollout' && node.group === 'argoproj.io';
  const el = h('div', {
    class: ['tree-node', node.root && 'root', selected && 'selected'],
    role: 'button', tabindex: '0', 'data-testid': 'tree-node', 'data-kind': node.kind, 'data-name': node.name,
    'data-namespace': node.namespace || '', 'data-key': nodeKey(node), 'aria-label': `${node.kind} ${node.name}${health ? `, ${health}` : ''}`,
    style: { left: `${x + PAD}px`, top: `${y + PAD}px` },
    onclick: (event) => { if (!event.target.closest('a')) onSelect(item); },
    onkeydown: (event) => {
      if (event.target === event.currentTarget && (event.key === 'Enter' || event.key === ' ')) { event.preventDefault(); onSelect(item); }
    },
  },
  kindIcon(node.kind),
  rollout ? link(`/rollouts/${encodeURIComponent(node.namespace || '')}/${encodeURIComponent(node.name)}`, {
    class: 'node-link', 'data-testid': 'tree-rollout-link', title: `Open the Rollout page of ${node.name}`,
  }, 'Rollout ↗') : null,
  h('div', { class: 'node-text' },
    h('span', { class: 'node-kind' }, node.kind),
    h('span', { class: 'node-name', title: node.name }, node.name),
    h('span', { class: 'node-badges' },
      health ? badge('health', health) : (node.root ? badge('health', 'Unknown') : null),
      managed && managed.status ? badge('sync', managed.status) : null)));
  return el;
}

// Draws the tree into `container`; `selectedKey` marks the node whose panel is open.
export function renderTree(container, app, tree, { selectedKey, onSelect }) {
  const root = buildTree(app, tree);
  const { placed, width, height } = layout(root);
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'tree-edges');
  svg.setAttribute('width', String(width + 2 * PAD));
  svg.setAttribute('height', String(height + 2 * PAD));
  const where = new Map(placed.map((p) => [p.item, p]));
  for (const p of placed) {
    for (const child of p.item.children) {
      const c = where.get(child);
      const x1 = p.x + NODE_W + PAD;
      const y1 = p.y + NODE_H / 2 + PAD;
      const x2 = c.x + PAD;
      const y2 = c.y + NODE_H / 2 + PAD;
      const mid = (x1 + x2) / 2;
      const path = document.createElementNS(SVG, 'path');
      path.setAttribute('d', `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`);
      svg.append(path);
    }
  }
  const nodes = placed.map((p) => treeNode(p.item, p.x, p.y, { selected: nodeKey(p.item.node) === selectedKey, onSelect }));
  const scroll = container.querySelector('.tree-wrap');
  const keep = scroll ? { left: scroll.scrollLeft, top: scroll.scrollTop } : null;
  const wrap = h('div', { class: 'tree-wrap' },
    h('div', {
      class: 'resource-tree', 'data-testid': 'resource-tree', role: 'group', 'aria-label': 'Resource tree',
      style: { width: `${width + 2 * PAD}px`, height: `${height + 2 * PAD}px` },
    }, svg, nodes));
  mount(container, wrap);
  if (keep) { wrap.scrollLeft = keep.left; wrap.scrollTop = keep.top; }
  return root;
}

// Finds the tree item for `key` (to refresh an open panel after the tree changed).
export function findItem(root, key) {
  if (nodeKey(root.node) === key) return root;
  for (const child of root.children) {
    const found = findItem(child, key);
    if (found) return found;
  }
  return null;
}

// ------------------------------------------------------------------------------------ side panel

// The panel for one node: returns {el, update(item), close}. `app` is a getter for the current app.
export function resourcePanel(getApp, item, { onClose, initialTab = 'summary' }) {
  let tab = initialTab;
  let current = item;
  let manifestCache = null;
  const title = h('h2', {});
  const headIcon = h('span', {});
  const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Resource details' });
  const body = h('div', { class: 'side-panel-body', role: 'tabpanel' });
  const closeBtn = h('button', { class: 'btn btn-ghost btn-icon', type: 'button', 'aria-label': 'Close panel', 'data-testid': 'panel-close', onclick: () => onClose() }, '✕');
  const el = h('aside', { class: 'side-panel', 'data-testid': 'resource-panel', 'aria-label': 'Resource details' },
    h('div', { class: 'side-panel-head' }, headIcon, title, h('span', { class: 'spacer' }), closeBtn),
    h('div', { style: { padding: '0 18px' } }, tabs), body);

  function drawHead() {
    const { node } = current;
    mount(headIcon, kindIcon(node.kind));
    mount(title, h('span', { class: 'muted' }, `${node.kind} `), node.name);
    const names = ['summary', 'manifest', 'events', ...(isPod(node) ? ['logs'] : [])];
    if (!names.includes(tab)) tab = 'summary';
    mount(tabs, names.map((name) => h('button', {
      class: 'tab', role: 'tab', type: 'button', 'aria-selected': String(tab === name), 'data-testid': `panel-tab-${name}`,
      onclick: () => { if (tab !== name) { tab = name; draw(); } },
    }, name[0].toUpperCase() + name.slice(1))));
  }

  function draw() {
    drawHead();
    if (tab !== 'logs') logs.stop();
    if (tab === 'summary') drawSummary();
    else if (tab === 'manifest') drawManifest();
    else if (tab === 'logs') { mount(body, logs.el); logs.show(); }
    else drawEvents();
  }

  const logs = isPod(item.node) ? podLogs(getApp, () => current.node) : { el: null, show() {}, stop() {} };

  function drawSummary() {
    const { node, managed } = current;
    const app = getApp();
    const rows = [
      ['Kind', [node.group ? `${node.group}/` : '', node.version ? `${node.version} ` : '', node.kind]],
      ['Name', node.name],
      ['Namespace', node.namespace || '—'],
      ['Health', node.health && node.health.status ? badge('health', node.health.status) : '—'],
      node.health && node.health.message ? ['Health message', node.health.message] : null,
      managed ? ['Sync status', badge('sync', managed.status || 'Unknown')] : null,
      managed && managed.requiresPruning ? ['Pruning', 'requires pruning (not in Git any more)'] : null,
      node.createdAt ? ['Created', `${timeAgo(node.createdAt)} (${new Date(node.createdAt).toLocaleString()})`] : null,
      ...(node.info || []).map((i) => [i.name, i.value]),
      node.images && node.images.length ? ['Images', node.images.join(', ')] : null,
      node.root ? ['Application', app.metadata.name] : null,
    ].filter(Boolean);
    mount(body,
      node.kind === 'Rollout' && node.group === 'argoproj.io'
        ? h('p', {}, link(`/rollouts/${encodeURIComponent(node.namespace || '')}/${encodeURIComponent(node.name)}`, { class: 'btn btn-secondary' }, 'Open the Rollout page ↗'))
        : null,
      h('table', { class: 'table' }, h('tbody', {}, rows.map(([k, v]) => h('tr', {}, h('th', { scope: 'row', style: { width: '160px' } }, k), h('td', {}, v))))));
  }

  async function drawManifest() {
    const { node } = current;
    const app = getApp();
    if (node.root) {
      mount(body, h('pre', { class: 'code', 'data-testid': 'live-manifest' }, toYaml(withoutNoise(app))));
      return;
    }
    if (manifestCache) { mount(body, h('pre', { class: 'code', 'data-testid': 'live-manifest' }, manifestCache)); return; }
    mount(body, h('div', { class: 'loading' }, 'Loading manifest…'));
    const shown = current;
    try {
      const data = await api(appApi(app.metadata.namespace, app.metadata.name, '/resource', {
        namespace: node.namespace || '', resourceName: node.name, version: node.version || '', group: node.group || '', kind: node.kind,
      }));
      if (shown !== current || tab !== 'manifest') return;
      const parsed = parseManifest(data && data.manifest);
      const apiVersion = node.group ? `${node.group}/${node.version || ''}` : node.version || 'v1';
      const obj = parsed && !parsed.kind ? { apiVersion, kind: node.kind, ...parsed } : parsed;
      manifestCache = obj ? toYaml(withoutNoise(obj)) : '# not found in the cluster';
      mount(body,
        h('div', { class: 'row', style: { marginBottom: '8px' } }, h('span', { class: 'muted small' }, 'Live manifest'), h('span', { class: 'spacer' }),
          h('button', { class: 'btn btn-ghost btn-sm', type: 'button', onclick: () => { manifestCache = null; drawManifest(); } }, 'Reload')),
        h('pre', { class: 'code', 'data-testid': 'live-manifest' }, manifestCache));
    } catch (err) {
      if (shown !== current) return;
      mount(body, h('div', { class: 'notice notice-warning' }, err.status === 404 ? 'The live manifest is not available.' : `Could not load the manifest: ${err.message}`));
    }
  }

  async function drawEvents() {
    const { node } = current;
    const app = getApp();
    mount(body, h('div', { class: 'loading' }, 'Loading events…'));
    const shown = current;
    try {
      const params = node.root ? {} : { resourceName: node.name, resourceNamespace: node.namespace || '', resourceUID: node.uid || '' };
      const data = await api(appApi(app.metadata.namespace, app.metadata.name, '/events', params));
      if (shown !== current || tab !== 'events') return;
      mount(body, eventsTable((data && data.items) || [], { compact: true }));
    } catch (err) {
      if (shown !== current) return;
      mount(body, h('div', { class: 'notice notice-warning' }, err.status === 404 ? 'Events are not available.' : `Could not load events: ${err.message}`));
    }
  }

  draw();
  return {
    el,
    key: nodeKey(item.node),
    // The tree changed: keep the tab, refresh the summary (the manifest is reloaded on demand).
    update(next) {
      current = next;
      if (tab === 'summary') draw(); else drawHead();
      if (tab !== 'logs') logs.stop();
    },
  };
}

// Events newest first; `compact` (the side panel) leaves out the object and count columns.
export function eventsTable(items, { compact = false } = {}) {
  if (!items.length) return h('div', { class: 'empty-inline', 'data-testid': 'events-empty' }, 'No events.');
  const sorted = [...items].sort((a, b) => eventTime(b).localeCompare(eventTime(a)));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-testid': 'events-table' },
    h('thead', {}, h('tr', {}, ['Type', 'Reason', !compact && 'Object', 'Message', !compact && 'Count', 'Last seen']
      .filter(Boolean).map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, sorted.map((event) => {
      const obj = event.involvedObject || event.regarding || {};
      const when = eventTime(event);
      return h('tr', { class: event.type === 'Warning' ? 'event-warning' : '', 'data-testid': 'event-row', 'data-reason': event.reason || '' },
        h('td', {}, h('span', { class: `badge ${event.type === 'Warning' ? 'status-warning' : 'status-unknown'}` }, event.type || 'Normal')),
        h('td', { class: 'nowrap' }, event.reason || ''),
        compact ? null : h('td', { class: 'nowrap' }, `${obj.kind || ''}/${obj.name || ''}`),
        h('td', { style: { whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' } }, event.message || event.note || ''),
        compact ? null : h('td', { class: 'num' }, String(event.count || (event.series && event.series.count) || 1)),
        h('td', { class: 'nowrap', title: when ? new Date(when).toLocaleString() : '' }, when ? timeAgo(when) : ''));
    }))));
}

const isPod = (node) => node.kind === 'Pod' && !node.group && !node.root;

// ------------------------------------------------------------------------------------------ pod logs

const TAIL_LINES = 200;
const MAX_LINES = 5000; // kept while following

// The Logs tab of a Pod's panel: {el, show, stop}. Shown the first time, it loads the pod's containers
// (from its live manifest) once, then their last lines; Refresh reloads them, Follow keeps reading the
// stream until it is turned off, the tab is left or the panel is gone.
function podLogs(getApp, getNode) {
  let containers = null; // [{name, init}] once known
  let container = '';
  let timestamps = false;
  let follow = false;
  let entries = [];
  let reading = null; // {controller, watchdog} of the request in flight
  let loaded = false;

  const output = h('pre', { class: 'code pod-logs-output', 'data-testid': 'pod-logs', tabindex: '0', 'aria-live': 'off', 'aria-label': 'Log lines' });
  const status = h('span', { class: 'muted small', role: 'status' });
  const message = h('div', {});
  const picker = h('select', {
    class: 'select', 'data-testid': 'logs-container', 'aria-label': 'Container',
    onchange: () => { container = picker.value; reload(); },
  });
  const pickerWrap = h('label', { class: 'row small', hidden: true }, 'Container', picker);
  const stampsBox = h('input', { type: 'checkbox', 'data-testid': 'logs-timestamps', onchange: () => { timestamps = stampsBox.checked; drawLines(); } });
  const followBox = h('input', { type: 'checkbox', 'data-testid': 'logs-follow', onchange: () => { follow = followBox.checked; reload(); } });
  const refreshBtn = h('button', { class: 'btn btn-secondary btn-sm', type: 'button', 'data-testid': 'logs-refresh', onclick: () => reload() }, '↻ Refresh');
  const el = h('div', { class: 'pod-logs-view' },
    h('div', { class: 'row pod-logs-toolbar' }, pickerWrap,
      h('label', { class: 'row small' }, stampsBox, 'Timestamps'),
      h('label', { class: 'row small' }, followBox, 'Follow'),
      h('span', { class: 'spacer' }), status, refreshBtn),
    message, output);

  function stop() {
    if (!reading) return;
    clearInterval(reading.watchdog);
    reading.controller.abort();
    reading = null;
  }

  async function loadContainers(node) {
    const app = getApp();
    try {
      const data = await api(appApi(app.metadata.namespace, app.metadata.name, '/resource', {
        namespace: node.namespace || '', resourceName: node.name, version: node.version || 'v1', group: '', kind: 'Pod',
      }));
      const spec = (parseManifest(data && data.manifest) || {}).spec || {};
      return [...(spec.containers || []).map((c) => ({ name: c.name, init: false })),
        ...(spec.initContainers || []).map((c) => ({ name: c.name, init: true }))];
    } catch {
      return []; // unknown: ask without a container (fine for one-container pods)
    }
  }

  function drawPicker() {
    mount(picker, containers.map((c) => h('option', { value: c.name, selected: c.name === container }, c.init ? `${c.name} (init)` : c.name)));
    picker.value = container;
    pickerWrap.hidden = containers.length < 2;
  }

  async function reload() {
    stop();
    loaded = true;
    const node = getNode();
    const controller = new AbortController();
    const mine = { controller, watchdog: setInterval(() => { if (!el.isConnected) stop(); }, 2000) };
    reading = mine;
    mount(message);
    status.textContent = 'Loading…';
    refreshBtn.disabled = true;
    try {
      if (containers === null) {
        containers = await loadContainers(node);
        if (!container && containers.length) container = containers[0].name;
        drawPicker();
      }
      if (reading !== mine) return;
      await read(node, mine);
    } catch (err) {
      if (reading !== mine || controller.signal.aborted) return;
      entries = [];
      mount(output);
      mount(message, h('div', { class: 'notice notice-warning', role: 'alert', 'data-testid': 'logs-error' }, err.message || String(err)));
      status.textContent = '';
    } finally {
      if (reading === mine) {
        refreshBtn.disabled = false;
        stop();
      }
    }
  }

  async function read(node, mine) {
    const app = getApp();
    const url = appApi(app.metadata.namespace, app.metadata.name, `/pods/${encodeURIComponent(node.name)}/logs`, {
      namespace: node.namespace || '', container, tailLines: TAIL_LINES, follow: follow ? 'true' : '',
    });
    const response = await fetch(url, { credentials: 'same-origin', signal: mine.controller.signal });
    if (!response.ok) throw new Error(await failure(response));
    entries = [];
    drawLines();
    status.textContent = follow ? 'Following…' : '';
    refreshBtn.disabled = false;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let pending = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (reading !== mine) return;
      pending += decoder.decode(value || new Uint8Array(), { stream: !done });
      const lines = pending.split('\n');
      pending = done ? '' : lines.pop();
      const added = lines.map(parseLine).filter(Boolean);
      if (added.length) {
        entries.push(...added);
        if (entries.length > MAX_LINES) entries = entries.slice(-MAX_LINES);
        drawLines();
      }
      if (done) break;
    }
    if (!entries.length) mount(output, h('span', { class: 'pod-logs-empty' }, 'No log lines.'));
    status.textContent = `${entries.length} line${entries.length === 1 ? '' : 's'}${follow ? ' · stream ended' : ''}`;
  }

  function drawLines() {
    const atBottom = output.scrollHeight - output.scrollTop - output.clientHeight < 40 || !output.textContent;
    if (!entries.length) {
      mount(output);
    } else {
      mount(output, entries.map((e) => [timestamps && e.timeStamp ? h('span', { class: 'pod-logs-time' }, `${e.timeStamp} `) : null, e.content, '\n']));
    }
    if (atBottom) output.scrollTop = output.scrollHeight;
  }

  // The tab is (again) on screen: load the first time, and go on following if that was on.
  function show() {
    if (!loaded || (follow && !reading)) reload();
  }

  return { el, show, stop };
}

// One line of the NDJSON log stream as {content, timeStamp}; null for the closing `last` line.
function parseLine(line) {
  if (!line.trim()) return null;
  let result;
  try { result = JSON.parse(line).result; } catch { return { content: line, timeStamp: '' }; }
  if (!result || result.last) return null;
  return { content: result.content || '', timeStamp: result.timeStamp || result.timeStampStr || '' };
}

// The message for a refused log request (Argo CD's error body {error, code, message} when there is one).
async function failure(response) {
  let detail = '';
  try {
    const text = await response.text();
    try { const data = JSON.parse(text); detail = (data && (data.message || data.error)) || ''; } catch { detail = text.slice(0, 300); }
  } catch { /* no body */ }
  if (response.status === 401) {
    navigate(`/login?return=${encodeURIComponent(location.pathname + location.search)}`);
    return 'The session ended: log in again.';
  }
  if (response.status === 403) return `You may not read the logs of this pod (needs the "logs, get" permission on the application).${detail ? ` ${detail}` : ''}`;
  if (response.status === 404) return detail ? `Logs are not available: ${detail}` : 'Logs are not available.';
  return `Could not load the logs (${response.status}): ${detail || response.statusText}`;
}

function eventTime(event) {
  return event.lastTimestamp || event.eventTime || event.firstTimestamp || (event.metadata && event.metadata.creationTimestamp) || '';
}
