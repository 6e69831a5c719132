// Pieces the ACL pages (tokens, policies, roles) share: links between
// them, the policy and role pickers, service identities as text, and the
// inline error a refused save shows next to the form.

import { h, clear, tags } from './dom.js';

export const GLOBAL_MANAGEMENT_ID = '00000000-0000-0000-0000-000000000001';

export function policyLinks(ctx, list) {
  return (list || []).map((p, i) => [i ? ', ' : '', h('a', { href: ctx.link(`acls/policies/${encodeURIComponent(p.ID)}`), 'data-policy': p.Name }, p.Name || p.ID)]);
}

export function roleLinks(ctx, list) {
  return (list || []).map((r, i) => [i ? ', ' : '', h('a', { href: ctx.link(`acls/roles/${encodeURIComponent(r.ID)}`), 'data-role': r.Name }, r.Name || r.ID)]);
}

// Everything an ACL token or role grants, for a list cell.
export function grantsCell(ctx, item) {
  const out = [];
  if (item.Policies?.length) out.push(h('div', {}, h('span', { class: 'muted' }, 'Policies: '), policyLinks(ctx, item.Policies)));
  if (item.Roles?.length) out.push(h('div', {}, h('span', { class: 'muted' }, 'Roles: '), roleLinks(ctx, item.Roles)));
  if (item.ServiceIdentities?.length) out.push(h('div', {}, h('span', { class: 'muted' }, 'Service identities: '), tags(item.ServiceIdentities.map(serviceIdentityText))));
  if (item.NodeIdentities?.length) out.push(h('div', {}, h('span', { class: 'muted' }, 'Node identities: '), tags(item.NodeIdentities.map((n) => `${n.NodeName}:${n.Datacenter}`))));
  if (item.TemplatedPolicies?.length) out.push(h('div', {}, h('span', { class: 'muted' }, 'Templated policies: '), tags(item.TemplatedPolicies.map((t) => t.TemplateName))));
  return out.length ? out : h('span', { class: 'muted' }, 'nothing');
}

// Service identities as the CLI writes them: `web` or `web:dc1,dc2`.
export function serviceIdentityText(si) {
  return si.Datacenters?.length ? `${si.ServiceName}:${si.Datacenters.join(',')}` : si.ServiceName;
}

export function parseServiceIdentities(text) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
    const [name, dcs] = l.split(':', 2);
    const out = { ServiceName: name.trim() };
    const list = (dcs || '').split(',').map((d) => d.trim()).filter(Boolean);
    if (list.length) out.Datacenters = list;
    return out;
  });
}

// A list of checkboxes, one per policy or role, the chosen ones ticked.
// `value()` answers the links the API takes: [{ ID }].
export function picker(id, legend, items, chosen, kind) {
  const ticked = new Set((chosen || []).map((c) => c.ID));
  const boxes = items.map((it) => h('input', { type: 'checkbox', value: it.ID, 'data-name': it.Name, checked: ticked.has(it.ID) ? true : null }));
  const el = h('fieldset', { class: 'picker', id },
    h('legend', {}, legend),
    items.length === 0 ? h('p', { class: 'muted' }, `No ${kind} exist yet.`)
      : h('div', { class: 'picker-list' }, items.map((it, i) => h('label', { class: 'inline check' }, boxes[i], ' ', it.Name,
        it.Description ? h('span', { class: 'muted' }, ` — ${it.Description}`) : null))));
  return { el, value: () => boxes.filter((b) => b.checked).map((b) => ({ ID: b.value })) };
}

// A labelled form field.
export function field(id, label, input, hint) {
  input.id = id;
  return [h('label', { for: id }, label), hint ? h('p', { class: 'hint muted' }, hint) : null, input];
}

// The text under a form that says why a save was refused. A 400 names the
// problem (for rules, the line): the user fixes it there, the page keeps
// their text. Other failures (permission denied, unreachable) go to the
// page's banner, which offers a login.
export function formError(id) {
  const el = h('p', { class: 'field-error', id, role: 'alert', hidden: true });
  return {
    el,
    show(ctx, err) {
      if (err && err.kind === 'invalid') {
        el.textContent = err.message;
        el.hidden = false;
      } else {
        el.hidden = true;
        ctx.fail(err);
      }
    },
    hide() { el.hidden = true; },
  };
}

export function when(rfc3339) {
  if (!rfc3339) return '—';
  const d = new Date(rfc3339);
  return Number.isNaN(d.getTime()) ? rfc3339 : d.toLocaleString();
}

// Built when a list has loaded: a count line and the table, or the
// page's empty state.
export function listBody(ctx, body, items, noun, emptyText, tableEl) {
  if (items.length === 0) { clear(body, ctx.empty(noun, emptyText)); return; }
  clear(body, h('p', { class: 'muted' }, `${items.length} ${items.length === 1 ? noun.replace(/ies$/, 'y').replace(/s$/, '') : noun}`), tableEl());
}

export function crumbs(ctx, section, title) {
  return h('p', { class: 'crumbs' }, h('a', { href: ctx.link(`acls/${section}`) }, title), ' / ');
}

export function newButton(ctx, section, id, text) {
  return h('div', { class: 'toolbar' }, h('a', { class: 'button', id, href: ctx.link(`acls/${section}/new`) }, text));
}
