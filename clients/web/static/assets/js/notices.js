// notices.js — every failed call ends up here as a visible message (never only in the console).

import { h, setText } from './dom.js';

/** Notices shows error and info messages at the top of the page. */
export class Notices {
  constructor(el) {
    this.el = el;
    this.byKey = new Map();
  }

  /** error shows err (an Error or a string), prefixed with what was being done. */
  error(what, err) {
    const msg = err === undefined ? String(what) : `${what}: ${err && err.message ? err.message : String(err)}`;
    return this.show('error', msg);
  }

  /** info shows a message that goes away by itself. */
  info(msg) { return this.show('info', msg, 6000); }

  show(kind, msg, ttl) {
    const key = `${kind}:${msg}`;
    const old = this.byKey.get(key);
    if (old) {
      old.count++;
      setText(old.countEl, `×${old.count}`);
      this.el.prepend(old.el);
      return old;
    }
    const countEl = h('span.notice-count');
    const entry = { count: 1, countEl };
    const close = h('button.notice-close', { type: 'button', title: 'Dismiss', 'aria-label': 'Dismiss', on: { click: () => this.remove(key) } }, '×');
    entry.el = h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
      h('span.notice-text', msg), countEl, close);
    this.byKey.set(key, entry);
    this.el.prepend(entry.el);
    if (ttl) setTimeout(() => this.remove(key), ttl);
    // Keep the list short: the oldest go first.
    while (this.byKey.size > 8) this.remove(this.byKey.keys().next().value);
    return entry;
  }

  remove(key) {
    const e = this.byKey.get(key);
    if (!e) return;
    e.el.remove();
    this.byKey.delete(key);
  }

  /** clear removes the messages whose text starts with prefix (for example after a retry worked). */
  clear(prefix) {
    for (const [key, e] of [...this.byKey]) {
      if (key.slice(key.indexOf(':') + 1).startsWith(prefix)) { e.el.remove(); this.byKey.delete(key); }
    }
  }
}
