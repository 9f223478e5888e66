// The UI's small framework: DOM building, the API client, the router, live streams, shared widgets.
// Pages are ES modules that call `route()` when imported; main.js imports them all, then `start()`.
// No build step and no dependencies: the server ships these files as they are.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// ------------------------------------------------------------------------------------------ DOM

// h('div', {class: 'x', onclick: fn, 'data-testid': 'y', style: {color: 'red'}}, child, [children], 'text')
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value' || key === 'checked' || key === 'disabled' || key === 'selected') el[key] = value;
    else if (key === 'html') el.innerHTML = value; // only for trusted, static markup (icons)
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Replace the contents of `el` with `children`.
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ------------------------------------------------------------------------------------------ API

// JSON request to the API server; the session cookie goes along. A 401 sends the user to the login page.
export async function api(path, { method = 'GET', body, signal } = {}) {
  const init = { method, signal, credentials: 'same-origin', headers: {} };
  // Every change says it sends JSON, body or not: the server refuses cookie-authenticated changes that
  // do not (another site's page cannot send this content type without a CORS preflight).
  if (method !== 'GET') init.headers['Content-Type'] = 'application/json';
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { message: text }; }
  if (!response.ok) {
    if (response.status === 401 && !path.startsWith('/api/v1/session')) {
      navigate(`/login?return=${encodeURIComponent(location.pathname + location.search)}`);
    }
    throw new ApiError(response.status, (data && (data.message || data.error)) || response.statusText);
  }
  return data;
}

// Live updates by server-sent events: `onData` gets each parsed `data:` payload. Returns a close function.
// EventSource reconnects by itself; `onState` (optional) hears 'open', 'error' (it will reconnect) or
// 'closed' (the server refused the stream, e.g. 401/404: it will not come back; poll instead).
export function stream(path, onData, onState) {
  const source = new EventSource(path, { withCredentials: true });
  source.onmessage = (event) => {
    try { onData(JSON.parse(event.data)); } catch (err) { console.error('bad stream event', err); }
  };
  source.onopen = () => onState && onState('open');
  source.onerror = () => onState && onState(source.readyState === EventSource.CLOSED ? 'closed' : 'error');
  return () => source.close();
}

// --------------------------------------------------------------------------------------- router

const routes = [];
let cleanup = null;
let outlet = null;

// Register a page: `pattern` like '/applications/:namespace/:name'; `render(params, query, outlet)` draws
// it into `outlet` and may return a cleanup function (close streams, timers) called on leaving the page.
export function route(pattern, render, { title = '' } = {}) {
  const names = [];
  const regex = new RegExp('^' + pattern.replace(/:(\w+)/g, (_, name) => { names.push(name); return '([^/]+)'; }) + '/?$');
  routes.push({ regex, names, render, title });
}

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  dispatch();
}

// An <a> that navigates inside the app (ctrl/cmd-click still opens a new tab).
// An `onclick` in props runs first; calling preventDefault() there keeps the navigation from happening.
export function link(href, props, ...children) {
  const own = props && props.onclick;
  return h('a', {
    ...props,
    href,
    onclick: (event) => {
      if (own) own(event);
      if (event.defaultPrevented) return;
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      navigate(href);
    },
  }, ...children);
}

function dispatch() {
  if (cleanup) { try { cleanup(); } catch (err) { console.error(err); } cleanup = null; }
  const path = location.pathname === '/' ? '/applications' : location.pathname;
  const query = new URLSearchParams(location.search);
  for (const r of routes) {
    const match = r.regex.exec(path);
    if (!match) continue;
    const params = {};
    r.names.forEach((name, i) => { params[name] = decodeURIComponent(match[i + 1]); });
    document.title = r.title ? `${r.title} · Tugboat` : 'Tugboat';
    setActiveNav(path);
    mount(outlet);
    const result = r.render(params, query, outlet);
    Promise.resolve(result).then((fn) => { if (typeof fn === 'function') cleanup = fn; })
      .catch((err) => showError(outlet, err));
    return;
  }
  mount(outlet, h('div', { class: 'empty' }, h('h2', {}, 'Page not found'), link('/applications', {}, 'Back to Applications')));
}

export function showError(el, err) {
  if (err instanceof ApiError && err.status === 401) return;
  mount(el, h('div', { class: 'error-panel', role: 'alert' }, h('strong', {}, 'Something went wrong'), h('p', {}, String(err.message || err))));
}

// ---------------------------------------------------------------------------------------- shell

let shell = null;

function setActiveNav(path) {
  if (!shell) return;
  for (const a of shell.querySelectorAll('nav a')) {
    a.classList.toggle('active', path.startsWith(a.getAttribute('href')));
  }
  shell.classList.toggle('bare', path === '/login');
}

export const user = { name: '' };

async function loadUser() {
  try {
    const info = await api('/api/v1/session/userinfo');
    user.name = info.username || '';
  } catch { user.name = ''; }
  const slot = document.getElementById('user-slot');
  if (slot) {
    mount(slot, user.name ? [
      h('span', { class: 'user-name', 'data-testid': 'user-name' }, user.name),
      h('button', { class: 'btn btn-ghost', onclick: logout }, 'Log out'),
    ] : []);
  }
}

