// The login page: a centered card that posts the credentials and goes back where the user came from.
import { api, h, loggedIn, mount, route } from './core.js';

function renderLogin(params, query, outlet) {
  const username = h('input', {
    class: 'input', id: 'login-username', name: 'username', type: 'text', autocomplete: 'username',
    required: true, 'data-testid': 'login-username',
  });
  const password = h('input', {
    class: 'input', id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password',
    required: true, 'data-testid': 'login-password',
  });
  const error = h('div', { class: 'form-error', role: 'alert', 'aria-live': 'assertive', 'data-testid': 'login-error' });
  const submit = h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'login-submit' }, 'Sign in');

  async function onSubmit(event) {
    event.preventDefault();
    error.textContent = '';
    if (!username.value || !password.value) {
      error.textContent = 'Enter your username and password.';
      (username.value ? password : username).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    try {
      await api('/api/v1/session', { method: 'POST', body: { username: username.value, password: password.value } });
      await loggedIn(safeReturn(query.get('return')));
    } catch (err) {
      error.textContent = err.status === 401 || err.status === 403
        ? 'Invalid username or password.'
        : `Login failed: ${err.message || err}`;
      password.select();
      password.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  }

  mount(outlet, h('div', { class: 'login-screen' },
    h('form', { class: 'card login-card', onsubmit: onSubmit, novalidate: true, 'aria-labelledby': 'login-title' },
      h('div', { class: 'login-logo' },
        h('img', { src: '/assets/favicon.svg', alt: '' }),
        h('h1', { id: 'login-title' }, 'Tugboat'),
        h('p', {}, 'GitOps and progressive delivery')),
      h('div', { class: 'field' }, h('label', { for: 'login-username' }, 'Username'), username),
      h('div', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), password),
      error,
      submit)));
  username.focus();
}

// Only same-site paths: a crafted ?return= must not send the user elsewhere.
function safeReturn(value) {
  return value && value.startsWith('/') && !value.startsWith('//') && !value.startsWith('/login') ? value : '/applications';
}

route('/login', renderLogin, { title: 'Log in' });
