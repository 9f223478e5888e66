// The Rollout page (/rollouts/:namespace/:name): the Argo Rollouts dashboard for one Rollout, live.
// Header (status, images, the managing Application and its Git-revert state) with the actions; the
// canary's steps and traffic weights or the blue-green services; each revision's ReplicaSet with its pods;
// the analysis runs with their measurements. Fed by the info watch stream, polling when that fails.
// Fields other parts add to RolloutInfo (pods, analysisRuns, application) are optional here.

import { act, api, badge, confirm, h, link, mount, repeat, route, timeAgo } from './core.js';

const POLL_MS = 2000;
const RUNS_SHOWN = 5; // newest analysis runs shown before 'show older'

// ------------------------------------------------------------------------------------- small helpers

const ICONS = {
  weight: '<svg viewBox="0 0 16 16" aria-hidden="true"><path d="M2 13h12M4 13V8M8 13V4M12 13V6" stroke="currentColor" stroke-width="1.8" fill="none" stroke-linecap="round"/></svg>',
  pause: '<svg viewBox="0 0 16 16" aria-hidden="true"><path d="M5.5 3.5v9M10.5 3.5v9" stroke="currentColor" stroke-width="2.2" fill="none" stroke-linecap="round"/></svg>',
  analysis: '<svg viewBox="0 0 16 16" aria-hidden="true"><path d="M2 12l3.5-4 3 2.5L14 4" stroke="currentColor" stroke-width="1.8" fill="none" stroke-linecap="round" stroke-linejoin="round"/></svg>',
  experiment: '<svg viewBox="0 0 16 16" aria-hidden="true"><path d="M6 2h4M7 2v4.5L3 13.2c-.3.6.1 1.3.8 1.3h8.4c.7 0 1.1-.7.8-1.3L9 6.5V2" stroke="currentColor" stroke-width="1.5" fill="none" stroke-linejoin="round"/></svg>',
  scale: '<svg viewBox="0 0 16 16" aria-hidden="true"><rect x="2" y="2" width="5" height="5" rx="1" fill="currentColor"/><rect x="9" y="2" width="5" height="5" rx="1" fill="currentColor" opacity=".5"/><rect x="2" y="9" width="5" height="5" rx="1" fill="currentColor" opacity=".5"/><rect x="9" y="9" width="5" height="5" rx="1" fill="currentColor" opacity=".25"/></svg>',
  route: '<svg viewBox="0 0 16 16" aria-hidden="true"><path d="M3 13V9a3 3 0 0 1 3-3h7M10 3l3 3-3 3" stroke="currentColor" stroke-width="1.7" fill="none" stroke-linecap="round" stroke-linejoin="round"/></svg>',
  other: '<svg viewBox="0 0 16 16" aria-hidden="true"><circle cx="8" cy="8" r="3" fill="currentColor"/></svg>',
};

function icon(name, extra = '') {
  return h('span', { class: `ro-icon ${extra}`, html: ICONS[name] || ICONS.other });
}

function keyOf(...parts) {
  try { return JSON.stringify(parts); } catch { return String(Math.random()); }
}

// A region of the page that redraws only when its slice of the info changed (stream events often repeat
// the state, and redrawing would close what the user opened or move what they are about to click).
function region(className, slice, draw) {
  const el = h('div', { class: className });
  let last = null;
  return {
    el,
    update(info, ...extra) {
      const key = keyOf(slice(info), ...extra);
      if (key === last) return;
      last = key;
      mount(el, draw(info, ...extra));
    },
  };
}

function chip(text, kind = '', props = {}) {
  return h('span', { ...props, class: `ro-chip ${kind ? `ro-chip-${kind}` : ''}` }, text);
}

function isAborted(info) {
  return info.status === 'Degraded' && /abort/i.test(info.message || '');
}

function currentStep(info) {
  if (Number.isInteger(info.currentStepIndex)) return info.currentStepIndex;
  const match = /^(\d+)\/(\d+)$/.exec(info.step || '');
  return match ? Number(match[1]) : null;
}

// The canary's share of traffic as shown: the set weight while a canary runs, 0 once fully promoted (the
// new revision is then the stable one) or aborted.
function canaryShare(info) {
  if (info.strategy !== 'Canary') return 0;
  const running = (info.replicaSets || []).some((rs) => rs.canary);
  if (!running && (info.status === 'Healthy' || isAborted(info))) return 0;
  return Math.max(0, Math.min(100, Number(info.setWeight) || 0));
}

