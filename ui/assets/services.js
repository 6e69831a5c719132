// Services: the list (name, tags, instances, health) and one service's
// instances with their checks.
//
// The list comes from two blocking queries, whatever the number of
// services: /v1/catalog/services (names and tags) and /v1/health/state/any
// (every check, which names its node and service instance). Instances are
// counted from their checks, node checks included; a service none of whose
// instances has a check is asked for once with /v1/health/service/<name>.

import { h, clear, badge, tags, table, meta, worst } from './dom.js';
import { getJSON } from './api.js';

const PAGE = 100;
const LOOKUPS_PER_REFRESH = 25;

export function list(ctx) {
  const filter = h('input', { type: 'search', id: 'service-filter', placeholder: 'Filter by name or tag', 'aria-label': 'Filter services by name or tag' });
  const body = h('div', { id: 'services' }, h('p', { class: 'loading' }, 'Loading services…'));
  ctx.main.append(h('h1', {}, 'Services'),
    ctx.apiLink('/v1/catalog/services'), ctx.apiLink('/v1/health/state/any'),
    h('div', { class: 'toolbar' }, h('div', { class: 'grow' }, filter)), body);

  let catalog = null;   // name -> tags
  let checks = null;    // every check in the datacenter
  let page = 0;
  const looked = new Map(); // name -> { instances, statuses } for check-less services

  const summarise = () => {
    const nodeStatuses = new Map();
    const perService = new Map();
    for (const c of checks) {
      if (!c.ServiceID) {
        if (!nodeStatuses.has(c.Node)) nodeStatuses.set(c.Node, []);
        nodeStatuses.get(c.Node).push(c.Status);
      }
    }
    for (const c of checks) {
      if (!c.ServiceID) continue;
      let s = perService.get(c.ServiceName);
      if (!s) { s = { instances: new Set(), statuses: [] }; perService.set(c.ServiceName, s); }
      const inst = `${c.Node}\u0000${c.ServiceID}`;
      if (!s.instances.has(inst)) {
        s.instances.add(inst);
        s.statuses.push(...(nodeStatuses.get(c.Node) || []));
      }
      s.statuses.push(c.Status);
    }
    return perService;
  };

  const draw = () => {
    if (!catalog || !checks) return;
    const perService = summarise();
    const q = filter.value.trim().toLowerCase();
    const names = Object.keys(catalog).sort().filter((n) =>
      !q || n.toLowerCase().includes(q) || (catalog[n] || []).some((t) => t.toLowerCase().includes(q)));
    if (Object.keys(catalog).length === 0) {
      clear(body, ctx.empty('services', 'No services are registered in this datacenter yet.'));
      return;
    }
    if (names.length === 0) {
      clear(body, h('p', { class: 'empty' }, `No service matches “${filter.value}”.`));
      return;
    }
    const pages = Math.ceil(names.length / PAGE);
    page = Math.min(page, pages - 1);
    const shown = names.slice(page * PAGE, (page + 1) * PAGE);
    const missing = [];
    const rows = shown.map((name) => {
      const s = perService.get(name) || looked.get(name);
      if (!s && !looked.has(name)) missing.push(name);
      const status = s ? worst(s.statuses) : null;
      const count = (st) => s.statuses.filter((x) => x === st).length;
      const health = !s ? h('span', { class: 'muted' }, '…')
        : s.statuses.length === 0 ? badge(null, 'no checks')
          : ['passing', 'warning', 'critical'].filter((st) => count(st) > 0).map((st) => badge(st, `${count(st)} ${st}`));
      return [
        h('a', { href: ctx.link(`services/${encodeURIComponent(name)}`), 'data-status': status || 'none' }, name),
        health,
        s ? String(s.instances.size) : '…',
        tags(catalog[name]),
      ];
    });
    const pager = pages > 1 ? h('div', { class: 'pager' },
      h('button', { type: 'button', class: 'secondary', disabled: page === 0, onclick: () => { page -= 1; draw(); } }, 'Previous'),
      h('span', {}, `${page * PAGE + 1}–${page * PAGE + shown.length} of ${names.length}`),
      h('button', { type: 'button', class: 'secondary', disabled: page >= pages - 1, onclick: () => { page += 1; draw(); } }, 'Next')) : null;
    clear(body,
      h('p', { class: 'muted' }, `${names.length} service${names.length === 1 ? '' : 's'}`),
      table([{ title: 'Service' }, { title: 'Health' }, { title: 'Instances', num: true }, { title: 'Tags' }], rows),
      pager);
    lookUp(missing.slice(0, LOOKUPS_PER_REFRESH));
  };

  // Services without any check: their instance count needs their own
  // (small) request, made once per change of the catalog.
  const lookUp = async (names) => {
    for (const name of names) {
      looked.set(name, null);
      try {
        const entries = await getJSON(`/v1/health/service/${encodeURIComponent(name)}`, { params: { dc: ctx.dc } }) || [];
        looked.set(name, { instances: new Set(entries.map((e) => `${e.Node.Node}\u0000${e.Service.ID}`)), statuses: entries.flatMap((e) => e.Checks.map((c) => c.Status)) });
      } catch (e) {
        looked.delete(name);
        ctx.fail(e);
        return;
      }
    }
    if (names.length) draw();
  };

  filter.addEventListener('input', () => { page = 0; draw(); });
  ctx.watch('/v1/catalog/services', {}, (data) => {
    catalog = data || {};
    for (const [name, v] of looked) if (v !== null) looked.delete(name);
    draw();
  });
  ctx.watch('/v1/health/state/any', {}, (data) => { checks = data || []; draw(); });
}

