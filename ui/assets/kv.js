// Key/Value: browse folders, view, create, edit and delete keys. Every
// write is a check-and-set (`?cas=`): creating uses cas=0 (refused if the
// key exists) and saving or deleting uses the ModifyIndex the page was
// loaded with, so a concurrent change is reported instead of overwritten.
// Values are shown in a textarea or a <pre> as text, never as HTML; values
// that are not UTF-8 are shown in base64, read-only.

import { h, clear, confirmDialog } from './dom.js';
import { request, getJSON, encodePath, ApiError } from './api.js';

export function render(ctx, path) {
  if (path === '' || path.endsWith('/')) folder(ctx, path);
  else key(ctx, path);
}

function kvLink(ctx, p) { return ctx.link(`kv/${encodePath(p)}`); }

function crumbs(ctx, path) {
  const parts = path.split('/');
  const out = [h('a', { href: kvLink(ctx, '') }, 'Key/Value')];
  let acc = '';
  // Each folder above the item; the last part is the item itself.
  for (let i = 0; i < parts.length - 1; i += 1) {
    acc += `${parts[i]}/`;
    out.push(' / ', h('a', { href: kvLink(ctx, acc) }, parts[i] || '(empty)'));
  }
  return h('p', { class: 'crumbs' }, out, ' /');
}

function parentOf(path) {
  const trimmed = path.endsWith('/') ? path.slice(0, -1) : path;
  const i = trimmed.lastIndexOf('/');
  return i < 0 ? '' : trimmed.slice(0, i + 1);
}

function folder(ctx, prefix) {
  const listPath = `/v1/kv/${encodePath(prefix)}`;
  const body = h('div', { id: 'kv-list' }, h('p', { class: 'loading' }, 'Loading keys…'));
  const title = prefix ? prefix.slice(0, -1).split('/').pop() || '(empty)' : 'Key/Value';
  const notice = h('div', { class: 'banner ok', role: 'status', hidden: true });
  // (Element.append would write a null as the text "null".)
  ctx.main.append(...[prefix ? crumbs(ctx, prefix) : null, h('h1', {}, title),
    ctx.apiLink(listPath, { keys: true, separator: '/' }), notice,
    prefix ? h('div', { class: 'actions' }, h('button', {
      type: 'button', class: 'danger', id: 'kv-delete-folder',
      onclick: () => deleteFolder(ctx, prefix),
    }, 'Delete folder')) : null,
    body,
    createForm(ctx, prefix)].filter(Boolean));
  ctx.watch(listPath, { keys: true, separator: '/' }, (keys) => {
    keys = (keys || []).filter((k) => k !== prefix);
    if (keys.length === 0) {
      clear(body, ctx.empty('keys', prefix ? `No keys under “${prefix}”.` : 'No keys yet. Create one below.'));
      return;
    }
    const rows = keys.map((k) => {
      const name = k.slice(prefix.length);
      const isFolder = k.endsWith('/');
      return h('li', { class: isFolder ? 'folder' : 'key' }, h('a', { href: kvLink(ctx, k), 'data-key': k }, name));
    });
    clear(body, h('p', { class: 'muted' }, `${keys.length} item${keys.length === 1 ? '' : 's'}`),
      h('ul', { class: 'kv-list' }, rows));
  }, { notFoundOk: true });
}

function createForm(ctx, prefix) {
  const name = h('input', { type: 'text', id: 'kv-new-key', required: true, autocomplete: 'off', spellcheck: 'false' });
  const value = h('textarea', { id: 'kv-new-value', spellcheck: 'false' });
  const form = h('form', { class: 'card', id: 'kv-create' },
    h('h3', {}, 'Create'),
    h('label', { for: 'kv-new-key' }, `Key or folder (end with “/”)${prefix ? ` under ${prefix}` : ''}`), name,
    h('label', { for: 'kv-new-value' }, 'Value'), value,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const full = prefix + name.value;
    if (!name.value) return;
    const isFolder = full.endsWith('/');
    try {
      // cas=0: only if no such key exists yet.
      const ok = await putKey(ctx, full, isFolder ? '' : value.value, 0);
      if (!ok) { ctx.fail(`A key named “${full}” already exists; open it to edit it.`); return; }
      ctx.clearFail();
      ctx.navigate(`kv/${encodePath(full)}`);
    } catch (err) { ctx.fail(err); }
  });
  return form;
}

async function putKey(ctx, k, body, cas) {
  const resp = await request('PUT', `/v1/kv/${encodePath(k)}`, { params: { dc: ctx.dc, cas }, body });
  return (await resp.text()).trim() === 'true';
}