// The step an aborted canary failed at: the step index of the newest revision's failed step analysis.
function failedStep(info) {
  const runs = (info.analysisRuns || []).filter((run) => ['Failed', 'Error', 'Inconclusive'].includes(run.status));
  const newest = Math.max(0, ...(info.replicaSets || []).map((rs) => rs.revision || 0));
  for (const run of runs) {
    const meta = run.objectMeta || {};
    const labels = meta.labels || {};
    if (labels['rollout-type'] && labels['rollout-type'] !== 'Step') continue;
    if (run.revision !== undefined && newest && run.revision !== newest) continue;
    const index = Number(labels['step-index'] ?? (/-(\d+)$/.exec(meta.name || '') || [])[1]);
    if (Number.isInteger(index)) return index;
  }
  return null;
}

function uniqueImages(info) {
  return [...new Set((info.containers || []).map((c) => c.image).filter(Boolean))];
}

// The Application that manages the Rollout: RolloutInfo.application when the server sends it, else the
// Argo CD tracking label/annotation (then sync and health are looked up separately).
function trackedApp(info) {
  if (info.application !== undefined) return info.application;
  const meta = info.objectMeta || {};
  const tracking = (meta.annotations || {})['argocd.argoproj.io/tracking-id'];
  let name = tracking ? tracking.split(':')[0] : (meta.labels || {})['app.kubernetes.io/instance'];
  if (!name) return null;
  let namespace = 'argocd';
  if (name.includes('_')) [namespace, name] = name.split('_', 2);
  return { name, namespace, guessed: true };
}

// ---------------------------------------------------------------------------------------- header

function appLink(app, lookup) {
  if (!app) return h('span', { class: 'ro-muted' }, 'Not managed by an Application');
  const found = app.guessed ? lookup(app) : app;
  const href = `/applications/${encodeURIComponent(app.namespace || 'argocd')}/${encodeURIComponent(app.name)}`;
  return h('div', { class: 'ro-app' },
    link(href, { class: 'ro-app-link', 'data-testid': 'rollout-app-link' }, icon('route'), app.name),
    found && found.syncStatus ? badge('sync', found.syncStatus) : null,
    found && found.healthStatus ? badge('health', found.healthStatus) : null);
}

function gitRevert(app) {
  if (!app || app.guessed) return null;
  const state = app.revertOnAbort;
  const title = 'Whether the GitOps controller wrote a revert commit to Git after this rollout aborted '
    + '(the Application\'s tugboat.dev/git-revert-on-abort annotation)';
  if (!state) {
    return h('div', { class: 'ro-revert ro-revert-none', 'data-testid': 'git-revert', 'data-status': 'None', title },
      h('span', { class: 'ro-label' }, 'Git revert on abort'), chip('none', 'muted'));
  }
  const status = state.status || 'Unknown';
  return h('div', { class: `ro-revert ro-revert-${status.toLowerCase()}`, 'data-testid': 'git-revert', 'data-status': status, title },
    h('span', { class: 'ro-label' }, 'Git revert on abort'),
    chip(status, `revert-${status.toLowerCase()}`),
    state.message ? h('span', { class: 'ro-revert-message' }, state.message) : null);
}

// What a pause reason asks of the user (the codes are Argo Rollouts' pause reasons).
const PAUSE_HINTS = {
  CanaryPauseStep: 'Paused at a canary step. Promote to go on to the next step.',
  BlueGreenPause: 'The preview is up. Promote to switch the active service to it.',
  PausedByUser: 'Paused by a user. Resume to go on.',
  InconclusiveAnalysisRun: 'An analysis was inconclusive. Promote to go on, or abort.',
  InconclusiveExperiment: 'An experiment was inconclusive. Promote to go on, or abort.',
};

function messageView(info) {
  if (!info.message) return null;
  const codes = info.message.split(/[,\s]+/).filter(Boolean);
  const hint = info.status === 'Paused' ? codes.map((code) => PAUSE_HINTS[code]).find(Boolean) : null;
  const cls = ['ro-message', `ro-message-${(info.status || 'unknown').toLowerCase()}`];
  if (hint) {
    return h('div', { class: cls, 'data-testid': 'rollout-message' }, h('span', {}, hint), h('code', { class: 'ro-message-code' }, info.message));
  }
  return h('div', { class: cls, 'data-testid': 'rollout-message' },
    h('span', { class: 'ro-message-text' }, info.message),
    isAborted(info) ? h('span', { class: 'ro-message-hint' },
      'Traffic is back on the stable revision; Git still names the new one. Fix it in Git, or Retry.') : null);
}

function stat(label, value, props = {}) {
  return h('div', { ...props, class: 'ro-stat' }, h('div', { class: 'ro-label' }, label), h('div', { class: 'ro-stat-value' }, value));
}

