// Nodes: the list (address, datacenter, health, the Raft leader marked)
// and one node with its checks, services and sessions (which can be
// invalidated).

import { h, clear, badge, tags, table, meta, worst, confirmDialog } from './dom.js';
import { request } from './api.js';
import { checkList } from './services.js';

export function list(ctx) {
  const filter = h('input', { type: 'search', id: 'node-filter', placeholder: 'Filter by name or address', 'aria-label': 'Filter nodes by name or address' });
  const body = h('div', { id: 'nodes' }, h('p', { class: 'loading' }, 'Loading nodes…'));
  ctx.main.append(h('h1', {}, 'Nodes'),
    ctx.apiLink('/v1/catalog/nodes'), ctx.apiLink('/v1/health/state/any'), ctx.apiLink('/v1/status/leader'),
    h('div', { class: 'toolbar' }, h('div', { class: 'grow' }, filter)), body);
  let nodes = null;
  let checks = null;
  let leader = '';
  const draw = () => {
    if (!nodes || !checks) return;
    if (nodes.length === 0) { clear(body, ctx.empty('nodes', 'No nodes are registered in this datacenter.')); return; }
    const q = filter.value.trim().toLowerCase();
    const shown = nodes.filter((n) => !q || n.Node.toLowerCase().includes(q) || n.Address.toLowerCase().includes(q));
    if (shown.length === 0) { clear(body, h('p', { class: 'empty' }, `No node matches “${filter.value}”.`)); return; }
    const byNode = new Map();
    for (const c of checks) {
      if (!byNode.has(c.Node)) byNode.set(c.Node, []);
      byNode.get(c.Node).push(c.Status);
    }
    // The leader is named by its server RPC address; nodes by their IP.
    const leaderHost = leader.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    const rows = shown.map((n) => {
      const st = byNode.get(n.Node) || [];
      const count = (s) => st.filter((x) => x === s).length;
      const isLeader = leaderHost && n.Address === leaderHost;
      return [
        [h('a', { href: ctx.link(`nodes/${encodeURIComponent(n.Node)}`) }, n.Node), isLeader ? [' ', badge('leader', 'leader')] : null],
        n.Address,
        n.Datacenter,
        st.length === 0 ? badge(null, 'no checks')
          : ['passing', 'warning', 'critical'].filter((s) => count(s) > 0).map((s) => badge(s, `${count(s)} ${s}`)),
      ];
    });
    clear(body, h('p', { class: 'muted' }, `${shown.length} node${shown.length === 1 ? '' : 's'}`),
      table([{ title: 'Node' }, { title: 'Address' }, { title: 'Datacenter' }, { title: 'Health' }], rows));
  };
  filter.addEventListener('input', draw);
  ctx.watch('/v1/catalog/nodes', {}, (data) => { nodes = data || []; draw(); });
  ctx.watch('/v1/health/state/any', {}, (data) => { checks = data || []; draw(); });
  // Not a blocking endpoint: the watch refreshes it on a timer.
  ctx.watch('/v1/status/leader', {}, (data) => { leader = data || ''; draw(); });
}

export function detail(ctx, name) {
  const enc = encodeURIComponent(name);
  const info = h('div', { id: 'node-info' }, h('p', { class: 'loading' }, 'Loading…'));
  const checksBox = h('div', { id: 'node-checks' });
  const servicesBox = h('div', { id: 'node-services' });
  const sessionsBox = h('div', { id: 'node-sessions' });
  ctx.main.append(
    h('p', { class: 'crumbs' }, h('a', { href: ctx.link('nodes') }, 'Nodes'), ' / '),
    h('h1', {}, name), ctx.apiLink(`/v1/catalog/node/${enc}`), info,
    h('h2', {}, 'Health checks'), ctx.apiLink(`/v1/health/node/${enc}`), checksBox,
    h('h2', {}, 'Services'), servicesBox,
    h('h2', {}, 'Sessions'), ctx.apiLink(`/v1/session/node/${enc}`), sessionsBox);

  ctx.watch(`/v1/catalog/node/${enc}`, {}, (data) => {
    if (!data || !data.Node) {
      clear(info, h('p', { class: 'empty' }, `No node named “${name}” is registered.`));
      clear(servicesBox);
      return;
    }
    const n = data.Node;
    clear(info, h('dl', { class: 'meta' },
      h('dt', {}, 'Address'), h('dd', {}, n.Address),
      h('dt', {}, 'Datacenter'), h('dd', {}, n.Datacenter),
      h('dt', {}, 'ID'), h('dd', {}, n.ID || '—')),
    n.TaggedAddresses && Object.keys(n.TaggedAddresses).length ? [h('h4', {}, 'Tagged addresses'), meta(n.TaggedAddresses)] : null,
    n.Meta && Object.keys(n.Meta).length ? [h('h4', {}, 'Meta'), meta(n.Meta)] : null);
    const svcs = Object.values(data.Services || {}).sort((a, b) => a.Service.localeCompare(b.Service) || a.ID.localeCompare(b.ID));
    clear(servicesBox, svcs.length === 0 ? h('p', { class: 'empty' }, 'No services on this node.')
      : table([{ title: 'Service' }, { title: 'ID' }, { title: 'Port', num: true }, { title: 'Tags' }],
        svcs.map((s) => [h('a', { href: ctx.link(`services/${encodeURIComponent(s.Service)}`) }, s.Service), s.ID, s.Port ? String(s.Port) : '', tags(s.Tags)])));
  });
  ctx.watch(`/v1/health/node/${enc}`, {}, (checks) => {
    checks = checks || [];
    clear(checksBox, checks.length ? [h('p', {}, badge(worst(checks.map((c) => c.Status)))), checkList(checks)]
      : h('p', { class: 'empty' }, 'No health checks on this node.'));
  });
  ctx.watch(`/v1/session/node/${enc}`, {}, (sessions) => {
    sessions = sessions || [];
    if (sessions.length === 0) { clear(sessionsBox, h('p', { class: 'empty' }, 'No sessions on this node.')); return; }
    clear(sessionsBox, table(
      [{ title: 'ID' }, { title: 'Name' }, { title: 'Behavior' }, { title: 'TTL' }, { title: 'Lock delay' }, { title: '' }],
      sessions.map((s) => [
        h('code', {}, s.ID), s.Name || '', s.Behavior, s.TTL || '—', lockDelay(s.LockDelay),
        h('button', { type: 'button', class: 'danger', 'data-invalidate': s.ID, onclick: () => invalidate(ctx, s) }, 'Invalidate'),
      ])));
  });
}

function lockDelay(ns) {
  if (typeof ns !== 'number') return String(ns ?? '');
  return `${ns / 1e9}s`;
}

async function invalidate(ctx, s) {
  const ok = await confirmDialog('Invalidate session?',
    `Session ${s.ID}${s.Name ? ` (${s.Name})` : ''} will be destroyed: its locks are released (or its keys deleted, by its behavior).`,
    'Invalidate');
  if (!ok) return;
  try {
    await request('PUT', `/v1/session/destroy/${encodeURIComponent(s.ID)}`, { params: { dc: ctx.dc } });
    ctx.clearFail();
  } catch (e) {
    ctx.fail(e);
  }
}
