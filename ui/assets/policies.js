// ACL policies: the live list, and one policy to create, edit (name,
// description, rules, datacenters) or delete. A rule the server refuses is
// explained under the rules field with the server's own text, which names
// the line; the cursor is put on that line. The built-in global-management
// policy is shown read-only.

import { h, clear, badge, table, confirmDialog } from './dom.js';
import { getJSON, sendJSON, request } from './api.js';
import * as acl from './acl.js';

export const TITLE = 'Policies';

const EXAMPLE = `# For example: read every service, write "web", read keys under app/
service_prefix "" { policy = "read" }
service "web" { policy = "write" }
key_prefix "app/" { policy = "read" }
`;

export function list(ctx) {
  const body = h('div', { id: 'policies' }, h('p', { class: 'loading' }, 'Loading policies…'));
  ctx.main.append(h('h1', {}, 'Policies'), ctx.apiLink('/v1/acl/policies'),
    acl.newButton(ctx, 'policies', 'policy-new', 'Create policy'), body);
  ctx.watch('/v1/acl/policies', {}, (items) => {
    items = (items || []).sort((a, b) => a.Name.localeCompare(b.Name));
    acl.listBody(ctx, body, items, 'policies', 'No policies.', () => table(
      [{ title: 'Name' }, { title: 'Description' }, { title: 'Datacenters' }, { title: 'ID' }],
      items.map((p) => [
        [h('a', { href: ctx.link(`acls/policies/${encodeURIComponent(p.ID)}`), 'data-policy': p.Name }, p.Name),
          p.ID === acl.GLOBAL_MANAGEMENT_ID ? [' ', badge(null, 'built-in')] : null],
        p.Description || '',
        (p.Datacenters || []).join(', ') || 'all',
        h('code', {}, p.ID),
      ])));
  });
}

export function edit(ctx, id) {
  const path = id ? `/v1/acl/policy/${encodeURIComponent(id)}` : '/v1/acl/policy';
  const body = h('div', { id: 'policy-page' }, h('p', { class: 'loading' }, 'Loading…'));
  ctx.main.append(acl.crumbs(ctx, 'policies', 'Policies'), h('h1', {}, id ? 'Policy' : 'New policy'),
    id ? ctx.apiLink(path) : h('p', { class: 'api' }, 'API: ', h('code', {}, 'PUT /v1/acl/policy')), body);
  if (!id) { form(ctx, body, null); return; }
  (async () => {
    try {
      const p = await getJSON(path, { params: { dc: ctx.dc } });
      ctx.main.querySelector('h1').textContent = p.Name;
      form(ctx, body, p);
      usedBy(ctx, body, p);
    } catch (e) {
      clear(body, h('p', { class: 'empty' }, 'This policy could not be loaded.'));
      ctx.fail(e);
    }
  })();
}

// Puts the cursor on the line a parse error names ("… (line 3)").
function markLine(textarea, message) {
  const m = /\(line (\d+)\)/.exec(message);
  if (!m) return;
  const lines = textarea.value.split('\n');
  const n = Math.min(Number(m[1]), lines.length) - 1;
  const start = lines.slice(0, n).reduce((sum, l) => sum + l.length + 1, 0);
  textarea.focus();
  textarea.setSelectionRange(start, start + lines[n].length);
}