function headerView(info, app, lookup) {
  const meta = info.objectMeta || {};
  const blueGreen = info.strategy === 'BlueGreen';
  const images = uniqueImages(info);
  const ready = info.ready ?? 0;
  const desired = info.desired ?? 0;
  return [
    h('div', { class: 'ro-head-top' },
      h('div', { class: 'ro-head-title' },
        h('div', { class: 'ro-kind' }, 'Rollout'),
        h('h1', { class: 'ro-name' }, meta.name),
        h('div', { class: 'ro-head-chips' },
          chip(meta.namespace, 'ns', { title: 'Namespace' }),
          chip(blueGreen ? 'Blue-green' : (info.strategy || 'unknown'), (info.strategy || 'unknown').toLowerCase()),
          badge('phase', info.status))),
      h('div', { class: 'ro-head-side' }, appLink(app, lookup), gitRevert(app))),
    messageView(info),
    h('div', { class: 'ro-stats' },
      stat('Revision', ((meta.annotations || {})['rollout.argoproj.io/revision']) || '—'),
      info.strategy === 'Canary' ? stat('Step', info.step || '—') : null,
      info.strategy === 'Canary' ? stat('Canary weight', `${canaryShare(info)}%`) : null,
      stat('Ready', h('span', { class: ready >= desired && desired > 0 ? 'ro-ok' : 'ro-warn' }, `${ready}/${desired}`)),
      stat('Updated', String(info.updated ?? 0)),
      stat('Available', String(info.available ?? 0)),
      stat(images.length > 1 ? 'Images' : 'Image', images.length
        ? h('div', { class: 'ro-image-list' }, images.map((image) => h('code', { class: 'ro-image' }, image)))
        : '—', { class: 'ro-stat ro-stat-wide' }),
      info.restartedAt ? stat('Restarted', timeAgo(info.restartedAt)) : null),
  ];
}

// --------------------------------------------------------------------------------------- actions

function actionsView(info, run) {
  const status = info.status;
  const paused = status === 'Paused';
  const aborted = isAborted(info);
  const healthy = status === 'Healthy';
  const moving = status === 'Progressing' || paused;
  const button = (testid, label, kind, enabled, onclick, title) => h('button', {
    class: `btn btn-${kind} ro-action`, 'data-testid': testid, disabled: !enabled, title, onclick: (event) => onclick(event.currentTarget),
  }, label);
  return [
    button('rollout-promote', 'Promote', 'primary', moving && !aborted, (b) => run(b, 'Promote', 'promote', { full: false }),
      'Go on to the next step'),
    button('rollout-promote-full', 'Promote full', 'secondary', !healthy, (b) => run(b, 'Promote full', 'promote', { full: true }, {
      title: 'Promote fully?', message: 'Skip every remaining step and analysis and move all traffic to the new revision.', label: 'Promote full',
    }), 'Skip the remaining steps'),
    aborted
      ? button('rollout-retry', 'Retry', 'primary', true, (b) => run(b, 'Retry', 'retry', {}), 'Start the aborted update again')
      : button('rollout-abort', 'Abort', 'danger', moving, (b) => run(b, 'Abort', 'abort', {}, {
        title: 'Abort this rollout?', message: 'Traffic and scale go back to the stable revision. Git is not changed.', label: 'Abort', danger: true,
      }), 'Go back to the stable revision'),
    paused
      ? button('rollout-resume', 'Resume', 'secondary', true, (b) => run(b, 'Resume', 'pause', { paused: false }), 'Resume the rollout')
      : button('rollout-pause', 'Pause', 'secondary', !healthy && !aborted, (b) => run(b, 'Pause', 'pause', { paused: true }), 'Pause the rollout'),
    button('rollout-restart', 'Restart', 'ghost', true, (b) => run(b, 'Restart', 'restart', {}, {
      title: 'Restart the pods?', message: 'Every pod of the rollout is replaced, a few at a time.', label: 'Restart',
    }), 'Restart every pod'),
  ];
}

// ----------------------------------------------------------------------------------------- steps