export function detail(ctx, name) {
  const body = h('div', { id: 'instances' }, h('p', { class: 'loading' }, 'Loading instances…'));
  const path = `/v1/health/service/${encodeURIComponent(name)}`;
  ctx.main.append(
    h('p', { class: 'crumbs' }, h('a', { href: ctx.link('services') }, 'Services'), ' / '),
    h('h1', {}, name), ctx.apiLink(path), body);
  ctx.watch(path, {}, (entries) => {
    entries = entries || [];
    if (entries.length === 0) {
      clear(body, h('p', { class: 'empty' }, `No instances of “${name}” are registered (it may have been deregistered).`));
      return;
    }
    const statuses = entries.flatMap((e) => e.Checks.map((c) => c.Status));
    clear(body,
      h('p', { class: 'muted' }, `${entries.length} instance${entries.length === 1 ? '' : 's'} · `, badge(worst(statuses), worst(statuses) || 'no checks')),
      entries.map((e) => instanceCard(ctx, e)));
  });
}

function instanceCard(ctx, e) {
  const svc = e.Service;
  const address = svc.Address || e.Node.Address;
  const status = worst(e.Checks.map((c) => c.Status));
  return h('section', { class: 'card instance', 'data-instance': svc.ID, 'aria-label': `Instance ${svc.ID}` },
    h('h3', {}, svc.ID, ' ', badge(status, status || 'no checks')),
    h('dl', { class: 'meta' },
      h('dt', {}, 'Node'), h('dd', {}, h('a', { href: ctx.link(`nodes/${encodeURIComponent(e.Node.Node)}`) }, e.Node.Node)),
      h('dt', {}, 'Address'), h('dd', {}, svc.Port ? `${address}:${svc.Port}` : address),
      svc.Tags?.length ? [h('dt', {}, 'Tags'), h('dd', {}, tags(svc.Tags))] : null),
    svc.Meta && Object.keys(svc.Meta).length ? [h('h4', {}, 'Meta'), meta(svc.Meta)] : null,
    checkList(e.Checks));
}

export function checkList(checks) {
  if (!checks || checks.length === 0) return h('p', { class: 'muted' }, 'No health checks.');
  return h('ul', { class: 'checks' }, checks.map((c) => h('li', { 'data-check': c.CheckID, 'data-status': c.Status },
    badge(c.Status), ' ', h('strong', {}, c.Name || c.CheckID),
    c.ServiceID ? h('span', { class: 'muted' }, ` · ${c.ServiceName} (${c.ServiceID})`) : h('span', { class: 'muted' }, ' (node check)'),
    c.Notes ? h('div', { class: 'muted' }, c.Notes) : null,
    c.Output ? h('pre', { class: 'output' }, c.Output) : null)));
}
