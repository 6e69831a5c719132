// ACL tokens: the live list, and one token to create, edit (description,
// policies, roles, service identities), clone or delete.
//
// A SecretID is shown only when the API returns it (callers without
// acl:write get "<hidden>"), masked until asked, and never logged.

import { h, clear, badge, table, confirmDialog } from './dom.js';
import { getJSON, sendJSON, request } from './api.js';
import { auth, ANONYMOUS_ACCESSOR } from './auth.js';
import * as acl from './acl.js';

export const TITLE = 'Tokens';

// The accessor of a token this browser just created or cloned: its page
// says so once.
let fresh = null;

export function list(ctx) {
  const body = h('div', { id: 'tokens' }, h('p', { class: 'loading' }, 'Loading tokens…'));
  ctx.main.append(h('h1', {}, 'Tokens'), ctx.apiLink('/v1/acl/tokens'),
    acl.newButton(ctx, 'tokens', 'token-new', 'Create token'), body);
  ctx.watch('/v1/acl/tokens', {}, (items) => {
    items = items || [];
    acl.listBody(ctx, body, items, 'tokens', 'No tokens.', () => table(
      [{ title: 'AccessorID' }, { title: 'Description' }, { title: 'Grants' }, { title: 'Local' }, { title: 'Created' }],
      items.map((t) => [
        [h('a', { href: ctx.link(`acls/tokens/${encodeURIComponent(t.AccessorID)}`), 'data-accessor': t.AccessorID }, h('code', {}, t.AccessorID)),
          t.AccessorID === auth.self?.AccessorID ? [' ', badge('leader', 'you')] : null,
          t.AccessorID === ANONYMOUS_ACCESSOR ? [' ', badge(null, 'anonymous')] : null],
        t.Description || '',
        acl.grantsCell(ctx, t),
        t.Local ? 'yes' : 'no',
        acl.when(t.CreateTime),
      ])));
  });
}

export function edit(ctx, accessor) {
  const path = accessor ? `/v1/acl/token/${encodeURIComponent(accessor)}` : '/v1/acl/token';
  const body = h('div', { id: 'token-page' }, h('p', { class: 'loading' }, 'Loading…'));
  ctx.main.append(acl.crumbs(ctx, 'tokens', 'Tokens'), h('h1', {}, accessor ? 'Token' : 'New token'),
    accessor ? ctx.apiLink(path) : h('p', { class: 'api' }, 'API: ', h('code', {}, 'PUT /v1/acl/token')), body);
  load(ctx, accessor, path, body);
}

async function load(ctx, accessor, path, body) {
  let token = null;
  let policies;
  let roles;
  try {
    [token, policies, roles] = await Promise.all([
      accessor ? getJSON(path, { params: { dc: ctx.dc } }) : null,
      getJSON('/v1/acl/policies', { params: { dc: ctx.dc } }),
      getJSON('/v1/acl/roles', { params: { dc: ctx.dc } }),
    ]);
  } catch (e) {
    clear(body, h('p', { class: 'empty' }, accessor ? 'This token could not be loaded.' : 'The form could not be loaded.'));
    ctx.fail(e);
    return;
  }
  if (token) ctx.main.querySelector('h1').textContent = token.Description || token.AccessorID;
  form(ctx, body, token, policies || [], roles || []);
}

// The SecretID, masked until shown.
function secretBox(secret) {
  if (!secret || secret === '<hidden>') {
    return h('span', { class: 'muted' }, 'hidden: reading secrets needs a token with acl:write');
  }
  const input = h('input', { type: 'password', id: 'token-secret', readonly: true, value: secret, 'aria-label': 'SecretID', class: 'secret' });
  const show = h('button', { type: 'button', class: 'secondary small', id: 'token-secret-show' }, 'Show');
  show.addEventListener('click', () => {
    const hidden = input.type === 'password';
    input.type = hidden ? 'text' : 'password';
    show.textContent = hidden ? 'Hide' : 'Show';
  });
  const copy = h('button', { type: 'button', class: 'secondary small' }, 'Copy');
  copy.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(input.value); copy.textContent = 'Copied'; } catch { input.type = 'text'; input.select(); show.textContent = 'Hide'; }
  });
  return h('span', { class: 'secret-box' }, input, show, copy);
}