function describeStep(step) {
  if (!step || typeof step !== 'object') return { kind: 'other', title: 'Unknown step', detail: '' };
  if ('setWeight' in step) return { kind: 'weight', title: `Set weight ${step.setWeight}%`, detail: '' };
  if ('pause' in step) {
    const duration = step.pause && step.pause.duration;
    return { kind: 'pause', title: duration ? `Pause ${duration}` : 'Pause', detail: duration ? '' : 'until promoted' };
  }
  if ('analysis' in step) {
    const names = ((step.analysis && step.analysis.templates) || []).map((t) => t.templateName || t.clusterTemplateName).filter(Boolean);
    return { kind: 'analysis', title: 'Analysis', detail: names.join(', ') };
  }
  if ('experiment' in step) {
    const exp = step.experiment || {};
    const names = (exp.templates || []).map((t) => t.name).filter(Boolean);
    return { kind: 'experiment', title: 'Experiment', detail: [names.join(', '), exp.duration].filter(Boolean).join(' · ') };
  }
  if ('setCanaryScale' in step) {
    const scale = step.setCanaryScale || {};
    const what = scale.matchTrafficWeight ? 'matches traffic weight' : scale.replicas !== undefined ? `${scale.replicas} replicas` : `${scale.weight}%`;
    return { kind: 'scale', title: 'Set canary scale', detail: what };
  }
  if ('setHeaderRoute' in step) return { kind: 'route', title: 'Header route', detail: (step.setHeaderRoute || {}).name || '' };
  if ('setMirrorRoute' in step) return { kind: 'route', title: 'Mirror route', detail: (step.setMirrorRoute || {}).name || '' };
  if ('plugin' in step) return { kind: 'other', title: 'Plugin', detail: (step.plugin || {}).name || '' };
  return { kind: 'other', title: Object.keys(step)[0] || 'Step', detail: '' };
}

function stepState(info, index, steps) {
  const aborted = isAborted(info);
  if (aborted) {
    const failed = failedStep(info);
    if (failed === null) return 'pending';
    return index < failed ? 'done' : index === failed ? 'failed' : 'pending';
  }
  const current = currentStep(info);
  if (info.status === 'Healthy' && (current === null || current >= steps.length)) return 'done';
  if (current === null || index > current) return 'pending';
  if (index < current) return 'done';
  return info.status === 'Paused' ? 'paused' : 'running';
}

function stepsView(info) {
  const steps = info.steps || [];
  if (!steps.length) return h('p', { class: 'ro-muted' }, 'No steps: the canary goes straight to 100%.');
  return h('ol', { class: 'ro-steps' }, steps.map((step, index) => {
    const { kind, title, detail } = describeStep(step);
    const state = stepState(info, index, steps);
    const marker = { done: '✓', running: '▶', paused: '▶', failed: '✕', pending: String(index + 1) }[state];
    return h('li', {
      class: `ro-step ro-step-${state}`, 'data-testid': 'rollout-step', 'data-index': index, 'data-state': state,
      'data-current': state !== 'pending' && state !== 'done' ? 'true' : undefined,
    },
      h('span', { class: 'ro-step-marker', 'aria-hidden': 'true' }, marker),
      h('span', { class: `ro-step-icon ro-step-icon-${kind}` }, icon(kind)),
      h('span', { class: 'ro-step-text' }, h('span', { class: 'ro-step-title' }, title), detail ? h('span', { class: 'ro-step-detail' }, detail) : null),
      state === 'paused' ? chip('paused', 'paused') : state === 'running' ? chip('in progress', 'running') : state === 'failed' ? chip('failed', 'failed') : null);
  }));
}

function weightView(info) {
  const weight = canaryShare(info);
  const set = Number(info.setWeight) || 0;
  const actual = info.actualWeight !== undefined && info.actualWeight !== '' ? Number(info.actualWeight) : set;
  const note = weight === 0 && info.status === 'Healthy' ? 'Fully promoted: all traffic on the stable revision'
    : weight === 0 && isAborted(info) ? 'Aborted: all traffic back on the stable revision'
      : actual !== set ? `Set ${set}% · actual ${actual}%` : null;
  return h('div', {
    class: 'ro-weight', 'data-testid': 'rollout-weight', 'data-weight': weight, 'data-set-weight': set, 'data-actual-weight': actual,
  },
    h('div', { class: 'ro-weight-legend' },
      h('span', { class: 'ro-legend ro-legend-stable' }, h('i', {}), `Stable ${100 - weight}%`),
      h('span', { class: 'ro-legend ro-legend-canary' }, h('i', {}), `Canary ${weight}%`)),
    h('div', { class: 'ro-weight-bar', role: 'img', 'aria-label': `stable ${100 - weight}%, canary ${weight}%` },
      h('div', { class: 'ro-weight-stable', style: { width: `${100 - weight}%` } }),
      h('div', { class: 'ro-weight-canary', style: { width: `${weight}%` } })),
    note ? h('div', { class: 'ro-muted ro-small ro-weight-note' }, note) : null);
}

