// Building DOM nodes. Everything is created with the DOM API; strings
// become text nodes, never HTML, so values from the cluster (KV values,
// check output, names) cannot inject markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A status badge: the word is there for screen readers and colour-blind
// users, the colour only repeats it.
export function badge(status, text) {
  return h('span', { class: `badge ${status || 'none'}` }, text ?? status);
}

export function tags(list) {
  return (list || []).map((t) => h('span', { class: 'tag' }, t));
}

export function meta(obj) {
  const entries = Object.entries(obj || {});
  if (entries.length === 0) return null;
  return h('dl', { class: 'meta' }, entries.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

// A table whose rows become labelled cards on narrow screens.
export function table(columns, rows) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'stack' },
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.title)))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((cell, i) =>
        h('td', { 'data-label': columns[i].title, class: columns[i].num ? 'num' : null }, cell)))))));
}

// A modal confirmation. Resolves true only on the confirm button.
export function confirmDialog(title, message, confirmText) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-title' },
      h('h2', { id: 'confirm-title' }, title),
      h('p', {}, message),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'danger', 'data-confirm': 'yes', onclick: () => dlg.close('yes') }, confirmText),
        h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close('no') }, 'Cancel')));
    dlg.addEventListener('close', () => { dlg.remove(); resolve(dlg.returnValue === 'yes'); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

// The worst of a set of check statuses, as Consul ranks them.
export function worst(statuses) {
  if (statuses.includes('critical')) return 'critical';
  if (statuses.includes('warning')) return 'warning';
  if (statuses.length > 0) return 'passing';
  return null;
}