function form(ctx, body, t, policies, roles) {
  const isNew = !t;
  const notice = h('div', { class: 'banner ok', role: 'status', id: 'token-notice', hidden: true });
  if (t && fresh === t.AccessorID) {
    notice.textContent = 'Created. Its SecretID is below: hand it to whoever will use the token.';
    notice.hidden = false;
    fresh = null;
  }
  const description = h('input', { type: 'text', autocomplete: 'off', value: t?.Description || '' });
  const pol = acl.picker('token-policies', 'Policies', policies, t?.Policies, 'policies');
  const rol = acl.picker('token-roles', 'Roles', roles, t?.Roles, 'roles');
  const sids = h('textarea', { class: 'short', spellcheck: 'false', value: (t?.ServiceIdentities || []).map(acl.serviceIdentityText).join('\n') });
  const local = h('input', { type: 'checkbox', id: 'token-local' });
  const ttl = h('input', { type: 'text', autocomplete: 'off', placeholder: 'e.g. 24h' });
  const error = acl.formError('token-error');
  const save = h('button', { type: 'submit', id: 'token-save' }, isNew ? 'Create' : 'Save');
  const own = t && t.AccessorID === auth.self?.AccessorID;
  const info = t ? h('dl', { class: 'meta', id: 'token-info' },
    h('dt', {}, 'AccessorID'), h('dd', {}, h('code', { id: 'token-accessor' }, t.AccessorID)),
    h('dt', {}, 'SecretID'), h('dd', {}, secretBox(t.SecretID)),
    h('dt', {}, 'Scope'), h('dd', {}, t.Local ? 'local to this datacenter' : 'global'),
    h('dt', {}, 'Created'), h('dd', {}, acl.when(t.CreateTime)),
    t.ExpirationTime ? [h('dt', {}, 'Expires'), h('dd', {}, acl.when(t.ExpirationTime))] : null,
    t.NodeIdentities?.length || t.TemplatedPolicies?.length ? [h('dt', {}, 'Also grants'), h('dd', {}, acl.grantsCell(ctx, { NodeIdentities: t.NodeIdentities, TemplatedPolicies: t.TemplatedPolicies }))] : null) : null;

  const f = h('form', { class: 'card', id: 'token-form' },
    acl.field('token-description', 'Description', description),
    pol.el, rol.el,
    acl.field('token-service-identities', 'Service identities', sids, 'One per line: a service name, or name:dc1,dc2 to limit it to datacenters.'),
    isNew ? [h('label', { class: 'inline check' }, local, ' Local: valid only in this datacenter, never replicated'),
      acl.field('token-ttl', 'Expires after (optional)', ttl, 'A duration such as 30m or 24h; empty for a token that never expires.')] : null,
    error.el,
    h('div', { class: 'actions' }, save,
      t ? h('button', { type: 'button', class: 'secondary', id: 'token-clone', onclick: () => cloneToken(ctx, t) }, 'Clone') : null,
      t ? h('button', { type: 'button', class: 'danger', id: 'token-delete', disabled: t.AccessorID === ANONYMOUS_ACCESSOR, onclick: () => deleteToken(ctx, t, own) }, 'Delete') : null));

  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hide();
    const value = {
      Description: description.value,
      Policies: pol.value(),
      Roles: rol.value(),
      ServiceIdentities: acl.parseServiceIdentities(sids.value),
    };
    if (isNew) {
      value.Local = local.checked;
      if (ttl.value.trim()) value.ExpirationTTL = ttl.value.trim();
    } else {
      // Kept as they are: the form does not edit them.
      Object.assign(value, { AccessorID: t.AccessorID, Local: t.Local, NodeIdentities: t.NodeIdentities || [], TemplatedPolicies: t.TemplatedPolicies || [] });
    }
    save.disabled = true;
    try {
      const path = isNew ? '/v1/acl/token' : `/v1/acl/token/${encodeURIComponent(t.AccessorID)}`;
      const out = await sendJSON('PUT', path, value, { params: { dc: ctx.dc } });
      ctx.clearFail();
      if (isNew) {
        fresh = out.AccessorID;
        ctx.navigate(`acls/tokens/${encodeURIComponent(out.AccessorID)}`);
        return;
      }
      notice.textContent = 'Saved.';
      notice.hidden = false;
      ctx.main.querySelector('h1').textContent = out.Description || out.AccessorID;
      Object.assign(t, out);
    } catch (err) {
      error.show(ctx, err);
    } finally {
      save.disabled = false;
    }
  });

  clear(body, notice, info,
    own ? h('p', { class: 'banner info' }, 'This is the token you are logged in with.') : null,
    t?.AccessorID === ANONYMOUS_ACCESSOR ? h('p', { class: 'banner info' }, 'The anonymous token: what it grants, everyone without a token may do. It cannot be deleted.') : null,
    h('h2', {}, isNew ? 'Create a token' : 'Edit'), f);
}

async function cloneToken(ctx, t) {
  try {
    const out = await sendJSON('PUT', `/v1/acl/token/${encodeURIComponent(t.AccessorID)}/clone`,
      { Description: `Clone of ${t.Description || t.AccessorID}` }, { params: { dc: ctx.dc } });
    ctx.clearFail();
    fresh = out.AccessorID;
    ctx.navigate(`acls/tokens/${encodeURIComponent(out.AccessorID)}`);
  } catch (e) { ctx.fail(e); }
}

async function deleteToken(ctx, t, own) {
  const ok = await confirmDialog('Delete token?',
    `Token ${t.AccessorID}${t.Description ? ` (${t.Description})` : ''} will be deleted: whoever uses it loses its rights at once. This cannot be undone.${own ? ' It is the token you are logged in with.' : ''}`,
    'Delete token');
  if (!ok) return;
  try {
    await request('DELETE', `/v1/acl/token/${encodeURIComponent(t.AccessorID)}`, { params: { dc: ctx.dc } });
    ctx.clearFail();
    ctx.navigate('acls/tokens');
  } catch (e) { ctx.fail(e); }
}
