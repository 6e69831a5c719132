// The shell: datacenter, navigation, token, and a small router over
// history URLs under the content path (/ui/<dc>/services/<name>, …), so a
// deep link survives a reload (the agent answers index.html for them).

import { h, clear } from './dom.js';
import { ApiError, getJSON, token, url as apiUrl, Watch } from './api.js';
import * as services from './services.js';
import * as nodes from './nodes.js';
import * as kv from './kv.js';

const base = document.querySelector('meta[name="ui-content-path"]').content;
const main = document.getElementById('main');
let localDc = null;
let current = null; // the page on screen: { watches, cleanups }

function link(path) { return base + path; }

export function navigate(path, { replace = false } = {}) {
  const target = path.startsWith('/') ? path : link(path);
  if (replace) history.replaceState(null, '', target);
  else history.pushState(null, '', target);
  route();
}

// What every page gets: its datacenter, where to draw, and watches and
// error reporting that end when the user navigates away.
function pageContext(dc) {
  const page = { watches: [], errors: new Map() };
  const banner = h('div', { class: 'banner error', role: 'alert', hidden: true });
  const report = () => {
    const msgs = [...new Set(page.errors.values())];
    banner.hidden = msgs.length === 0;
    banner.textContent = msgs.join(' ');
  };
  page.ctx = {
    dc,
    main,
    banner,
    link: (path) => link(`${encodeURIComponent(dc)}/${path}`),
    navigate: (path, opts) => navigate(`${encodeURIComponent(dc)}/${path}`, opts),
    // A live view of `path`; it stops when the page is left.
    watch(path, params, onData, opts) {
      const w = new Watch(path, { ...params, dc }, (data) => {
        onData(data);
      }, (err) => {
        if (err) page.errors.set(w, err.message); else page.errors.delete(w);
        report();
      }, opts);
      page.watches.push(w);
      return w.start();
    },
    // Shows an error from a one-off request in the page's banner.
    fail(err) {
      page.errors.set('action', err instanceof ApiError ? err.message : String(err));
      report();
    },
    clearFail() { page.errors.delete('action'); report(); },
    // The API call behind a view, so users can learn the API.
    apiLink(path, params) {
      const u = apiUrl(path, { ...params, dc });
      return h('p', { class: 'api' }, 'API: ', h('a', { href: u, target: '_blank', rel: 'noopener', 'data-api': path }, h('code', {}, `GET ${u}`)));
    },
  };
  return page;
}

function leave() {
  if (!current) return;
  for (const w of current.watches) w.stop();
  current = null;
}

function splitPath() {
  const rest = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : '';
  return rest.split('/');
}

function markNav(dc, section) {
  for (const a of document.querySelectorAll('#nav a')) {
    a.href = link(`${encodeURIComponent(dc)}/${a.dataset.section}${a.dataset.section === 'kv' ? '/' : ''}`);
    if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.getElementById('brand').href = link(`${encodeURIComponent(dc)}/services`);
  const select = document.getElementById('dc');
  if (select.value !== dc) select.value = dc;
}

function route() {
  leave();
  const parts = splitPath();
  const [dcPart, section, ...rest] = parts;
  if (!dcPart) { navigate(`${encodeURIComponent(localDc)}/services`, { replace: true }); return; }
  const dc = decodeURIComponent(dcPart);
  if (!section) { navigate(`${encodeURIComponent(dc)}/services`, { replace: true }); return; }
  markNav(dc, section);
  const page = pageContext(dc);
  current = page;
  clear(main, page.ctx.banner);
  const name = rest.length ? decodeURIComponent(rest.join('/')) : '';
  try {
    if (section === 'services' && rest.length === 0) services.list(page.ctx);
    else if (section === 'services' && rest.length === 1) services.detail(page.ctx, name);
    else if (section === 'nodes' && rest.length === 0) nodes.list(page.ctx);
    else if (section === 'nodes' && rest.length === 1) nodes.detail(page.ctx, name);
    else if (section === 'kv') kv.render(page.ctx, rest.map(decodeURIComponent).join('/'));
    else notFound();
  } catch (e) {
    page.ctx.fail(e);
  }
  document.title = `${document.querySelector('main h1')?.textContent || 'Consul'} - Consul`;
}

function notFound() {
  main.append(h('h1', {}, 'Page not found'),
    h('p', {}, 'Nothing here. ', h('a', { href: link(`${encodeURIComponent(localDc)}/services`) }, 'Go to services'), '.'));
}

// Links inside the app change the page without a reload.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  if (a.target || a.origin !== location.origin || !a.pathname.startsWith(base)) return;
  e.preventDefault();
  history.pushState(null, '', a.pathname + a.search);
  route();
  main.focus();
});
window.addEventListener('popstate', route);

function tokenDialog() {
  const input = h('input', { type: 'password', id: 'token-input', autocomplete: 'off', value: token.get() });
  const dlg = h('dialog', { 'aria-labelledby': 'token-title' },
    h('h2', { id: 'token-title' }, 'ACL token'),
    h('p', { class: 'muted' }, 'Sent as X-Consul-Token with every request this UI makes. Kept in this browser\'s local storage only.'),
    h('form', { method: 'dialog' },
      h('label', { for: 'token-input' }, 'Secret ID'), input,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', value: 'save' }, 'Save'),
        h('button', { type: 'submit', value: 'clear', class: 'secondary' }, 'Forget token'),
        h('button', { type: 'submit', value: 'cancel', class: 'secondary' }, 'Cancel'))));
  dlg.addEventListener('close', () => {
    if (dlg.returnValue === 'save') token.set(input.value.trim());
    if (dlg.returnValue === 'clear') token.set('');
    dlg.remove();
    updateTokenButton();
    if (dlg.returnValue === 'save' || dlg.returnValue === 'clear') route();
  });
  document.body.append(dlg);
  dlg.showModal();
}

function updateTokenButton() {
  document.getElementById('token-button').textContent = token.get() ? 'Token (set)' : 'Token';
}

async function start() {
  document.getElementById('token-button').addEventListener('click', tokenDialog);
  updateTokenButton();
  let dcs = [];
  try {
    const self = await getJSON('/v1/agent/self');
    localDc = self?.Config?.Datacenter;
  } catch { /* may be denied; the list below names one */ }
  try { dcs = (await getJSON('/v1/catalog/datacenters')) || []; } catch { /* shown by the page */ }
  localDc = localDc || dcs[0] || 'dc1';
  if (!dcs.includes(localDc)) dcs.unshift(localDc);
  const select = document.getElementById('dc');
  clear(select, dcs.map((dc) => h('option', { value: dc }, dc)));
  document.getElementById('dc-box').hidden = dcs.length < 2;
  select.addEventListener('change', () => {
    const [, section] = splitPath();
    const keep = ['services', 'nodes', 'kv'].includes(section) ? section : 'services';
    navigate(`${encodeURIComponent(select.value)}/${keep}${keep === 'kv' ? '/' : ''}`);
  });
  route();
}

start();