function blueGreenView(info) {
  const sets = info.replicaSets || [];
  const active = sets.find((rs) => rs.active);
  const previewSet = sets.find((rs) => rs.preview);
  const preview = previewSet && previewSet !== active ? previewSet : null;
  const side = (label, rs, kind) => h('div', { class: `ro-bg-side ro-bg-${kind}` },
    h('div', { class: 'ro-label' }, label),
    rs ? [h('div', { class: 'ro-bg-rev' }, `Revision ${rs.revision}`), (rs.images || []).map((image) => h('code', { class: 'ro-image' }, image)),
      h('div', { class: 'ro-muted ro-small' }, `${rs.available ?? 0}/${rs.replicas ?? 0} available`)]
      : h('div', { class: 'ro-muted ro-small' }, kind === 'preview' ? 'Same as active: no new revision is waiting' : 'None'));
  return h('div', { class: 'ro-bg', 'data-testid': 'rollout-bluegreen' },
    side('Active service', active, 'active'),
    h('div', { class: 'ro-bg-arrow', 'aria-hidden': 'true' }, '⇄'),
    side('Preview service', preview, 'preview'));
}

// ------------------------------------------------------------------------------------- revisions

function podState(pod) {
  const status = pod.status || 'Unknown';
  const [ready, total] = String(pod.ready || '').split('/').map(Number);
  if (/crash|error|fail|backoff|imagepull|errimage/i.test(status)) return 'bad';
  if (/terminat|succeeded|completed/i.test(status)) return 'gone';
  if (status === 'Running') return total && ready < total ? 'starting' : 'ok';
  if (/pending|creating|init/i.test(status)) return 'pending';
  return 'unknown';
}

function podsView(rs) {
  if (Array.isArray(rs.pods)) {
    if (!rs.pods.length) return h('span', { class: 'ro-muted ro-small' }, rs.replicas ? 'no pods yet' : 'scaled down');
    return h('div', { class: 'ro-pods' }, rs.pods.map((pod) => {
      const name = (pod.objectMeta || {}).name || '';
      const tip = [name, pod.status, pod.ready ? `ready ${pod.ready}` : '', pod.restarts ? `${pod.restarts} restarts` : ''].filter(Boolean).join(' · ');
      return h('span', { class: `ro-pod ro-pod-${podState(pod)}`, title: tip, 'data-testid': 'rollout-pod', 'data-status': pod.status || 'Unknown' });
    }));
  }
  // Without pod details: one square per replica, available ones green.
  const replicas = rs.replicas || 0;
  if (!replicas) return h('span', { class: 'ro-muted ro-small' }, 'scaled down');
  const available = rs.available || 0;
  return h('div', { class: 'ro-pods' }, Array.from({ length: replicas }, (_, i) => h('span', {
    class: `ro-pod ${i < available ? 'ro-pod-ok' : 'ro-pod-pending'}`, title: i < available ? 'available' : 'not available yet',
  })));
}

function revisionView(rs, info, newest, undo) {
  const tags = [
    rs.stable ? chip('stable', 'stable') : null,
    rs.canary ? (isAborted(info) ? chip('aborted', 'failed') : chip('canary', 'canary')) : null,
    rs.active ? chip('active', 'active') : null,
    rs.preview ? chip('preview', 'preview') : null,
  ];
  const old = !rs.stable && !rs.canary && !rs.active && !rs.preview && rs.revision !== newest;
  const name = (rs.objectMeta || {}).name || '';
  return h('div', { class: ['ro-revision', old ? 'ro-revision-old' : ''], 'data-testid': 'rollout-revision', 'data-revision': rs.revision },
    h('div', { class: 'ro-revision-head' },
      h('span', { class: 'ro-revision-num' }, `Revision ${rs.revision}`),
      tags,
      h('span', { class: 'ro-spacer' }),
      old ? h('button', {
        class: 'btn btn-secondary btn-sm ro-undo', 'data-testid': 'rollout-undo', title: `Roll back to revision ${rs.revision}`,
        onclick: (event) => undo(event.currentTarget, rs.revision),
      }, '↶ Rollback') : null),
    h('div', { class: 'ro-revision-body' },
      h('div', { class: 'ro-revision-meta' },
        (rs.images || []).map((image) => h('code', { class: 'ro-image' }, image)),
        h('span', { class: 'ro-muted ro-small ro-mono', title: 'ReplicaSet' }, name)),
      h('div', { class: 'ro-revision-pods' },
        podsView(rs),
        rs.replicas ? h('span', { class: 'ro-small ro-muted ro-pod-count', title: 'available / replicas' }, `${rs.available ?? 0}/${rs.replicas}`) : null)));
}