function form(ctx, body, p) {
  const isNew = !p;
  const builtIn = p?.ID === acl.GLOBAL_MANAGEMENT_ID;
  const ro = builtIn ? true : null;
  const notice = h('div', { class: 'banner ok', role: 'status', id: 'policy-notice', hidden: true });
  const name = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', required: true, readonly: ro, value: p?.Name || '' });
  const description = h('input', { type: 'text', autocomplete: 'off', readonly: ro, value: p?.Description || '' });
  const rules = h('textarea', { spellcheck: 'false', readonly: ro, placeholder: EXAMPLE, value: p?.Rules || '' });
  const dcs = h('input', { type: 'text', autocomplete: 'off', readonly: ro, value: (p?.Datacenters || []).join(', ') });
  const error = acl.formError('policy-error');
  const save = h('button', { type: 'submit', id: 'policy-save' }, isNew ? 'Create' : 'Save');
  const f = h('form', { class: 'card', id: 'policy-form' },
    acl.field('policy-name', 'Name', name, 'Letters, digits, “-” and “_”.'),
    acl.field('policy-description', 'Description', description),
    acl.field('policy-rules', 'Rules (HCL or JSON)', rules),
    error.el,
    acl.field('policy-datacenters', 'Datacenters', dcs, 'Comma-separated; empty: valid in every datacenter.'),
    builtIn ? null : h('div', { class: 'actions' }, save,
      p ? h('button', { type: 'button', class: 'danger', id: 'policy-delete', onclick: () => deletePolicy(ctx, p) }, 'Delete') : null));
  rules.addEventListener('input', () => { rules.removeAttribute('aria-invalid'); });

  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hide();
    const value = {
      Name: name.value.trim(),
      Description: description.value,
      Rules: rules.value,
      Datacenters: dcs.value.split(',').map((d) => d.trim()).filter(Boolean),
    };
    if (p) value.ID = p.ID;
    save.disabled = true;
    try {
      const out = await sendJSON('PUT', isNew ? '/v1/acl/policy' : `/v1/acl/policy/${encodeURIComponent(p.ID)}`, value, { params: { dc: ctx.dc } });
      ctx.clearFail();
      if (isNew) { ctx.navigate(`acls/policies/${encodeURIComponent(out.ID)}`); return; }
      Object.assign(p, out);
      ctx.main.querySelector('h1').textContent = out.Name;
      notice.textContent = 'Saved.';
      notice.hidden = false;
    } catch (err) {
      error.show(ctx, err);
      if (err.kind === 'invalid' && /rules/i.test(err.message)) {
        rules.setAttribute('aria-invalid', 'true');
        markLine(rules, err.message);
      }
    } finally {
      save.disabled = false;
    }
  });

  clear(body, notice,
    builtIn ? h('p', { class: 'banner info', id: 'policy-builtin' }, 'The built-in global-management policy grants every permission. It is read-only here and cannot be deleted.') : null,
    p ? h('dl', { class: 'meta' }, h('dt', {}, 'ID'), h('dd', {}, h('code', {}, p.ID))) : null,
    f);
}

// Which tokens and roles link this policy: worth knowing before a delete.
async function usedBy(ctx, body, p) {
  const box = h('div', { id: 'policy-used-by' }, h('h2', {}, 'Used by'));
  body.append(box);
  try {
    const params = { dc: ctx.dc, policy: p.ID };
    const [tokens, roles] = await Promise.all([getJSON('/v1/acl/tokens', { params }), getJSON('/v1/acl/roles', { params })]);
    const items = [
      ...(tokens || []).map((t) => h('li', {}, 'Token ', h('a', { href: ctx.link(`acls/tokens/${encodeURIComponent(t.AccessorID)}`) }, t.Description || t.AccessorID))),
      ...(roles || []).map((r) => h('li', {}, 'Role ', h('a', { href: ctx.link(`acls/roles/${encodeURIComponent(r.ID)}`) }, r.Name))),
    ];
    box.append(items.length ? h('ul', {}, items) : h('p', { class: 'muted' }, 'No token or role links this policy.'));
  } catch (e) {
    box.append(h('p', { class: 'muted' }, `Not known: ${e.message}`));
  }
}

async function deletePolicy(ctx, p) {
  const ok = await confirmDialog('Delete policy?',
    `Policy “${p.Name}” will be deleted, and with it the rights it gives every token and role that links it. This cannot be undone.`,
    'Delete policy');
  if (!ok) return;
  try {
    await request('DELETE', `/v1/acl/policy/${encodeURIComponent(p.ID)}`, { params: { dc: ctx.dc } });
    ctx.clearFail();
    ctx.navigate('acls/policies');
  } catch (e) { ctx.fail(e); }
}
