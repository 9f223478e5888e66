// The Application page's dialogs: Sync (options and the resources to sync) and Delete (typed name).
import { api, dialog, h, toast } from './core.js';
import { appApi, primarySource } from './appcommon.js';

function check(testid, label, hint, checked = false) {
  const input = h('input', { type: 'checkbox', 'data-testid': testid, checked });
  return { input, el: h('label', { class: 'check' }, input, h('span', {}, label, hint ? h('span', { class: 'hint' }, hint) : null)) };
}

const resourceLabel = (r) => `${r.kind}${r.namespace ? ` ${r.namespace}/` : ' '}${r.name}`;

// Opens the Sync dialog; posts the sync when confirmed. Resolves true when a sync was started.
export async function syncDialog(app) {
  const source = primarySource(app);
  const revision = h('input', { class: 'input', id: 'sync-revision', type: 'text', value: source.targetRevision || 'HEAD', 'data-testid': 'sync-revision' });
  const prune = check('sync-prune', 'Prune', 'Delete resources that are no longer in Git.');
  const dryRun = check('sync-dry-run', 'Dry run', 'Validate against the cluster without changing anything.');
  const applyOnly = check('sync-apply-only', 'Apply only', 'Skip hooks: apply the manifests (strategy "apply").');
  const force = check('sync-force', 'Force', 'Replace resources that cannot be patched (delete and re-create).');
  const options = [
    ['ServerSideApply=true', 'Server-side apply'], ['ApplyOutOfSyncOnly=true', 'Apply out-of-sync only'],
    ['PruneLast=true', 'Prune last'], ['Replace=true', 'Replace'], ['CreateNamespace=true', 'Create namespace'],
  ].map(([item, label]) => {
    const input = h('input', { type: 'checkbox', 'data-testid': 'sync-option', 'data-option': item });
    return { item, input, el: h('label', { class: 'check' }, input, h('span', {}, label)) };
  });
  const resources = ((app.status && app.status.resources) || []).filter((r) => !r.hook);
  const boxes = resources.map((r) => {
    const input = h('input', { type: 'checkbox', checked: true, 'data-testid': 'sync-resource', 'data-kind': r.kind, 'data-name': r.name });
    return { r, input, el: h('label', { class: 'check' }, input, h('span', { class: 'ellipsis' }, resourceLabel(r)),
      r.status && r.status !== 'Synced' ? h('span', { class: `badge status-${r.status.toLowerCase()}`, style: { marginLeft: 'auto' } }, r.status) : null,
      r.requiresPruning ? h('span', { class: 'tag', style: { marginLeft: '4px' } }, 'prune') : null) };
  });
  const toggleAll = (value) => boxes.forEach((b) => { b.input.checked = value; });
  const outOfSync = () => boxes.forEach((b) => { b.input.checked = Boolean(b.r.status && b.r.status !== 'Synced'); });
  const content = h('div', {},
    h('div', { class: 'field' }, h('label', { for: 'sync-revision' }, 'Revision'), revision,
      h('span', { class: 'hint' }, 'A branch, tag or commit; the application\'s target revision by default.')),
    h('div', { class: 'field' }, h('span', { class: 'label' }, 'Options'), prune.el, dryRun.el, applyOnly.el, force.el),
    h('div', { class: 'field' }, h('span', { class: 'label' }, 'Sync options'),
      h('div', { class: 'option-grid' }, options.map((o) => o.el))),
    boxes.length ? h('div', { class: 'field' },
      h('div', { class: 'row' }, h('span', { class: 'label' }, `Resources (${boxes.length})`), h('span', { class: 'spacer' }),
        h('button', { class: 'btn btn-ghost btn-sm', type: 'button', onclick: () => toggleAll(true) }, 'All'),
        h('button', { class: 'btn btn-ghost btn-sm', type: 'button', onclick: outOfSync }, 'Out of sync'),
        h('button', { class: 'btn btn-ghost btn-sm', type: 'button', onclick: () => toggleAll(false) }, 'None')),
      h('div', { class: 'sync-resources' }, boxes.map((b) => b.el))) : null);
  const pending = dialog(`Sync ${app.metadata.name}`, content, [
    { label: 'Cancel', value: false, testid: 'dialog-cancel' },
    { label: 'Synchronize', kind: 'primary', value: true, testid: 'dialog-confirm' },
  ]);
  content.closest('.modal').classList.add('wide');
  const value = await pending;
  if (value !== true) return false;
  const chosen = boxes.filter((b) => b.input.checked);
  if (boxes.length && !chosen.length) { toast('Nothing to sync: no resource selected', 'warning'); return false; }
  const strategy = applyOnly.input.checked ? { apply: { force: force.input.checked } } : { hook: { force: force.input.checked } };
  const body = { revision: revision.value.trim(), prune: prune.input.checked, dryRun: dryRun.input.checked, strategy };
  const items = options.filter((o) => o.input.checked).map((o) => o.item);
  if (items.length) body.syncOptions = { items };
  if (chosen.length && chosen.length < boxes.length) {
    body.resources = chosen.map(({ r }) => ({ group: r.group || '', kind: r.kind, name: r.name, namespace: r.namespace || '' }));
  }
  try {
    await api(appApi(app.metadata.namespace, app.metadata.name, '/sync'), { method: 'POST', body });
    toast(dryRun.input.checked ? 'Dry-run sync started' : 'Sync started', 'success');
    return true;
  } catch (err) {
    toast(`Sync failed: ${err.message || err}`, 'error');
    return false;
  }
}