async function deleteFolder(ctx, prefix) {
  const ok = await confirmDialog('Delete folder?',
    `“${prefix}” and every key under it will be deleted. This cannot be undone.`, 'Delete folder');
  if (!ok) return;
  try {
    await request('DELETE', `/v1/kv/${encodePath(prefix)}`, { params: { dc: ctx.dc, recurse: true } });
    ctx.navigate(`kv/${encodePath(parentOf(prefix))}`);
  } catch (e) { ctx.fail(e); }
}

function decodeValue(b64) {
  if (b64 === null || b64 === undefined) return { text: '', bytes: 0, binary: false };
  const raw = atob(b64);
  const bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), bytes: bytes.length, binary: false };
  } catch {
    return { text: b64, bytes: bytes.length, binary: true };
  }
}

function key(ctx, k) {
  const path = `/v1/kv/${encodePath(k)}`;
  const body = h('div', { id: 'kv-entry' }, h('p', { class: 'loading' }, 'Loading…'));
  const notice = h('div', { class: 'banner ok', role: 'status', id: 'kv-notice', hidden: true });
  ctx.main.append(crumbs(ctx, k), h('h1', {}, k.split('/').pop()), ctx.apiLink(path), notice, body);

  const load = async () => {
    let entries;
    try {
      entries = await getJSON(path, { params: { dc: ctx.dc }, notFoundOk: true });
    } catch (e) { ctx.fail(e); return; }
    const entry = entries && entries[0];
    if (!entry) {
      clear(body, h('p', { class: 'empty' }, `No key “${k}” (it may have been deleted).`),
        h('p', {}, h('a', { href: kvLink(ctx, parentOf(k)) }, 'Back to the folder')));
      return;
    }
    show(entry);
  };

  const show = (entry) => {
    const v = decodeValue(entry.Value);
    const value = v.binary
      ? h('pre', { class: 'value', id: 'kv-value' }, v.text)
      : h('textarea', { id: 'kv-value', spellcheck: 'false', value: v.text, 'aria-label': 'Value' });
    const save = h('button', { type: 'button', id: 'kv-save', disabled: v.binary }, 'Save');
    const del = h('button', { type: 'button', class: 'danger', id: 'kv-delete' }, 'Delete');
    save.addEventListener('click', async () => {
      notice.hidden = true;
      try {
        const ok = await putKey(ctx, k, value.value, entry.ModifyIndex);
        if (!ok) { conflict(); return; }
        ctx.clearFail();
        notice.textContent = 'Saved.';
        notice.hidden = false;
        await load();
        notice.hidden = false;
      } catch (e) { ctx.fail(e); }
    });
    del.addEventListener('click', async () => {
      const ok = await confirmDialog('Delete key?', `“${k}” will be deleted. This cannot be undone.`, 'Delete');
      if (!ok) return;
      try {
        const resp = await request('DELETE', path, { params: { dc: ctx.dc, cas: entry.ModifyIndex } });
        if ((await resp.text()).trim() !== 'true') { conflict(); return; }
        ctx.navigate(`kv/${encodePath(parentOf(k))}`);
      } catch (e) { ctx.fail(e); }
    });
    clear(body,
      h('dl', { class: 'meta' },
        h('dt', {}, 'Size'), h('dd', {}, `${v.bytes} bytes${v.binary ? ' (not UTF-8 text: shown as base64, read-only here)' : ''}`),
        h('dt', {}, 'Flags'), h('dd', {}, String(entry.Flags)),
        h('dt', {}, 'Modify index'), h('dd', { id: 'kv-modify-index' }, String(entry.ModifyIndex)),
        entry.Session ? [h('dt', {}, 'Locked by session'), h('dd', {}, entry.Session)] : null),
      v.binary ? null : h('label', { for: 'kv-value' }, 'Value'), value,
      h('div', { class: 'actions' }, save, del));
  };

  // Someone else changed or deleted the key since it was loaded: keep the
  // user's text on screen and say so, rather than overwrite their change.
  const conflict = () => {
    const reload = h('button', { type: 'button', class: 'secondary', onclick: () => { ctx.clearFail(); notice.hidden = true; load(); } }, 'Reload the current value');
    ctx.fail(new ApiError('conflict', `Not saved: “${k}” was changed or deleted by someone else since this page loaded it. Your text is still below; reload to see the current value, then apply your change again.`));
    notice.hidden = true;
    ctx.banner.append(' ', reload);
  };

  load();
}
