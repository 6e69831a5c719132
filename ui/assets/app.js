// The shell: datacenter, navigation, login, and a small router over
// history URLs under the content path (/ui/<dc>/services/<name>, …), so a
// deep link survives a reload (the agent answers index.html for them).

import { h, clear } from './dom.js';
import { ApiError, getJSON, url as apiUrl, Watch } from './api.js';
import * as auth from './auth.js';
import * as services from './services.js';
import * as nodes from './nodes.js';
import * as kv from './kv.js';
import * as tokens from './tokens.js';
import * as policies from './policies.js';
import * as roles from './roles.js';

const ACL_PAGES = { tokens, policies, roles };

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

function loginButton() {
  return h('button', { type: 'button', class: 'secondary login-link', onclick: () => auth.loginDialog() }, 'Log in');
}

// What every page gets: its datacenter, where to draw, and watches and
// error reporting that end when the user navigates away.
function pageContext(dc) {
  const page = { watches: [], errors: new Map(), hidden: new Set() };
  const banner = h('div', { class: 'banner error', role: 'alert', hidden: true });
  const filtered = h('div', { class: 'banner info', id: 'filtered-note', role: 'status', hidden: true },
    'Some results are hidden: the token in use may not read them.');
  const report = () => {
    const errs = [...page.errors.values()];
    const msgs = [...new Set(errs.map((e) => e.message))];
    banner.hidden = msgs.length === 0;
    // A refusal comes with the way out: log in with another token.
    clear(banner, msgs.join(' '), errs.some((e) => e.kind === 'denied') ? [' ', loginButton()] : null);
  };
  const asError = (err) => (err instanceof ApiError ? err : new ApiError('other', String(err), 0));
  page.ctx = {
    dc,
    main,
    banner,
    link: (path) => link(`${encodeURIComponent(dc)}/${path}`),
    navigate: (path, opts) => navigate(`${encodeURIComponent(dc)}/${path}`, opts),
    // A live view of `path`; it stops when the page is left.
    watch(path, params, onData, opts) {
      const w = new Watch(path, { ...params, dc }, (data, headers) => {
        // Consul sets this only for requests that carried a token.
        if (headers.get('X-Consul-Results-Filtered-By-ACLs') === 'true') page.hidden.add(w); else page.hidden.delete(w);
        filtered.hidden = page.hidden.size === 0;
        onData(data);
      }, (err) => {
        if (err) page.errors.set(w, asError(err)); else page.errors.delete(w);
        report();
      }, opts);
      page.watches.push(w);
      return w.start();
    },
    // Shows an error from a one-off request in the page's banner.
    fail(err) {
      page.errors.set('action', asError(err));
      report();
    },
    clearFail() { page.errors.delete('action'); report(); },
    // An empty list: with ACLs on and nobody logged in, the likely reason
    // is that the anonymous token may not see anything, so say that.
    empty(what, text) {
      if (auth.anonymousUnderAcls()) {
        return h('div', { class: 'empty denied' }, h('p', {}, `Permission denied: you are not logged in, and the anonymous token may not see any ${what}.`), loginButton());
      }
      return h('p', { class: 'empty' }, text);
    },
    // The API call behind a view, so users can learn the API.
    apiLink(path, params) {
      const u = apiUrl(path, { ...params, dc });
      return h('p', { class: 'api' }, 'API: ', h('a', { href: u, target: '_blank', rel: 'noopener', 'data-api': path }, h('code', {}, `GET ${u}`)));
    },
  };
  page.ctx.filtered = filtered;
  return page;
}

// Above every page with ACLs on and nobody logged in.
function loginPrompt() {
  if (!auth.anonymousUnderAcls()) return null;
  return h('div', { class: 'banner info', id: 'login-prompt' },
    auth.auth.lost ? 'The token you were logged in with no longer works (deleted or expired), so it was forgotten. ' : '',
    'You are not logged in: with ACLs on, you see only what the anonymous token may see. ', loginButton());
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

function markNav(dc, here) {
  for (const a of document.querySelectorAll('#nav a')) {
    const section = a.dataset.section;
    a.href = link(`${encodeURIComponent(dc)}/${section}${section === 'kv' ? '/' : ''}`);
    if (here === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // The ACL sections only where ACLs are on.
  for (const li of document.querySelectorAll('#nav [data-acl]')) li.hidden = auth.auth.enabled !== true;
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
  if (section === 'acls' && !rest[0]) { navigate(`${encodeURIComponent(dc)}/acls/tokens`, { replace: true }); return; }
  markNav(dc, section === 'acls' ? `acls/${rest[0]}` : section);
  const page = pageContext(dc);
  current = page;
  clear(main, loginPrompt(), page.ctx.banner, page.ctx.filtered);
  const name = rest.length ? decodeURIComponent(rest.join('/')) : '';
  try {
    if (section === 'services' && rest.length === 0) services.list(page.ctx);
    else if (section === 'services' && rest.length === 1) services.detail(page.ctx, name);
    else if (section === 'nodes' && rest.length === 0) nodes.list(page.ctx);
    else if (section === 'nodes' && rest.length === 1) nodes.detail(page.ctx, name);
    else if (section === 'kv') kv.render(page.ctx, rest.map(decodeURIComponent).join('/'));
    else if (section === 'acls' && ACL_PAGES[rest[0]] && rest.length <= 2) aclPage(page.ctx, ACL_PAGES[rest[0]], rest[1]);
    else notFound();
  } catch (e) {
    page.ctx.fail(e);
  }
  document.title = `${document.querySelector('main h1')?.textContent || 'Consul'} - Consul`;
}

// tokens, policies, roles: the list, `new`, or one item by ID.
function aclPage(ctx, mod, id) {
  if (auth.auth.enabled === false) {
    ctx.main.append(h('h1', {}, mod.TITLE), h('div', { class: 'empty', id: 'acl-disabled' },
      h('p', {}, 'ACLs are disabled on this agent (GET /v1/acl/token/self answers “ACL support disabled”).'),
      h('p', {}, 'Turn them on with an acl { enabled = true } block in the configuration of every agent, then restart.')));
    return;
  }
  if (id === undefined || id === '') mod.list(ctx);
  else mod.edit(ctx, id === 'new' ? null : decodeURIComponent(id));
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

function updateLoginButton() {
  const b = document.getElementById('token-button');
  b.textContent = auth.buttonLabel();
  b.title = auth.loggedIn() ? `Logged in: AccessorID ${auth.auth.self.AccessorID}` : '';
}

async function start() {
  document.getElementById('token-button').addEventListener('click', () => auth.loginDialog());
  // A login or logout redraws the page with the new token's view.
  let started = false;
  auth.onChange(() => { updateLoginButton(); if (started) route(); });
  await auth.refresh();
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
    const [, section, sub] = splitPath();
    let keep = ['services', 'nodes', 'kv'].includes(section) ? section : 'services';
    if (section === 'acls' && ACL_PAGES[sub]) keep = `acls/${sub}`;
    navigate(`${encodeURIComponent(select.value)}/${keep}${keep === 'kv' ? '/' : ''}`);
  });
  started = true;
  route();
}

start();
