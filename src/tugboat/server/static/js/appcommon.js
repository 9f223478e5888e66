// Small helpers shared by the Applications list and the Application page.

const IN_CLUSTER = 'https://kubernetes.default.svc';

export function appPath(app) {
  return `/applications/${encodeURIComponent(app.metadata.namespace || 'argocd')}/${encodeURIComponent(app.metadata.name)}`;
}

// The first source (single-source apps have `spec.source`, multi-source ones `spec.sources`).
export function primarySource(app) {
  const spec = app.spec || {};
  return spec.source || (spec.sources && spec.sources[0]) || {};
}

export function sourceCount(app) {
  const spec = app.spec || {};
  return spec.sources ? spec.sources.length : spec.source ? 1 : 0;
}

// A repository URL without its scheme noise: https://github.com/org/repo.git -> github.com/org/repo.
export function sourceText(source) {
  const url = source.repoURL || '';
  return url.replace(/^[a-z+]+:\/\//, '').replace(/\.git$/, '') || '—';
}

export function destinationText(app) {
  const dest = (app.spec && app.spec.destination) || {};
  const cluster = dest.name || (dest.server === IN_CLUSTER || !dest.server ? 'in-cluster' : dest.server.replace(/^https?:\/\//, ''));
  return dest.namespace ? `${cluster}/${dest.namespace}` : cluster;
}

export function isAutomated(app) {
  return Boolean(app.spec && app.spec.syncPolicy && app.spec.syncPolicy.automated);
}

// The API path of one Application (with its namespace as `appNamespace`, as Argo CD's API takes it).
export function appApi(namespace, name, sub = '', params = {}) {
  const q = new URLSearchParams({ appNamespace: namespace });
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') q.set(key, String(value));
  }
  return `/api/v1/applications/${encodeURIComponent(name)}${sub}?${q}`;
}

// Kubernetes objects read best as YAML: a small JSON -> YAML printer (block style, quoted when needed).
export function toYaml(value, indent = '') {
  if (Array.isArray(value)) {
    if (!value.length) return '[]';
    return value.map((item) => {
      const text = toYaml(item, `${indent}  `);
      return isBlock(item) ? `${indent}- ${text.trimStart()}` : `${indent}- ${text}`;
    }).join('\n');
  }
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    if (!entries.length) return '{}';
    return entries.map(([key, item]) => {
      const k = `${indent}${scalar(key)}:`;
      if (isBlock(item)) return `${k}\n${toYaml(item, Array.isArray(item) ? indent : `${indent}  `)}`;
      return `${k} ${toYaml(item, `${indent}  `)}`;
    }).join('\n');
  }
  return scalar(value, indent);
}

function isBlock(value) {
  return value && typeof value === 'object' && Object.keys(value).length > 0;
}

function scalar(value, indent = '') {
  if (value === null || value === undefined) return 'null';
  if (typeof value !== 'string') return String(value);
  if (value.includes('\n')) return `|-\n${value.split('\n').map((line) => `${indent}  ${line}`).join('\n')}`;
  const plain = /^[A-Za-z0-9_./][A-Za-z0-9_./ :@=+-]*$/.test(value) && !/: |:$| $/.test(value)
    && !/^(true|false|null|yes|no|on|off|~|[-+]?[0-9.]+(e[-+]?[0-9]+)?)$/i.test(value);
  return plain ? value : JSON.stringify(value);
}

// Parse a JSON string the API returns for a manifest ('null' or '' means absent).
export function parseManifest(text) {
  if (!text || text === 'null') return null;
  try { return JSON.parse(text); } catch { return null; }
}

// Kubernetes objects as the UI shows them: without the noise of managedFields.
export function withoutNoise(obj) {
  if (!obj || !obj.metadata || !obj.metadata.managedFields) return obj;
  const { managedFields, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}
