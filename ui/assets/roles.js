// ACL roles: the live list, and one role to create, edit (name,
// description, policies, service identities) or delete.

import { h, clear, table, confirmDialog } from './dom.js';
import { getJSON, sendJSON, request } from './api.js';
import * as acl from './acl.js';

export const TITLE = 'Roles';

export function list(ctx) {
  const body = h('div', { id: 'roles' }, h('p', { class: 'loading' }, 'Loading roles…'));
  ctx.main.append(h('h1', {}, 'Roles'), ctx.apiLink('/v1/acl/roles'),
    acl.newButton(ctx, 'roles', 'role-new', 'Create role'), body);
  ctx.watch('/v1/acl/roles', {}, (items) => {
    items = (items || []).sort((a, b) => a.Name.localeCompare(b.Name));
    acl.listBody(ctx, body, items, 'roles', 'No roles yet.', () => table(
      [{ title: 'Name' }, { title: 'Description' }, { title: 'Grants' }],
      items.map((r) => [
        h('a', { href: ctx.link(`acls/roles/${encodeURIComponent(r.ID)}`), 'data-role': r.Name }, r.Name),
        r.Description || '',
        acl.grantsCell(ctx, r),
      ])));
  });
}

export function edit(ctx, id) {
  const path = id ? `/v1/acl/role/${encodeURIComponent(id)}` : '/v1/acl/role';
  const body = h('div', { id: 'role-page' }, h('p', { class: 'loading' }, 'Loading…'));
  ctx.main.append(acl.crumbs(ctx, 'roles', 'Roles'), h('h1', {}, id ? 'Role' : 'New role'),
    id ? ctx.apiLink(path) : h('p', { class: 'api' }, 'API: ', h('code', {}, 'PUT /v1/acl/role')), body);
  (async () => {
    let role = null;
    let policies;
    try {
      [role, policies] = await Promise.all([
        id ? getJSON(path, { params: { dc: ctx.dc } }) : null,
        getJSON('/v1/acl/policies', { params: { dc: ctx.dc } }),
      ]);
    } catch (e) {
      clear(body, h('p', { class: 'empty' }, id ? 'This role could not be loaded.' : 'The form could not be loaded.'));
      ctx.fail(e);
      return;
    }
    if (role) ctx.main.querySelector('h1').textContent = role.Name;
    form(ctx, body, role, policies || []);
  })();
}

function form(ctx, body, r, policies) {
  const isNew = !r;
  const notice = h('div', { class: 'banner ok', role: 'status', id: 'role-notice', hidden: true });
  const name = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', required: true, value: r?.Name || '' });
  const description = h('input', { type: 'text', autocomplete: 'off', value: r?.Description || '' });
  const pol = acl.picker('role-policies', 'Policies', policies, r?.Policies, 'policies');
  const sids = h('textarea', { class: 'short', spellcheck: 'false', value: (r?.ServiceIdentities || []).map(acl.serviceIdentityText).join('\n') });
  const error = acl.formError('role-error');
  const save = h('button', { type: 'submit', id: 'role-save' }, isNew ? 'Create' : 'Save');
  const f = h('form', { class: 'card', id: 'role-form' },
    acl.field('role-name', 'Name', name, 'Letters, digits, “-” and “_”.'),
    acl.field('role-description', 'Description', description),
    pol.el,
    acl.field('role-service-identities', 'Service identities', sids, 'One per line: a service name, or name:dc1,dc2 to limit it to datacenters.'),
    error.el,
    h('div', { class: 'actions' }, save,
      r ? h('button', { type: 'button', class: 'danger', id: 'role-delete', onclick: () => deleteRole(ctx, r) }, 'Delete') : null));

  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hide();
    const value = {
      Name: name.value.trim(),
      Description: description.value,
      Policies: pol.value(),
      ServiceIdentities: acl.parseServiceIdentities(sids.value),
    };
    if (r) Object.assign(value, { ID: r.ID, NodeIdentities: r.NodeIdentities || [], TemplatedPolicies: r.TemplatedPolicies || [] });
    save.disabled = true;
    try {
      const out = await sendJSON('PUT', isNew ? '/v1/acl/role' : `/v1/acl/role/${encodeURIComponent(r.ID)}`, value, { params: { dc: ctx.dc } });
      ctx.clearFail();
      if (isNew) { ctx.navigate(`acls/roles/${encodeURIComponent(out.ID)}`); return; }
      Object.assign(r, out);
      ctx.main.querySelector('h1').textContent = out.Name;
      notice.textContent = 'Saved.';
      notice.hidden = false;
    } catch (err) {
      error.show(ctx, err);
    } finally {
      save.disabled = false;
    }
  });

  clear(body, notice,
    r ? h('dl', { class: 'meta' },
      h('dt', {}, 'ID'), h('dd', {}, h('code', {}, r.ID)),
      r.Policies?.length ? [h('dt', {}, 'Policies'), h('dd', {}, acl.policyLinks(ctx, r.Policies))] : null) : null,
    f);
}

async function deleteRole(ctx, r) {
  const ok = await confirmDialog('Delete role?',
    `Role “${r.Name}” will be deleted, and with it the rights it gives every token that links it. This cannot be undone.`,
    'Delete role');
  if (!ok) return;
  try {
    await request('DELETE', `/v1/acl/role/${encodeURIComponent(r.ID)}`, { params: { dc: ctx.dc } });
    ctx.clearFail();
    ctx.navigate('acls/roles');
  } catch (e) { ctx.fail(e); }
}