function revisionsView(info, undo) {
  const sets = [...(info.replicaSets || [])].sort((a, b) => (b.revision || 0) - (a.revision || 0));
  if (!sets.length) return h('p', { class: 'ro-muted' }, 'No ReplicaSets yet.');
  const newest = sets[0].revision;
  return sets.map((rs) => revisionView(rs, info, newest, undo));
}

// -------------------------------------------------------------------------------------- analysis

function sparkline(measurements) {
  const values = measurements.map((m) => Number(m.value)).filter((v) => Number.isFinite(v));
  if (values.length < 2) return null;
  const min = Math.min(...values);
  const max = Math.max(...values);
  const width = 120;
  const height = 28;
  const y = (v) => (max === min ? height / 2 : height - 4 - ((v - min) / (max - min)) * (height - 8));
  const x = (i) => 4 + (i / (values.length - 1)) * (width - 8);
  const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  const dots = points.map((p) => { const [cx, cy] = p.split(','); return `<circle cx="${cx}" cy="${cy}" r="2.2" fill="currentColor"/>`; }).join('');
  const svg = `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" aria-hidden="true"><polyline points="${points.join(' ')}" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linejoin="round" stroke-linecap="round" opacity=".7"/>${dots}</svg>`;
  return h('span', { class: 'ro-spark', title: `${values.length} values · min ${min} · max ${max}`, html: svg });
}

function formatTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString();
}