async function logout() {
  try { await api('/api/v1/session', { method: 'DELETE' }); } catch { /* already gone */ }
  user.name = '';
  navigate('/login');
}

// Called by the login page after a successful login.
export async function loggedIn(returnTo) {
  await loadUser();
  navigate(returnTo || '/applications', { replace: true });
}

export function start() {
  shell = h('div', { class: 'shell' },
    h('header', { class: 'topbar' },
      link('/applications', { class: 'brand' }, h('img', { src: '/assets/favicon.svg', alt: '' }), 'Tugboat'),
      h('nav', {},
        link('/applications', {}, 'Applications'),
        link('/rollouts', {}, 'Rollouts')),
      h('div', { id: 'user-slot', class: 'user-slot' })),
    outlet = h('main', { class: 'page', id: 'page' }));
  mount(document.getElementById('root'), shell, h('div', { id: 'toasts', class: 'toasts', 'aria-live': 'polite' }));
  window.addEventListener('popstate', dispatch);
  if (location.pathname !== '/login') loadUser();
  dispatch();
}

// -------------------------------------------------------------------------------------- widgets

const ICONS = {
  Healthy: '♥', Progressing: '◔', Degraded: '✖', Suspended: '‖', Missing: '◌', Unknown: '?',
  Synced: '✔', OutOfSync: '↻', Paused: '‖', Succeeded: '✔', Failed: '✖', Error: '⚠', Running: '◔',
  Inconclusive: '?', Pending: '…', Terminating: '…', Successful: '✔',
};

// A status pill: kind is 'health' | 'sync' | 'phase'; the status picks color and icon.
export function badge(kind, status, { testid } = {}) {
  const value = status || 'Unknown';
  return h('span', {
    class: `badge badge-${kind} status-${value.toLowerCase()}`,
    title: `${kind}: ${value}`,
    'data-testid': testid || `${kind}-status`,
    'data-status': value,
  }, h('span', { class: 'badge-icon', 'aria-hidden': 'true' }, ICONS[value] || '•'), value);
}

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const el = h('div', { class: `toast toast-${kind}`, role: 'status' }, message);
  box.append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

// A modal dialog: `content` is a node; buttons: [{label, kind, value, testid, disabled}]; options:
// {class} added to the modal box (e.g. 'modal-wide'). Resolves with the value of the button pressed (or
// null when dismissed with Escape / the backdrop).
export function dialog(title, content, buttons, options = {}) {
  return new Promise((resolve) => {
    const close = (value) => { backdrop.remove(); document.removeEventListener('keydown', onKey); resolve(value); };
    const onKey = (event) => { if (event.key === 'Escape') close(null); };
    const backdrop = h('div', { class: 'modal-backdrop', onclick: (event) => { if (event.target === backdrop) close(null); } },
      h('div', { class: ['modal', options.class], role: 'dialog', 'aria-modal': 'true', 'aria-label': title },
        h('h3', {}, title),
        h('div', { class: 'modal-body' }, content),
        h('div', { class: 'modal-actions' }, buttons.map((b) => h('button', {
          class: `btn btn-${b.kind || 'secondary'}`, 'data-testid': b.testid, disabled: b.disabled,
          onclick: () => close(b.value),
        }, b.label)))));
    document.addEventListener('keydown', onKey);
    document.body.append(backdrop);
    const primary = backdrop.querySelector('.btn-primary, .btn-danger');
    if (primary) primary.focus();
  });
}

export async function confirm(title, message, { label = 'OK', danger = false } = {}) {
  const value = await dialog(title, h('p', {}, message), [
    { label: 'Cancel', value: false, testid: 'dialog-cancel' },
    { label, kind: danger ? 'danger' : 'primary', value: true, testid: 'dialog-confirm' },
  ]);
  return value === true;
}

// Run an action from a button: disable it meanwhile, toast the outcome.
export async function act(button, label, fn) {
  if (button) button.disabled = true;
  try {
    await fn();
    toast(`${label}: done`, 'success');
  } catch (err) {
    toast(`${label} failed: ${err.message || err}`, 'error');
  } finally {
    if (button) button.disabled = false;
  }
}

export function timeAgo(iso) {
  if (!iso) return '';
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

export function shortSha(revision) {
  return /^[0-9a-f]{40}$/.test(revision || '') ? revision.slice(0, 7) : (revision || '');
}

// Run `fn` at most once per `ms` (trailing call kept): for redraws driven by bursts of stream events.
export function throttle(fn, ms) {
  let timer = null;
  let pending = null;
  return (...args) => {
    if (timer) { pending = args; return; }
    fn(...args);
    timer = setTimeout(() => {
      timer = null;
      if (pending) { const last = pending; pending = null; fn(...last); }
    }, ms);
  };
}

// Run `fn` every `ms`, the next run only after the last one finished (a slow answer never piles
// requests up). Returns a stop function.
export function repeat(fn, ms) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    try { await fn(); } catch (err) { console.error(err); }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  return () => { stopped = true; clearTimeout(timer); };
}
