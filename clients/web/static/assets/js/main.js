// main.js — the panel's shell: tabs (created once, streams only while visible), the token
// dialog, the gateway health pill, and the notices for every error.

import * as api from './api.js';
import { setText } from './dom.js';
import { Notices } from './notices.js';
import { createSystemTab } from './tabs/system.js';
import { createModelsTab } from './tabs/models.js';
import { createLLMTab } from './tabs/llm.js';
import { createDiffusionTab } from './tabs/diffusion.js';
import { createResourcesTab } from './tabs/resources.js';

const TABS = {
  system: createSystemTab,
  models: createModelsTab,
  llm: createLLMTab,
  diffusion: createDiffusionTab,
  resources: createResourcesTab,
};

const notices = new Notices(document.getElementById('notices'));
const content = document.getElementById('tab-content');
const tabs = new Map(); // name -> {el, start(signal)}
const listeners = new Set();
let active = null; // {name, controller}

/** app is what every tab gets: the notices, and a way to tell the others that data changed. */
const app = {
  notices,
  /** changed tells the tabs that something they may show changed ("models", "llm", "jobs"). */
  changed(what) { for (const fn of listeners) fn(what); },
  onChanged(fn) { listeners.add(fn); },
  /** show switches to a tab. */
  show(name) { location.hash = `#${name}`; },
};

window.addEventListener('error', (e) => notices.error('Unexpected error in the page', e.error || e.message));
window.addEventListener('unhandledrejection', (e) => {
  e.preventDefault();
  if (api.isAbort(e.reason)) return;
  notices.error('Unexpected error in the page', e.reason);
});

function activate(name) {
  if (!TABS[name]) name = 'system';
  if (active && active.name === name) return;
  if (active) active.controller.abort();
  let tab = tabs.get(name);
  if (!tab) {
    tab = TABS[name](app);
    tab.el.dataset.tabPanel = name;
    tabs.set(name, tab);
  }
  const controller = new AbortController();
  active = { name, controller };
  content.replaceChildren(tab.el);
  for (const b of document.querySelectorAll('.tab-button')) {
    const on = b.dataset.tab === name;
    b.classList.toggle('active', on);
    b.setAttribute('aria-selected', on ? 'true' : 'false');
  }
  document.body.dataset.activeTab = name;
  try {
    tab.start(controller.signal);
  } catch (err) {
    notices.error(`Open the ${name} tab`, err);
  }
}

for (const b of document.querySelectorAll('.tab-button')) {
  b.addEventListener('click', () => app.show(b.dataset.tab));
}
window.addEventListener('hashchange', () => activate(location.hash.slice(1)));

// --- token dialog -----------------------------------------------------------------------

const dialog = document.getElementById('token-dialog');
const tokenInput = document.getElementById('token-input');
const tokenError = document.getElementById('token-error');

function openTokenDialog(message) {
  if (message) {
    setText(tokenError, message);
    tokenError.hidden = false;
  } else {
    tokenError.hidden = true;
  }
  tokenInput.value = api.getToken();
  if (!dialog.open) dialog.showModal();
  tokenInput.focus();
}

api.onUnauthorized((msg) => {
  const had = api.getToken() !== '';
  openTokenDialog(had ? `The gateway refused the token (${msg}). Enter the right one.` : 'The gateway requires a token.');
});

document.getElementById('token-button').addEventListener('click', () => openTokenDialog());
document.getElementById('token-cancel').addEventListener('click', () => dialog.close());
document.getElementById('token-clear').addEventListener('click', () => {
  api.setToken('');
  tokenInput.value = '';
  dialog.close();
  notices.info('Token forgotten.');
});
document.getElementById('token-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const t = tokenInput.value.trim();
  api.setToken(t);
  tokenError.hidden = true;
  // Check the token with a cheap authenticated call before closing.
  try {
    await api.get('/v1/system');
    dialog.close();
    // Start over with the token: every tab loads again and every stream reconnects.
    location.reload();
  } catch (err) {
    if (err.status !== 401) {
      dialog.close();
      notices.error('Check the token', err);
    }
    // 401: onUnauthorized has put the message in the dialog already.
  }
});

// --- gateway health ---------------------------------------------------------------------

const healthPill = document.getElementById('gateway-health');

async function checkHealth() {
  try {
    const r = await api.get('/health');
    const busy = r.busy ? ' (busy)' : '';
    setText(healthPill, `gateway ${r.status || 'ok'}${busy}`);
    healthPill.className = `pill ${r.status === 'ok' ? 'pill-ok' : 'pill-warn'}`;
  } catch (err) {
    setText(healthPill, 'gateway unreachable');
    healthPill.className = 'pill pill-error';
    notices.error('Check the gateway (GET /health)', err);
  }
}

checkHealth();
activate(location.hash.slice(1) || 'system');