function metricView(metric) {
  const measurements = metric.measurements || [];
  const last = measurements.slice(-6).reverse();
  const counts = [
    ['successful', '✓', metric.successful], ['failed', '✕', metric.failed],
    ['inconclusive', '?', metric.inconclusive], ['error', '!', metric.error],
  ];
  return h('div', { class: 'ro-metric', 'data-testid': 'analysis-metric', 'data-name': metric.name },
    h('div', { class: 'ro-metric-head' },
      h('span', { class: 'ro-metric-name' }, metric.name),
      badge('phase', metric.phase || 'Pending', { testid: 'metric-status' }),
      h('span', { class: 'ro-counts' }, counts.map(([kind, mark, n]) => h('span', {
        class: `ro-count-${kind} ${n ? '' : 'ro-count-zero'}`, title: `${n || 0} ${kind}`,
      }, `${mark} ${n || 0}`))),
      h('span', { class: 'ro-spacer' }),
      sparkline(measurements)),
    last.length ? h('table', { class: 'table ro-measurements' },
      h('thead', {}, h('tr', {}, ['', 'Value', 'Started', 'Finished', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, last.map((m) => h('tr', { 'data-testid': 'measurement-row', 'data-status': m.phase || '' },
        h('td', {}, h('span', { class: `ro-dot ro-dot-${(m.phase || 'pending').toLowerCase()}`, title: m.phase || '' })),
        h('td', { class: 'ro-mono' }, m.value === undefined || m.value === null || m.value === '' ? '—' : String(m.value)),
        h('td', { class: 'ro-small' }, formatTime(m.startedAt)),
        h('td', { class: 'ro-small' }, formatTime(m.finishedAt)),
        h('td', { class: 'ro-small ro-muted' }, m.message || '')))))
      : h('p', { class: 'ro-muted ro-small' }, 'No measurements yet.'));
}

function experimentsView(experiments) {
  if (!Array.isArray(experiments) || !experiments.length) return null;
  return h('div', { class: 'ro-experiments' },
    h('div', { class: 'ro-label' }, 'Experiments'),
    experiments.map((exp) => {
      const meta = exp.objectMeta || {};
      const status = exp.status || (exp.phase) || 'Pending';
      return h('div', { class: 'ro-experiment', 'data-testid': 'experiment', 'data-name': meta.name || '', 'data-status': status },
        badge('phase', status, { testid: 'experiment-status' }),
        h('span', { class: 'ro-run-name' }, meta.name || ''),
        exp.message ? h('span', { class: 'ro-muted ro-small' }, exp.message) : null,
        h('span', { class: 'ro-spacer' }),
        h('span', { class: 'ro-muted ro-small' }, timeAgo(meta.creationTimestamp)));
    }));
}

function analysisView(info, openRuns) {
  return [experimentsView(info.experiments), h('div', { class: 'ro-runs' }, runsView(info, openRuns))];
}

function runsView(info, openRuns) {
  const runs = info.analysisRuns;
  if (!Array.isArray(runs)) return h('p', { class: 'ro-muted' }, 'Analysis runs are not available from this server.');
  if (!runs.length) {
    return h('p', { class: 'ro-muted' }, info.strategy === 'Canary'
      ? 'No analysis runs yet. The runs of analysis steps and background analysis appear here, with their measurements.'
      : 'No analysis runs yet. Pre- and post-promotion analysis runs appear here, with their measurements.');
  }
  const sorted = [...runs].sort((a, b) => String((b.objectMeta || {}).creationTimestamp || '').localeCompare(String((a.objectMeta || {}).creationTimestamp || '')));
  const hidden = openRuns.has('*all') ? 0 : Math.max(0, sorted.length - RUNS_SHOWN);
  const shown = hidden ? sorted.slice(0, RUNS_SHOWN) : sorted;
  const more = hidden ? h('button', {
    class: 'btn btn-ghost btn-sm ro-more', 'data-testid': 'analysis-more',
    onclick: (event) => { openRuns.add('*all'); mount(event.currentTarget.parentElement, runsView(info, openRuns)); },
  }, `Show ${hidden} older run${hidden === 1 ? '' : 's'}`) : null;
  return [shown.map((run, index) => {
    const name = (run.objectMeta || {}).name || `run-${index}`;
    const open = openRuns.has(name) || (!openRuns.has(`!${name}`) && (index === 0 || run.status === 'Running'));
    const details = h('details', { class: 'ro-run', 'data-testid': 'analysis-run', 'data-name': name, 'data-status': run.status || 'Pending', open },
      h('summary', { class: 'ro-run-summary' },
        badge('phase', run.status || 'Pending', { testid: 'analysis-status' }),
        h('span', { class: 'ro-run-name' }, name),
        run.revision !== undefined ? chip(`rev ${run.revision}`, 'muted') : null,
        h('span', { class: 'ro-spacer' }),
        h('span', { class: 'ro-muted ro-small' }, timeAgo((run.objectMeta || {}).creationTimestamp))),
      h('div', { class: 'ro-run-body' },
        run.message ? h('div', { class: 'ro-muted ro-small' }, run.message) : null,
        (run.metrics || []).length ? run.metrics.map(metricView) : h('p', { class: 'ro-muted ro-small' }, 'No metrics yet.')));
    details.addEventListener('toggle', () => {
      openRuns.delete(name); openRuns.delete(`!${name}`);
      openRuns.add(details.open ? name : `!${name}`);
    });
    return details;
  }), more];
}

// ------------------------------------------------------------------------------------------ page

function panel(title, body, extra = null) {
  return h('section', { class: 'card ro-panel' }, h('div', { class: 'ro-panel-head' }, h('h2', {}, title), extra), body);
}

function render(params, query, outlet) {
  const { namespace, name } = params;
  const base = `/api/v1/rollouts/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
  let info = null;
  let closeStream = null;
  let poller = null; // stops the polling (while the stream is down)
  let gone = false;
  const openRuns = new Set();
  const apps = new Map(); // guessed Application name -> {syncStatus, healthStatus} (fallback lookups)

  const liveText = h('span', {}, 'Connecting…');
  const liveDot = h('span', { class: 'ro-live-pill', title: 'How this page gets its updates', 'data-testid': 'rollout-live' },
    h('span', { class: 'ro-live' }), liveText);
  const setLive = (on) => {
    liveDot.classList.toggle('ro-live-on', on);
    mount(liveText, on ? 'Live' : `Polling every ${POLL_MS / 1000} s`);
  };

  async function refresh() {
    try {
      show(await api(`${base}/info`));
    } catch (err) {
      if (err.status === 404) notFound(err);
    }
  }

  async function run(button, label, action, body, ask) {
    if (ask && !(await confirm(ask.title, ask.message, { label: ask.label, danger: ask.danger }))) return;
    await act(button, label, async () => {
      const path = action === 'undo' ? `${base}/undo/${body.revision}` : `${base}/${action}`;
      try {
        await api(path, { method: 'PUT', body: action === 'undo' ? {} : body });
      } catch (err) {
        if (err.status === 404 || err.status === 405) throw new Error(`${label} is not available on this server`);
        throw err;
      }
    });
    refresh();
  }

  const undo = (button, revision) => run(button, `Rollback to revision ${revision}`, 'undo', { revision }, {
    title: `Roll back to revision ${revision}?`,
    message: 'The Rollout\'s pod template is set back to this revision and rolled out with its strategy. If an Application manages the Rollout, it will show OutOfSync (or undo this, with self-heal).',
    label: 'Rollback',
  });

  function lookup(app) {
    const key = `${app.namespace}/${app.name}`;
    if (!apps.has(key)) {
      apps.set(key, null);
      api(`/api/v1/applications/${encodeURIComponent(app.name)}?appNamespace=${encodeURIComponent(app.namespace)}`).then((found) => {
        const status = (found && found.status) || {};
        apps.set(key, { syncStatus: (status.sync || {}).status, healthStatus: (status.health || {}).status });
        setTimeout(() => apps.delete(key), 5000);
        if (info && !gone) drawHeader();
      }).catch(() => setTimeout(() => apps.delete(key), 10000));
    }
    return apps.get(key);
  }

  const header = region('ro-head-main', (i) => ({ ...i, objectMeta: { ...i.objectMeta, resourceVersion: '' }, replicaSets: null, analysisRuns: null }),
    (i, app, found) => headerView(i, app, () => found));
  const actions = region('ro-actions', (i) => [i.status, i.message, i.strategy], (i) => actionsView(i, run));
  const strategyRegion = region('ro-strategy',
    (i) => [i.strategy, i.steps, i.currentStepIndex, i.step, i.status, i.message, i.setWeight, i.actualWeight,
      i.strategy === 'BlueGreen' ? i.replicaSets : canaryShare(i), isAborted(i) ? failedStep(i) : null],
    (i) => (i.strategy === 'BlueGreen' ? [blueGreenView(i)] : [weightView(i), stepsView(i)]));
  const revisions = region('ro-revisions', (i) => i.replicaSets, (i) => revisionsView(i, undo));
  const analysis = region('ro-analysis', (i) => [i.analysisRuns, i.experiments], (i) => analysisView(i, openRuns));

  const strategyTitle = h('h2', {}, 'Steps');
  const page = h('div', { class: 'ro-page' },
    h('nav', { class: 'ro-crumbs' }, link('/rollouts', {}, 'Rollouts'), h('span', { class: 'ro-crumb-sep' }, '/'),
      link(`/rollouts?namespace=${encodeURIComponent(namespace)}`, {}, namespace), h('span', { class: 'ro-crumb-sep' }, '/'),
      h('span', {}, name)),
    h('header', { class: 'card ro-head', 'data-testid': 'rollout-header' }, header.el,
      h('div', { class: 'ro-head-bar' }, actions.el, liveDot)),
    h('div', { class: 'ro-grid' },
      h('section', { class: 'card ro-panel' }, h('div', { class: 'ro-panel-head' }, strategyTitle), strategyRegion.el),
      panel('Revisions', revisions.el)),
    panel('Analysis', analysis.el));
  mount(outlet, h('div', { class: 'boot' }, 'Loading rollout…'));

  function drawHeader() {
    const app = trackedApp(info);
    header.update(info, app, app && app.guessed ? lookup(app) : null);
  }

  function show(next) {
    if (gone || !next) return;
    if (!info) mount(outlet, page);
    info = next;
    drawHeader();
    actions.update(info);
    mount(strategyTitle, info.strategy === 'BlueGreen' ? 'Services' : 'Steps');
    strategyRegion.update(info);
    revisions.update(info);
    analysis.update(info);
  }

  function notFound(err) {
    stop();
    mount(outlet, h('div', { class: 'empty ro-empty' },
      h('h2', {}, 'Rollout not found'),
      h('p', {}, `${namespace}/${name}: ${err.message || 'not found'}`),
      link('/rollouts', { class: 'btn btn-secondary' }, 'All rollouts')));
  }

  function poll(on) {
    if (on && !poller && !gone) poller = repeat(refresh, POLL_MS);
    if (!on && poller) { poller(); poller = null; }
  }

  function stop() {
    gone = true;
    if (closeStream) { closeStream(); closeStream = null; }
    poll(false);
  }

  api(`${base}/info`).then((first) => {
    show(first);
    closeStream = streamInfo();
  }).catch((err) => {
    if (err.status === 404) notFound(err);
    else { mount(outlet, h('div', { class: 'error-panel', role: 'alert' }, h('strong', {}, 'Could not load the rollout'), h('p', {}, String(err.message || err)))); poll(true); }
  });

  function streamInfo() {
    const source = new EventSource(`${base}/info/watch`, { withCredentials: true });
    source.onmessage = (event) => {
      try {
        const data = JSON.parse(event.data);
        const next = data && (data.result || data);
        if (data && data.type === 'DELETED') notFound({ message: 'this Rollout was deleted' });
        else if (next && next.objectMeta) show(next);
      } catch (err) { console.error('bad rollout event', err); }
    };
    source.onopen = () => { setLive(true); poll(false); };
    source.onerror = () => {
      setLive(false);
      poll(true);
    };
    return () => source.close();
  }

  return stop;
}

route('/rollouts/:namespace/:name', render, { title: 'Rollout' });