// Opens the Delete dialog; the confirm button stays disabled until the name is typed. Resolves true once deleted.
export async function deleteDialog(app) {
  const name = app.metadata.name;
  const typed = h('input', { class: 'input', id: 'delete-name', type: 'text', autocomplete: 'off', 'data-testid': 'delete-name' });
  const options = [
    ['foreground', 'Foreground', 'Delete the resources first, then the Application.'],
    ['background', 'Background', 'Delete the Application now; the resources are deleted after it.'],
    ['non-cascading', 'Non-cascading', 'Delete only the Application; keep its resources running.'],
  ];
  const radios = options.map(([value, label, hint], i) => {
    const input = h('input', { type: 'radio', name: 'delete-cascade', value, checked: i === 0, 'data-testid': `delete-${value}` });
    return { input, el: h('label', { class: 'check' }, input, h('span', {}, label, h('span', { class: 'hint' }, hint))) };
  });
  const content = h('div', {},
    h('div', { class: 'notice notice-danger', style: { marginBottom: '14px' } },
      h('span', {}, 'This deletes the Application ', h('strong', {}, name), '. It cannot be undone.')),
    h('div', { class: 'field' }, h('span', { class: 'label' }, 'Propagation'), radios.map((r) => r.el)),
    h('div', { class: 'field' }, h('label', { for: 'delete-name' }, `Type "${name}" to confirm`), typed));
  const pending = dialog(`Delete ${name}?`, content, [
    { label: 'Cancel', value: false, testid: 'dialog-cancel' },
    { label: 'Delete', kind: 'danger', value: true, testid: 'dialog-confirm' },
  ]);
  const confirmBtn = content.closest('.modal').querySelector('[data-testid="dialog-confirm"]');
  confirmBtn.disabled = true;
  typed.addEventListener('input', () => { confirmBtn.disabled = typed.value !== name; });
  typed.addEventListener('keydown', (event) => { if (event.key === 'Enter' && typed.value === name) confirmBtn.click(); });
  typed.focus();
  if ((await pending) !== true || typed.value !== name) return false;
  const mode = radios.find((r) => r.input.checked).input.value;
  const params = mode === 'non-cascading' ? { cascade: 'false' } : { cascade: 'true', propagationPolicy: mode };
  try {
    await api(appApi(app.metadata.namespace, name, '', params), { method: 'DELETE' });
    toast(`Application ${name} is being deleted`, 'success');
    return true;
  } catch (err) {
    toast(`Delete failed: ${err.message || err}`, 'error');
    return false;
  }
}
