// dom.js — building the page from data without ever parsing server text as HTML:
// every string goes in through textContent or attribute setters.

/**
 * h creates an element: h('div.card#id', {attrs, on: {click}}, ...children). Children are
 * nodes, strings (as text), numbers, arrays, or null/false (skipped).
 */
export function h(spec, props, ...children) {
  if (props instanceof Node || typeof props !== 'object' || props === null || Array.isArray(props)) {
    children.unshift(props);
    props = {};
  }
  const m = /^([a-z0-9-]+)?((?:[.#][\w-]+)*)$/i.exec(spec);
  if (!m) throw new Error(`bad element spec ${spec}`);
  const el = document.createElement(m[1] || 'div');
  for (const part of m[2].match(/[.#][\w-]+/g) || []) {
    if (part[0] === '.') el.classList.add(part.slice(1)); else el.id = part.slice(1);
  }
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') {
      for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    } else if (k === 'class') {
      for (const c of String(v).split(/\s+/).filter(Boolean)) el.classList.add(c);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'style' && typeof v === 'object') {
      Object.assign(el.style, v);
    } else if (k in el && typeof v !== 'string') {
      el[k] = v;
    } else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** replace empties el and fills it with children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** setText sets an element's text (never HTML). */
export function setText(el, text) { el.textContent = text === undefined || text === null ? '' : String(text); }

// C0 controls (except tab and newline) and DEL are shown as their Unicode control pictures,
// so that random model output stays visible and cannot move the text around.
const CONTROL_RE = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

/** visible makes control characters visible (U+2400 pictures); U+FFFD stays as it is. */
export function visible(s) {
  return String(s).replace(CONTROL_RE, (c) => (c === '\u007f' ? '\u2421' : String.fromCharCode(0x2400 + c.charCodeAt(0))));
}

/** num parses a JSON number or int64-as-string; NaN-safe (0). */
export function num(v) {
  if (v === undefined || v === null || v === '') return 0;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : 0;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** bytes formats a byte count (number or string) in binary units. */
export function bytes(v) {
  let n = num(v);
  let i = 0;
  while (Math.abs(n) >= 1024 && i < UNITS.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)} ${UNITS[i]}`;
}

/** duration formats milliseconds as "1.2 s", "3 min 4 s". */
export function duration(ms) {
  const v = num(ms);
  if (v < 1000) return `${Math.round(v)} ms`;
  const s = v / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** time formats an RFC 3339 timestamp as local time; "—" when unset. */
export function time(ts, withDate = false) {
  if (!ts) return '—';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime()) || d.getTime() <= 0) return '—';
  return withDate ? d.toLocaleString() : d.toLocaleTimeString();
}

/** enumLabel turns "SERVER_STATUS_RUNNING" into "running" given the prefix. */
export function enumLabel(v, prefix) {
  if (!v) return 'unknown';
  let s = String(v);
  if (prefix && s.startsWith(prefix)) s = s.slice(prefix.length);
  return s.toLowerCase().replace(/_/g, ' ');
}

/**
 * progressLabel is the one text of a generation's Progress, wherever the panel shows one (the
 * progress bar, the status cards): the percent, the stage, and the step once sampling runs
 * (loading and encoding are stages of their own, not "step 0/N").
 */
export function progressLabel(p) {
  const stage = enumLabel(p.stage, 'STAGE_');
  const sampling = num(p.step) > 0 && num(p.totalSteps) > 0;
  return `${num(p.percent).toFixed(0)}% · ${stage}${sampling ? ` · step ${num(p.step)}/${num(p.totalSteps)}` : ''}`;
}

/** field is a label/value pair for status grids. */
export function field(label, value, opts = {}) {
  const v = value instanceof Node ? value : h('span.value', opts.valueProps || {}, value === undefined || value === null || value === '' ? '—' : String(value));
  return h('div.field', opts.props || {}, h('label', label), v);
}

/** card is a titled section. */
export function card(title, ...children) {
  const props = children.length && children[0] && typeof children[0] === 'object' && !(children[0] instanceof Node) && !Array.isArray(children[0]) ? children.shift() : {};
  return h('section.card', props, title ? h('h3.card-title', title) : null, ...children);
}

/** statusDot is a coloured dot with a label for a ServerStatus value. */
export function statusPill(status, extraClass = '') {
  const label = enumLabel(status, 'SERVER_STATUS_');
  const cls = {
    running: 'pill-ok', starting: 'pill-warn', stopping: 'pill-warn', crashed: 'pill-error', stopped: 'pill-off',
  }[label] || 'pill-unknown';
  return h('span', { class: `pill ${cls} ${extraClass}`, dataset: { status: label } }, label);
}

export function healthPill(health) {
  const label = enumLabel(health, 'HEALTH_STATUS_');
  const cls = { ok: 'pill-ok', error: 'pill-error' }[label] || 'pill-unknown';
  return h('span', { class: `pill ${cls}` }, label);
}

/** input helpers for forms; each returns the control, with a label wrapper via formField. */
export function formField(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h('div.form-group', h('label', { for: id }, label), control, hint ? h('small.hint', hint) : null);
}

/** intOrUndefined reads a number input: empty → undefined. */
export function intValue(input) {
  const s = input.value.trim();
  if (s === '') return undefined;
  const n = Number(s);
  if (!Number.isFinite(n) || !Number.isInteger(n)) throw new Error(`${input.dataset.label || input.id}: "${s}" is not a whole number`);
  return n;
}

export function floatValue(input) {
  const s = input.value.trim();
  if (s === '') return undefined;
  const n = Number(s);
  if (!Number.isFinite(n)) throw new Error(`${input.dataset.label || input.id}: "${s}" is not a number`);
  return n;
}

/**
 * setDisabled records whether a button should be disabled (for example because the server is
 * running); while busy() runs on the button, the wish is applied when it ends.
 */
export function setDisabled(button, disabled) {
  button.dataset.wantDisabled = disabled ? '1' : '';
  if (!button.dataset.busy) button.disabled = disabled;
}

/** busy disables a button while fn runs, then leaves it as setDisabled last asked. */
export async function busy(button, fn, label) {
  const old = button.textContent;
  button.disabled = true;
  button.dataset.busy = '1';
  button.setAttribute('aria-busy', 'true');
  if (label) button.textContent = label;
  try { return await fn(); } finally {
    delete button.dataset.busy;
    button.removeAttribute('aria-busy');
    button.disabled = button.dataset.wantDisabled === '1';
    button.textContent = old;
  }
}

/** progressBar creates a bar with a set(percent, text) method. */
export function progressBar(cls = '') {
  const fill = h('div.progress-fill');
  const label = h('span.progress-label');
  const bar = h('div', { class: `progress ${cls}`, role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0' }, fill, label);
  bar.set = (percent, text) => {
    const p = Math.max(0, Math.min(100, num(percent)));
    fill.style.width = `${p}%`;
    bar.setAttribute('aria-valuenow', p.toFixed(1));
    bar.dataset.percent = p.toFixed(1);
    setText(label, text === undefined ? `${p.toFixed(0)}%` : text);
  };
  return bar;
}
