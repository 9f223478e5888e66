// The Application page: header with status and actions (Sync, Refresh, Delete), then tabs for the
// resource tree, the diff against Git, the deployment history, events and conditions. The app and its
// tree stay live through the application streams (or polling when they are not available); updates
// redraw the header and the current tab and keep the open tab and side panel.
import { act, api, badge, confirm, h, link, mount, navigate, repeat, route, shortSha, stream, throttle, timeAgo } from './core.js';
import { appApi, destinationText, isAutomated, primarySource, sourceCount } from './appcommon.js';
import { eventsTable, findItem, nodeKey, renderTree, resourcePanel } from './apptree.js';
import { deleteDialog, syncDialog } from './appdialogs.js';

const TABS = [
  ['tree', 'Tree'], ['diff', 'Diff'], ['history', 'History'], ['events', 'Events'], ['conditions', 'Conditions'],
];
const POLL_MS = 5000;
const revisionMeta = new Map(); // "<ns>/<app>@<rev>" -> Promise<metadata|null>

// ------------------------------------------------------------------------------------- header

function metaItem(label, ...value) {
  return h('div', { class: 'meta' }, h('span', { class: 'k' }, label), h('span', { class: 'v' }, ...value));
}

function repoLink(url) {
  if (/^https?:\/\//.test(url || '')) return h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', title: url }, url.replace(/^https?:\/\//, ''));
  return h('span', { title: url || '' }, (url || '—').replace(/^file:\/\//, ''));
}

function syncPolicyText(app) {
  const automated = app.spec && app.spec.syncPolicy && app.spec.syncPolicy.automated;
  if (!automated) return h('span', { class: 'tag', 'data-testid': 'auto-sync', 'data-auto': 'false' }, 'Manual sync');
  const extras = [automated.prune && 'prune', automated.selfHeal && 'self-heal'].filter(Boolean);
  return h('span', { class: 'tag tag-primary', 'data-testid': 'auto-sync', 'data-auto': 'true', title: 'Automated sync is enabled' },
    `Auto-sync${extras.length ? ` (${extras.join(', ')})` : ''}`);
}

function revisionArrow(app) {
  const source = primarySource(app);
  const synced = app.status && app.status.sync && app.status.sync.revision;
  return [h('span', {}, source.targetRevision || 'HEAD'),
    synced ? [h('span', { class: 'muted' }, ' → '), h('span', { class: 'sha', title: synced, 'data-testid': 'synced-revision' }, shortSha(synced))] : null];
}

function operationPanel(app, onTerminate) {
  const op = app.status && app.status.operationState;
  if (!op) return h('div', { class: 'status-panel' }, h('div', { class: 'k' }, 'Last sync'), h('span', { class: 'muted' }, 'No operation yet'));
  const initiated = op.operation && op.operation.initiatedBy;
  const who = initiated ? (initiated.automated ? 'automated sync' : initiated.username || '') : '';
  const revision = op.syncResult && op.syncResult.revision;
  const running = op.phase === 'Running' || op.phase === 'Terminating';
  return h('div', { class: 'status-panel', 'data-testid': 'operation-state' },
    h('div', { class: 'k' }, running ? 'Operation' : 'Last sync'),
    h('div', { class: 'row' }, badge('phase', op.phase, { testid: 'operation-status' }),
      revision ? h('span', { class: 'sha', title: revision }, shortSha(revision)) : null,
      h('span', { class: 'muted small' }, op.finishedAt ? timeAgo(op.finishedAt) : op.startedAt ? `started ${timeAgo(op.startedAt)}` : ''),
      running && op.phase === 'Running' ? h('button', { class: 'btn btn-ghost btn-sm', type: 'button', 'data-testid': 'app-terminate', onclick: onTerminate }, 'Terminate') : null),
    op.message ? h('div', { class: 'msg', 'data-testid': 'operation-message' }, op.message) : null,
    who ? h('div', { class: 'msg' }, `Initiated by ${who}`) : null);
}

function header(app, { buttons, operation }) {
  const source = primarySource(app);
  const health = (app.status && app.status.health) || {};
  const sync = (app.status && app.status.sync) || {};
  const extraSources = sourceCount(app) - 1;
  const images = (app.status && app.status.summary && app.status.summary.images) || [];
  return h('section', { class: 'card app-header', 'data-testid': 'app-header', 'aria-label': 'Application summary' },
    h('div', { class: 'app-header-top' },
      h('h1', {}, app.metadata.name),
      badge('health', health.status), badge('sync', sync.status), syncPolicyText(app),
      h('div', { class: 'app-header-actions' }, buttons)),
    h('div', { class: 'app-header-grid' },
      metaItem('Project', app.spec && app.spec.project || 'default'),
      metaItem('Repository', repoLink(source.repoURL), extraSources > 0 ? h('span', { class: 'muted' }, ` +${extraSources} more`) : null),
      metaItem(source.chart ? 'Chart' : 'Path', source.chart || source.path || '.'),
      metaItem('Target → synced revision', ...revisionArrow(app)),
      metaItem('Destination', destinationText(app)),
      metaItem('Last refreshed', app.status && app.status.reconciledAt ? timeAgo(app.status.reconciledAt) : '—'),
      images.length ? h('div', { class: 'meta', style: { gridColumn: '1 / -1' } }, h('span', { class: 'k' }, 'Images'),
        h('span', { class: 'v', title: images.join('\n') }, images.join(', '))) : null),
    h('div', { class: 'status-panels' },
      h('div', { class: 'status-panel' }, h('div', { class: 'k' }, 'App health'), badge('health', health.status, { testid: 'app-health' }),
        health.message ? h('div', { class: 'msg' }, health.message) : null),
      h('div', { class: 'status-panel' }, h('div', { class: 'k' }, 'Sync status'),
        h('div', { class: 'row' }, badge('sync', sync.status, { testid: 'app-sync-status' }),
          sync.revision ? h('span', { class: 'muted small' }, 'to ', h('span', { class: 'sha', title: sync.revision }, shortSha(sync.revision))) : null)),
      operation));
}

// ---------------------------------------------------------------------------------------- tabs

function diffLines(text) {
  return (text || '').replace(/\n$/, '').split('\n').map((line) => {
    let cls = 'ctx';
    if (line.startsWith('+++') || line.startsWith('---')) cls = 'meta';
    else if (line.startsWith('@@')) cls = 'hunk';
    else if (line.startsWith('+')) cls = 'add';
    else if (line.startsWith('-')) cls = 'del';
    return h('div', { class: `diff-line ${cls}` }, line || ' ');
  });
}

function renderDiff(items) {
  const modified = items.filter((r) => r.modified);
  if (!modified.length) {
    return h('div', { class: 'empty', 'data-testid': 'diff-view', 'data-modified': '0' },
      h('h2', {}, 'No differences'), h('p', {}, 'The live resources match the manifests in Git.'));
  }
  return h('div', { class: 'diff-list', 'data-testid': 'diff-view', 'data-modified': String(modified.length) },
    modified.map((r) => {
      const missing = !r.liveState || r.liveState === 'null';
      const extra = !r.targetState || r.targetState === 'null';
      return h('section', { class: 'card diff-file', 'data-testid': 'diff-file', 'data-kind': r.kind, 'data-name': r.name },
        h('div', { class: 'card-header' }, h('span', { class: 'name' }, `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`),
          missing ? h('span', { class: 'tag' }, 'missing in cluster') : null,
          extra ? h('span', { class: 'tag' }, 'not in Git (prune)') : null),
        r.diff ? h('div', { class: 'diff-view', role: 'region', 'aria-label': `Diff of ${r.kind} ${r.name}` }, diffLines(r.diff))
          : h('div', { class: 'empty-inline' }, missing ? 'The resource does not exist in the cluster yet.' : 'Modified (no textual diff available).'));
    }));
}

function historyRows(app, { onRollback, metaFor }) {
  const history = [...((app.status && app.status.history) || [])].sort((a, b) => (b.id || 0) - (a.id || 0));
  if (!history.length) return h('div', { class: 'empty', 'data-testid': 'history-empty' }, h('h2', {}, 'No history yet'), h('p', {}, 'Each successful sync adds an entry here.'));
  const automated = isAutomated(app);
  const reason = 'Rollback is not possible while automated sync is enabled: it would sync back to Git at once. Disable auto-sync first.';
  return h('div', {},
    automated ? h('div', { class: 'notice notice-info', style: { marginBottom: '12px' }, 'data-testid': 'rollback-disabled-reason' }, reason) : null,
    h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-testid': 'history-table' },
      h('thead', {}, h('tr', {}, ['ID', 'Revision', 'Commit', 'Deployed', 'Initiated by', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, history.map((entry, index) => {
        const revision = entry.revision || (entry.revisions && entry.revisions[0]) || '';
        const message = h('span', { class: 'commit-msg', 'data-testid': 'commit-message' }, '');
        metaFor(revision).then((meta) => {
          if (meta) {
            message.textContent = (meta.message || '').split('\n')[0];
            message.title = `${meta.message || ''}${meta.author ? `\n— ${meta.author}` : ''}`;
          }
        });
        const by = entry.initiatedBy ? (entry.initiatedBy.automated ? 'automated' : entry.initiatedBy.username || '') : '';
        return h('tr', { 'data-testid': 'history-row', 'data-id': String(entry.id) },
          h('td', { class: 'num' }, String(entry.id)),
          h('td', { class: 'nowrap' }, h('span', { class: 'sha', title: revision }, shortSha(revision) || '—'),
            index === 0 ? h('span', { class: 'tag tag-primary', style: { marginLeft: '6px' } }, 'current') : null),
          h('td', {}, message),
          h('td', { class: 'nowrap', title: entry.deployedAt ? new Date(entry.deployedAt).toLocaleString() : '' }, entry.deployedAt ? timeAgo(entry.deployedAt) : '—'),
          h('td', {}, by),
          h('td', { class: 'num' }, h('button', {
            class: 'btn btn-secondary btn-sm', type: 'button', 'data-testid': 'rollback-button', disabled: automated,
            title: automated ? reason : `Roll back to ${shortSha(revision)}`, onclick: (event) => onRollback(entry, event.currentTarget),
          }, 'Rollback')));
      })))));
}

function severity(type) {
  if (/Error$/.test(type)) return 'error';
  if (/Warning$/.test(type)) return 'warning';
  return 'info';
}

function conditionList(app) {
  const conditions = (app.status && app.status.conditions) || [];
  if (!conditions.length) return h('div', { class: 'empty', 'data-testid': 'conditions-empty' }, h('h2', {}, 'No conditions'), h('p', {}, 'Errors and warnings about this application show up here.'));
  return h('div', { class: 'conditions' }, conditions.map((c) => {
    const revert = c.type === 'RevertOnAbort';
    const sev = revert ? 'warning' : severity(c.type || '');
    return h('div', { class: ['condition', `sev-${sev}`, revert && 'revert'], 'data-testid': 'condition-row', 'data-type': c.type || '' },
      h('span', { class: 'ctype' }, revert ? '↶ ' : sev === 'error' ? '⚠ ' : '', c.type || 'Condition',
        revert ? h('span', { class: 'tag', style: { marginLeft: '8px' } }, 'git revert') : null),
      h('span', {}),
      h('span', { class: 'muted small', title: c.lastTransitionTime || '' }, c.lastTransitionTime ? timeAgo(c.lastTransitionTime) : ''),
      h('div', { class: 'cmsg' }, c.message || ''));
  }));
}

function notAvailable(err, what) {
  return h('div', { class: 'notice notice-warning' }, err && err.status === 404 ? `${what} not available.` : `Could not load ${what.toLowerCase()}: ${(err && err.message) || err}`);
}

// ---------------------------------------------------------------------------------------- page

function renderApplication(params, query, outlet) {
  const { namespace, name } = params;
  let app = null;
  let tree = null;
  let treeRoot = null;
  let tab = TABS.some(([id]) => id === query.get('tab')) ? query.get('tab') : 'tree';
  let panel = null;
  let closed = false;
  let deleted = false;
  const cleanups = [];
  const tabData = { diff: null, events: null }; // last loaded answers (kept while reloading)

  const headerSlot = h('div', {}, h('div', { class: 'loading' }, 'Loading application…'));
  const notice = h('div', {});
  const tabBar = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Application views' });
  const tabBody = h('div', { role: 'tabpanel', id: 'app-tabpanel' });
  const panelSlot = h('div', {});
  mount(outlet,
    h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumb' }, link('/applications', {}, 'Applications'), h('span', {}, '/'), h('span', {}, name)),
    notice, headerSlot, tabBar, tabBody, panelSlot);

  const syncBtn = h('button', { class: 'btn btn-primary', type: 'button', 'data-testid': 'app-sync', onclick: onSync }, '⟳ Sync');
  const refreshBtn = h('button', { class: 'btn btn-secondary', type: 'button', 'data-testid': 'app-refresh', title: 'Compare with Git now (shift-click: hard refresh, no cache)', onclick: onRefresh }, '↻ Refresh');
  const deleteBtn = h('button', { class: 'btn btn-danger-outline', type: 'button', 'data-testid': 'app-delete', onclick: onDelete }, 'Delete');

  async function onSync() {
    if (app && await syncDialog(app)) reloadApp();
  }

  async function onRefresh(event) {
    const mode = event.shiftKey ? 'hard' : 'normal';
    await act(refreshBtn, mode === 'hard' ? 'Hard refresh' : 'Refresh', async () => {
      app = await api(appApi(namespace, name, '', { refresh: mode }));
      draw();
    });
  }

  async function onDelete() {
    if (app && await deleteDialog(app)) navigate('/applications');
  }

  async function onTerminate(event) {
    const button = event.currentTarget;
    if (!await confirm('Terminate the operation?', 'The running sync stops where it is; resources already applied stay applied.', { label: 'Terminate', danger: true })) return;
    await act(button, 'Terminate', () => api(appApi(namespace, name, '/operation'), { method: 'DELETE' }));
  }

  async function onRollback(entry, button) {
    const revision = entry.revision || (entry.revisions && entry.revisions[0]) || '';
    const ok = await confirm(`Roll back ${name}?`, `Sync the application to history entry ${entry.id} (revision ${shortSha(revision)}). Git is not changed; the application will be OutOfSync until Git matches.`, { label: 'Rollback', danger: true });
    if (!ok) return;
    await act(button, 'Rollback', () => api(appApi(namespace, name, '/rollback'), { method: 'POST', body: { id: entry.id } }));
    reloadApp();
  }

  function metaFor(revision) {
    if (!revision) return Promise.resolve(null);
    const key = `${namespace}/${name}@${revision}`;
    if (!revisionMeta.has(key)) {
      revisionMeta.set(key, api(appApi(namespace, name, `/revisions/${encodeURIComponent(revision)}/metadata`)).catch(() => null));
    }
    return revisionMeta.get(key);
  }

  // ---- drawing
  // Live redraws replace the header and the tab bar: keyboard focus on them is put back afterwards.
  function draw() {
    if (closed || !app) return;
    document.title = `${name} · Tugboat`;
    const active = document.activeElement;
    const activeTab = active && tabBar.contains(active) ? active.id : '';
    mount(headerSlot, header(app, { buttons: [syncBtn, refreshBtn, deleteBtn], operation: operationPanel(app, onTerminate) }));
    drawTabs();
    drawTab(false);
    if ([syncBtn, refreshBtn, deleteBtn].includes(active) && document.activeElement !== active) active.focus();
    if (activeTab) tabBar.querySelector(`#${activeTab}`)?.focus();
  }

  function drawTabs() {
    const conditions = (app.status && app.status.conditions) || [];
    const errors = conditions.some((c) => /Error$/.test(c.type || '') || c.type === 'RevertOnAbort');
    const counts = {
      diff: ((app.status && app.status.resources) || []).filter((r) => r.status && r.status !== 'Synced').length,
      history: ((app.status && app.status.history) || []).length,
      conditions: conditions.length,
    };
    mount(tabBar, TABS.map(([id, label]) => h('button', {
      class: 'tab', role: 'tab', type: 'button', id: `tab-${id}`, 'aria-selected': String(tab === id), 'aria-controls': 'app-tabpanel',
      tabindex: tab === id ? '0' : '-1', 'data-testid': `tab-${id}`,
      onclick: () => selectTab(id),
      onkeydown: onTabKey,
    }, label, counts[id] ? h('span', { class: ['count', id === 'conditions' && errors && 'alert', id === 'diff' && 'alert'] }, String(counts[id])) : null)));
    tabBody.setAttribute('aria-labelledby', `tab-${tab}`);
  }

  function onTabKey(event) {
    const i = TABS.findIndex(([id]) => id === tab);
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
    if (!step) return;
    selectTab(TABS[(i + step + TABS.length) % TABS.length][0]);
    tabBar.querySelector(`#tab-${tab}`).focus();
  }

  function selectTab(id) {
    tab = id;
    const q = new URLSearchParams(location.search);
    if (id === 'tree') q.delete('tab'); else q.set('tab', id);
    history.replaceState(null, '', `${location.pathname}${q.toString() ? `?${q}` : ''}`);
    drawTabs();
    drawTab(true);
  }

  // `fresh`: the user switched tabs (show a loading state); otherwise it is a live redraw.
  function drawTab(fresh) {
    if (tab === 'tree') drawTree();
    else if (!needsReload(tab) && !fresh) return;
    else if (tab === 'diff') loadInto('diff', fresh, () => api(appApi(namespace, name, '/managed-resources')), (data) => renderDiff((data && data.items) || []), 'The diff is');
    else if (tab === 'history') mount(tabBody, historyRows(app, { onRollback, metaFor }));
    else if (tab === 'events') loadInto('events', fresh, () => api(appApi(namespace, name, '/events')), (data) => eventsTable((data && data.items) || []), 'Events are');
    else mount(tabBody, conditionList(app));
  }

  // Live redraws refetch the diff only when the sync state changed, and events at most every few seconds.
  const lastLoad = { diff: { sig: '', at: 0 }, events: { sig: '', at: 0 } };
  function needsReload(which) {
    if (which !== 'diff' && which !== 'events') return true;
    const sig = which === 'diff' ? JSON.stringify([app.status && app.status.sync, app.status && app.status.resources]) : '';
    const last = lastLoad[which];
    if (which === 'diff' ? sig === last.sig : Date.now() - last.at < POLL_MS) return false;
    last.sig = sig;
    last.at = Date.now();
    return true;
  }

  let loadSeq = 0;
  async function loadInto(which, fresh, fetcher, render, what) {
    const seq = ++loadSeq;
    if (fresh || !tabData[which]) mount(tabBody, tabData[which] ? render(tabData[which]) : h('div', { class: 'loading' }, 'Loading…'));
    try {
      const data = await fetcher();
      if (closed || seq !== loadSeq || tab !== which) return;
      tabData[which] = data;
      mount(tabBody, render(data));
    } catch (err) {
      if (closed || seq !== loadSeq || tab !== which) return;
      mount(tabBody, notAvailable(err, what.replace(/ (is|are)$/, '')));
    }
  }

  function drawTree() {
    if (!tabBody.querySelector('.tree-wrap')) mount(tabBody);
    const focused = tabBody.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    treeRoot = renderTree(tabBody, app, tree, { selectedKey: panel && panel.key, onSelect: openPanel });
    const refocus = focused && [...tabBody.querySelectorAll('.tree-node')].find((el) => el.dataset.key === focused);
    if (refocus) refocus.focus();
    if (panel) {
      const item = findItem(treeRoot, panel.key);
      if (item) panel.update(item);
    }
  }

  function openPanel(item) {
    const key = nodeKey(item.node);
    if (panel && panel.key === key) return;
    panel = resourcePanel(() => app, item, { onClose: closePanel });
    mount(panelSlot, panel.el);
    for (const el of tabBody.querySelectorAll('.tree-node')) el.classList.toggle('selected', el.dataset.key === key);
  }

  function closePanel() {
    const key = panel && panel.key;
    panel = null;
    mount(panelSlot);
    for (const el of tabBody.querySelectorAll('.tree-node.selected')) el.classList.remove('selected');
    const node = key && [...tabBody.querySelectorAll('.tree-node')].find((el) => el.dataset.key === key);
    if (node) node.focus();
  }

  const onKey = (event) => { if (event.key === 'Escape' && panel && !document.querySelector('.modal-backdrop')) closePanel(); };
  document.addEventListener('keydown', onKey);
  cleanups.push(() => document.removeEventListener('keydown', onKey));

  // ---- data and live updates
  async function reloadApp() {
    try {
      app = await api(appApi(namespace, name));
      redraw();
    } catch (err) {
      if (err.status === 404) markDeleted();
    }
  }

  async function reloadTree() {
    try {
      tree = await api(appApi(namespace, name, '/resource-tree'));
    } catch {
      tree = null; // drawn from status.resources instead
    }
    if (tab === 'tree') redraw();
  }

  function markDeleted() {
    deleted = true;
    mount(notice, h('div', { class: 'notice notice-danger', role: 'alert', style: { marginBottom: '12px' } },
      'This application has been deleted. ', link('/applications', {}, 'Back to Applications')));
    for (const btn of [syncBtn, refreshBtn, deleteBtn]) btn.disabled = true;
  }

  const redraw = throttle(() => { if (!closed) draw(); }, 300);

  // A stream that falls back to polling `poll` (an async function: one call at a time) after repeated
  // errors or when it never opens.
  function live(path, onData, poll) {
    let errors = 0;
    let opened = false;
    let timer = null;
    let stopPolling = null;
    const fallback = () => {
      if (stopPolling || closed) return;
      close();
      stopPolling = repeat(poll, POLL_MS);
    };
    const close = stream(path, onData, (state) => {
      if (state === 'open') { if (opened && errors) poll(); opened = true; errors = 0; clearTimeout(timer); timer = null; return; }
      errors += 1;
      if (errors >= 3) fallback();
      else if (!timer) timer = setTimeout(() => { timer = null; if (errors) fallback(); }, 8000);
    });
    cleanups.push(() => { close(); clearTimeout(timer); if (stopPolling) stopPolling(); });
  }

  (async () => {
    try {
      app = await api(appApi(namespace, name));
    } catch (err) {
      if (closed) return;
      mount(headerSlot, err.status === 404
        ? h('div', { class: 'empty' }, h('h2', {}, `Application "${name}" not found`), h('p', {}, `There is no Application ${name} in namespace ${namespace}.`), link('/applications', { class: 'btn btn-secondary' }, 'Back to Applications'))
        : h('div', { class: 'error-panel', role: 'alert' }, h('strong', {}, 'Could not load the application'), h('p', {}, String(err.message || err))));
      return;
    }
    if (closed) return;
    draw();
    reloadTree();
    const q = new URLSearchParams({ name, appNamespace: namespace });
    live(`/api/v1/stream/applications?${q}`, (data) => {
      const result = data && data.result;
      if (!result || !result.application || result.application.metadata.name !== name) return;
      if (result.type === 'DELETED') { markDeleted(); return; }
      app = result.application;
      redraw();
    }, () => (deleted ? null : reloadApp()));
    live(`/api/v1/stream/applications/${encodeURIComponent(name)}/resource-tree?${new URLSearchParams({ appNamespace: namespace })}`, (data) => {
      if (!data || !data.result) return;
      tree = data.result;
      if (tab === 'tree') redraw();
    }, () => (deleted ? null : reloadTree()));
  })();

  return () => {
    closed = true;
    for (const fn of cleanups) fn();
  };
}

route('/applications/:namespace/:name', renderApplication, { title: 'Application' });
