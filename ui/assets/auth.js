// Who the browser is: whether the agent has ACLs on, and which token the
// stored secret belongs to (GET /v1/acl/token/self). The login dialog
// checks a secret with that same call before keeping it, so a mistyped
// secret is reported at once instead of as failures on every page.
//
// The secret is kept in local storage only and sent as X-Consul-Token; it
// is never written to the console or into the page, except in the
// password field the user typed it into.

import { h, clear } from './dom.js';
import { ApiError, getJSON, token } from './api.js';

export const ANONYMOUS_ACCESSOR = '00000000-0000-0000-0000-000000000002';

// enabled: true / false / null (not known: the agent did not answer).
// self: the token the stored secret (or none: the anonymous token) is.
// lost: the stored secret stopped working and was forgotten.
export const auth = { enabled: null, self: null, lost: false };

const listeners = [];
export function onChange(fn) { listeners.push(fn); }
function changed() { for (const fn of listeners) fn(); }

export function loggedIn() {
  return auth.enabled === true && !!auth.self && auth.self.AccessorID !== ANONYMOUS_ACCESSOR;
}

// With ACLs on and no login, lists show only what the anonymous token may
// read: pages use this to say so instead of showing a bare empty list.
export function anonymousUnderAcls() {
  return auth.enabled === true && !loggedIn();
}

// What a secret is: { token } when valid, { disabled: true } with ACLs off,
// or { error } (an ApiError) otherwise.
async function whoIs(secret) {
  try {
    return { token: await getJSON('/v1/acl/token/self', { secret }) };
  } catch (e) {
    if (e instanceof ApiError && e.kind === 'acloff') return { disabled: true };
    return { error: e };
  }
}

// token/self's answer to a secret that names no token.
function unknownSecret(e) {
  return e.status === 404 || e.status === 403;
}

// Learns the ACL state for the stored secret. A secret the cluster no
// longer knows (404 "Supplied token does not exist" from token/self, as in
// Consul 1.15+; 403 "ACL not found" from older servers) is forgotten: it
// would only make every request fail.
export async function refresh() {
  const r = await whoIs(token.get());
  auth.lost = false;
  if (r.disabled) { auth.enabled = false; auth.self = null; }
  else if (r.token) { auth.enabled = true; auth.self = r.token; }
  else if (unknownSecret(r.error) && token.get()) {
    token.set('');
    auth.lost = true;
    auth.enabled = true;
    const anon = await whoIs('');
    auth.self = anon.token || null;
  } else if (unknownSecret(r.error)) { auth.enabled = true; auth.self = null; }
  // Otherwise (agent unreachable, no leader) keep what was known.
  changed();
}

export function describe(t) {
  return t.Description || `token ${t.AccessorID.slice(0, 8)}…`;
}

// The header button's label.
export function buttonLabel() {
  if (auth.enabled === false) return 'ACLs off';
  if (loggedIn()) return describe(auth.self);
  return 'Log in';
}

// The login dialog: who you are (when logged in), a field for a SecretID,
// and log out. Resolves when it closes.
export function loginDialog() {
  const secret = h('input', { type: 'password', id: 'login-secret', autocomplete: 'off', spellcheck: 'false', required: true });
  const error = h('p', { class: 'field-error', id: 'login-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', id: 'login-submit' }, 'Log in');
  const logout = h('button', { type: 'button', id: 'logout', class: 'secondary' }, 'Log out');
  const who = h('div', { id: 'login-who' });
  const dlg = h('dialog', { id: 'login', 'aria-labelledby': 'login-title' });
  const form = h('form', {},
    h('label', { for: 'login-secret' }, loggedIn() ? 'Log in with another token: SecretID' : 'SecretID of your ACL token'), secret, error,
    h('p', { class: 'muted' }, 'Checked with GET /v1/acl/token/self, then kept in this browser\'s local storage and sent as X-Consul-Token with every request this UI makes.'),
    h('div', { class: 'actions' }, submit,
      loggedIn() ? logout : null,
      h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close() }, 'Cancel')));

  if (auth.enabled === false) {
    clear(who, h('p', { class: 'banner info' }, 'ACLs are disabled on this agent: no login is needed, every request is allowed.'));
  } else if (loggedIn()) {
    const t = auth.self;
    clear(who, h('p', {}, 'Logged in as:'), h('dl', { class: 'meta' },
      h('dt', {}, 'Description'), h('dd', { id: 'login-description' }, t.Description || '—'),
      h('dt', {}, 'AccessorID'), h('dd', { id: 'login-accessor' }, t.AccessorID),
      h('dt', {}, 'Policies'), h('dd', {}, (t.Policies || []).map((p) => p.Name).join(', ') || '—'),
      (t.Roles || []).length ? [h('dt', {}, 'Roles'), h('dd', {}, t.Roles.map((r) => r.Name).join(', '))] : null));
  } else {
    clear(who, h('p', {}, 'Not logged in: requests use the anonymous token, which may see little or nothing.'));
  }
  dlg.append(h('h2', { id: 'login-title' }, loggedIn() ? 'Your token' : 'Log in'), who, auth.enabled === false ? null : form);
  if (auth.enabled === false) dlg.append(h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => dlg.close() }, 'Close')));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = secret.value.trim();
    if (!value) return;
    submit.disabled = true;
    error.hidden = true;
    const r = await whoIs(value);
    submit.disabled = false;
    if (r.token) {
      token.set(value);
      auth.enabled = true;
      auth.self = r.token;
      auth.lost = false;
      dlg.close('login');
      return;
    }
    if (r.disabled) {
      auth.enabled = false;
      error.textContent = 'ACLs are disabled on this agent: no token is needed.';
    } else if (unknownSecret(r.error)) {
      error.textContent = 'No token has this SecretID. Check it and try again.';
    } else {
      error.textContent = r.error.message;
    }
    error.hidden = false;
    secret.focus();
  });
  logout.addEventListener('click', async () => {
    token.set('');
    dlg.close('logout');
  });

  return new Promise((resolve) => {
    dlg.addEventListener('close', async () => {
      dlg.remove();
      if (dlg.returnValue === 'logout') await refresh();
      else if (dlg.returnValue === 'login') changed();
      resolve(dlg.returnValue);
    });
    document.body.append(dlg);
    dlg.showModal();
    if (auth.enabled !== false) secret.focus();
  });
}
