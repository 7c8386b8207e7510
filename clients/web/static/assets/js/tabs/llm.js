// LLM Server tab: every start option, start/stop/restart, status/PID/health (live from
// /v1/llm/watch), live logs (/v1/llm/logs?follow=true) and a test chat that streams tokens.

import * as api from '../api.js';
import {
  h, replace, card, field, setDisabled, bytes, num, duration, time, busy, formField, setText, visible,
  statusPill, healthPill, enumLabel, intValue, floatValue,
} from '../dom.js';
import { markers } from '../timeline.js';

const CACHE_TYPES = ['', 'f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'iq4_nl', 'q5_0', 'q5_1'];
const MAX_LOG_LINES = 1000;

export function createLLMTab(app) {
  let info = null;

  // --- status -------------------------------------------------------------------------
  const statusEl = h('div.status-grid#llm-status', h('p.muted', 'Connecting…'));
  const liveEl = h('span.pill.pill-unknown.stream-state#llm-stream', 'connecting');

  function renderStatus(i) {
    info = i || {};
    const exit = info.lastExit;
    replace(statusEl,
      field('Status', statusPill(info.status), { props: { id: 'llm-status-field' } }),
      field('Health', healthPill(info.health)),
      field('PID', num(info.pid) ? String(info.pid) : '—', { props: { id: 'llm-pid' } }),
      field('Port', num(info.port) ? String(info.port) : '—'),
      field('Model', info.modelId),
      field('Started', time(info.startedAt, true)),
      field('Restarts', String(num(info.restarts))),
      field('Chat requests in flight', String(num(info.inFlightRequests))),
      field('Offloaded', info.offloaded ? 'yes — chat waits for the reload' : 'no'),
      field('Base URL', info.baseUrl),
      field('Binary', info.binaryPath),
      field('Last exit', exit ? (exit.signal ? `signal ${exit.signal}` : `exit code ${exit.exitCode}`) + ` at ${time(exit.time)}` : '—'),
      info.lastError ? field('Last error', info.lastError, { props: { class: 'field-error' } }) : null);
    const running = info.status === 'SERVER_STATUS_RUNNING' || info.status === 'SERVER_STATUS_STARTING';
    setDisabled(startBtn, running);
    setDisabled(stopBtn, !running && info.status !== 'SERVER_STATUS_CRASHED');
    fillPlaceholders(info.config || {});
  }

  // --- start options ------------------------------------------------------------------
  const modelSel = h('select#llm-model', h('option', { value: '' }, 'Loading models…'));
  const hostIn = h('input#llm-host', { placeholder: '127.0.0.1', dataset: { label: 'Host' } });
  const portIn = h('input#llm-port', { type: 'number', min: '0', max: '65535', placeholder: 'auto', dataset: { label: 'Port' } });
  const threadsIn = h('input#llm-threads', { type: 'number', min: '0', placeholder: 'auto', dataset: { label: 'Threads' } });
  const ctxIn = h('input#llm-context', { type: 'number', min: '0', placeholder: 'auto', dataset: { label: 'Context size' } });
  const nglIn = h('input#llm-gpu-layers', { type: 'number', min: '-1', placeholder: 'auto (-1 = all)', dataset: { label: 'GPU layers' } });
  const npIn = h('input#llm-parallel', { type: 'number', min: '0', placeholder: 'default', dataset: { label: 'Parallel slots' } });
  const faSel = h('select#llm-flash-attention',
    h('option', { value: 'FLASH_ATTENTION_UNSPECIFIED' }, 'auto'),
    h('option', { value: 'FLASH_ATTENTION_ON' }, 'on'),
    h('option', { value: 'FLASH_ATTENTION_OFF' }, 'off'));
  const ctkSel = h('select#llm-cache-k', CACHE_TYPES.map((c) => h('option', { value: c }, c || 'default')));
  const ctvSel = h('select#llm-cache-v', CACHE_TYPES.map((c) => h('option', { value: c }, c || 'default')));
  const noMmap = h('input#llm-no-mmap', { type: 'checkbox' });
  const autoRestart = h('input#llm-auto-restart', { type: 'checkbox', checked: true });
  const extraIn = h('textarea#llm-extra-args', { rows: 2, placeholder: 'one argument per line, e.g. --mlock' });
  const readyIn = h('input#llm-ready-timeout', { type: 'number', min: '0', placeholder: 'service default', dataset: { label: 'Ready timeout' } });
  const startBtn = h('button.btn.btn-primary#llm-start', { type: 'button' }, 'Start Server');
  const stopBtn = h('button.btn.btn-danger#llm-stop', { type: 'button' }, 'Stop Server');
  const restartBtn = h('button.btn.btn-secondary#llm-restart', { type: 'button' }, 'Restart');
  let userTouched = false;

  function fillPlaceholders(c) {
    const ph = (input, v, dflt) => { input.placeholder = num(v) ? `auto (now ${v})` : dflt; };
    ph(portIn, c.port, 'auto');
    ph(threadsIn, c.threads, 'auto');
    ph(ctxIn, c.contextSize, 'auto');
    nglIn.placeholder = c.gpuLayers !== undefined && c.gpuLayers !== null ? `auto (now ${c.gpuLayers})` : 'auto (-1 = all)';
    ph(npIn, c.parallelSlots, 'default');
    if (!userTouched && c.modelId) {
      if (![...modelSel.options].some((o) => o.value === c.modelId)) modelSel.append(h('option', { value: c.modelId }, c.modelId));
      modelSel.value = c.modelId;
      faSel.value = c.flashAttention || 'FLASH_ATTENTION_UNSPECIFIED';
      ctkSel.value = c.cacheTypeK || '';
      ctvSel.value = c.cacheTypeV || '';
      noMmap.checked = !!c.noMmap;
      autoRestart.checked = c.autoRestart !== false;
      extraIn.value = (c.extraArgs || []).join('\n');
    }
  }

  const configForm = h('form.llm-config#llm-config',
    { on: { input: () => { userTouched = true; }, submit: (e) => e.preventDefault() } },
    h('div.form-row', formField('Model', modelSel), formField('Host', hostIn), formField('Port', portIn)),
    h('div.form-row', formField('Threads', threadsIn), formField('Context size', ctxIn), formField('GPU layers', nglIn), formField('Parallel slots', npIn)),
    h('div.form-row', formField('Flash attention', faSel), formField('KV cache type K', ctkSel), formField('KV cache type V', ctvSel), formField('Ready timeout (s)', readyIn)),
    h('div.form-row.checks',
      h('label.check', noMmap, ' No mmap (--no-mmap)'),
      h('label.check', autoRestart, ' Restart automatically after a crash')),
    formField('Extra llama-server arguments', extraIn, 'Checked against an allow-list by the service; never passed through a shell.'),
    h('div.button-group', startBtn, stopBtn, restartBtn));

  function readConfig() {
    const model = modelSel.value;
    if (!model) throw new Error('choose a model (download one in the Models tab first)');
    const cfg = {
      modelId: model,
      flashAttention: faSel.value,
      noMmap: noMmap.checked,
      autoRestart: autoRestart.checked,
      extraArgs: extraIn.value.split('\n').map((s) => s.trim()).filter(Boolean),
    };
    if (hostIn.value.trim()) cfg.host = hostIn.value.trim();
    const set = (k, input) => { const v = intValue(input); if (v !== undefined) cfg[k] = v; };
    set('port', portIn);
    set('threads', threadsIn);
    set('contextSize', ctxIn);
    set('gpuLayers', nglIn);
    set('parallelSlots', npIn);
    if (ctkSel.value) cfg.cacheTypeK = ctkSel.value;
    if (ctvSel.value) cfg.cacheTypeV = ctvSel.value;
    const ready = floatValue(readyIn);
    return { config: cfg, readyTimeoutMs: ready !== undefined ? String(Math.round(ready * 1000)) : undefined };
  }

  startBtn.addEventListener('click', () => busy(startBtn, async () => {
    let req;
    try { req = readConfig(); } catch (err) { app.notices.error('Start the LLM server', err); return; }
    try {
      const r = await api.post('/v1/llm/start', req);
      if (r.info) renderStatus(r.info);
      app.notices.info(`LLM server ready in ${duration(r.startupMs)}.`);
      app.changed('llm');
    } catch (err) {
      app.notices.error('Start the LLM server', err);
    }
  }, 'Starting…'));

  stopBtn.addEventListener('click', () => busy(stopBtn, async () => {
    try {
      const r = await api.post('/v1/llm/stop', {});
      if (r.info) renderStatus(r.info);
      app.notices.info(r.wasRunning ? 'LLM server stopped.' : 'The LLM server was not running.');
      app.changed('llm');
    } catch (err) {
      app.notices.error('Stop the LLM server', err);
    }
  }, 'Stopping…'));

  restartBtn.addEventListener('click', () => busy(restartBtn, async () => {
    let req;
    try { req = readConfig(); } catch (err) { app.notices.error('Restart the LLM server', err); return; }
    try {
      const r = await api.post('/v1/llm/restart', req);
      if (r.info) renderStatus(r.info);
      app.notices.info('LLM server restarted.');
      app.changed('llm');
    } catch (err) {
      app.notices.error('Restart the LLM server', err);
    }
  }, 'Restarting…'));

  async function loadModels() {
    try {
      const r = await api.get(`/v1/models${api.q({ type: 'MODEL_TYPE_LLM' })}`);
      const keep = modelSel.value || (info && info.modelId) || '';
      replace(modelSel, h('option', { value: '' }, (r.models || []).length ? 'Select a model…' : 'No LLM models — download one in the Models tab'),
        (r.models || []).map((m) => h('option', { value: m.id }, `${m.name || m.id} (${bytes(m.sizeBytes)})`)));
      if (keep && [...modelSel.options].some((o) => o.value === keep)) modelSel.value = keep;
    } catch (err) {
      app.notices.error('List LLM models (GET /v1/models)', err);
    }
  }

  // --- logs ---------------------------------------------------------------------------
  const logEl = h('pre.log-view#llm-logs', { tabindex: '0' });
  const logState = h('span.pill.pill-unknown.stream-state#llm-logs-stream', 'connecting');
  const autoScroll = h('input#llm-log-autoscroll', { type: 'checkbox', checked: true });
  const clearLogs = h('button.btn.btn-secondary.btn-small', { type: 'button', on: { click: () => logEl.replaceChildren() } }, 'Clear view');
  let missed = 0;

  function addLogLine(m) {
    const l = m.line || {};
    if (num(m.missed)) { missed += num(m.missed); logEl.append(h('div.log-line.log-missed', `… ${m.missed} line(s) skipped (reader too slow)`)); }
    const level = enumLabel(l.level, 'LOG_LEVEL_');
    logEl.append(h('div', { class: `log-line log-${level.replace(/\s/g, '-')}` },
      h('span.log-time', time(l.time)), ' ',
      h('span.log-text', visible(l.raw || l.message || ''))));
    while (logEl.childElementCount > MAX_LOG_LINES) logEl.firstElementChild.remove();
    if (autoScroll.checked) logEl.scrollTop = logEl.scrollHeight;
  }

  // --- chat ---------------------------------------------------------------------------
  const convEl = h('div.chat-log#chat-log', h('p.muted.chat-empty', 'Send a message to test the server. Replies stream token by token.'));
  const systemIn = h('input#chat-system', { placeholder: 'optional system prompt' });
  const msgIn = h('textarea#chat-input', { rows: 2, placeholder: 'Type a message…' });
  const maxTokIn = h('input#chat-max-tokens', { type: 'number', min: '1', value: '128', dataset: { label: 'Max tokens' } });
  const tempIn = h('input#chat-temperature', { type: 'number', min: '0', max: '2', step: '0.1', placeholder: 'default', dataset: { label: 'Temperature' } });
  const sendBtn = h('button.btn.btn-primary#chat-send', { type: 'submit' }, 'Send');
  const stopChatBtn = h('button.btn.btn-danger#chat-stop', { type: 'button', disabled: true }, 'Stop');
  const clearChatBtn = h('button.btn.btn-secondary#chat-clear', { type: 'button' }, 'Clear');
  const history = [];
  let chatCtl = null;

  const chatForm = h('form.chat-form#chat-form',
    h('div.form-row', formField('System prompt', systemIn), formField('Max tokens', maxTokIn), formField('Temperature', tempIn)),
    formField('Message', msgIn),
    h('div.button-group', sendBtn, stopChatBtn, clearChatBtn));

  msgIn.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); chatForm.requestSubmit(); }
  });
  clearChatBtn.addEventListener('click', () => {
    history.length = 0;
    replace(convEl, h('p.muted.chat-empty', 'Conversation cleared.'));
  });
  stopChatBtn.addEventListener('click', () => { if (chatCtl) chatCtl.abort(); });

  chatForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = msgIn.value.trim();
    if (!text) { app.notices.error('Chat', 'type a message first'); return; }
    let maxTokens; let temperature;
    try { maxTokens = intValue(maxTokIn); temperature = floatValue(tempIn); } catch (err) { app.notices.error('Chat', err); return; }
    const empty = convEl.querySelector('.chat-empty');
    if (empty) empty.remove();
    history.push({ role: 'user', content: text });
    convEl.append(h('div.chat-msg.chat-user', h('span.chat-role', 'you'), h('div.chat-text', visible(text))));
    msgIn.value = '';
    const out = h('div.chat-text');
    const stats = h('div.chat-stats.small.muted', 'waiting for the first token…');
    const bubble = h('div.chat-msg.chat-assistant', { dataset: { state: 'streaming' } }, h('span.chat-role', 'assistant'), out, stats);
    convEl.append(bubble);
    convEl.scrollTop = convEl.scrollHeight;
    const messages = [];
    if (systemIn.value.trim()) messages.push({ role: 'system', content: systemIn.value.trim() });
    messages.push(...history);
    const req = { messages };
    if (maxTokens !== undefined) req.maxTokens = maxTokens;
    if (temperature !== undefined) req.temperature = temperature;
    chatCtl = new AbortController();
    sendBtn.disabled = true;
    stopChatBtn.disabled = false;
    let reply = '';
    let tokens = 0;
    try {
      await api.stream('POST', '/v1/llm/chat', req, (m) => {
        if (m.delta) {
          const c = m.delta.content || '';
          reply += c;
          tokens++;
          out.append(document.createTextNode(visible(c)));
          bubble.dataset.tokens = String(tokens);
          setText(stats, `${tokens} piece(s)…`);
          convEl.scrollTop = convEl.scrollHeight;
        } else if (m.done) {
          const d = m.done;
          setText(stats, `${num(d.completionTokens)} tokens · ${num(d.tokensPerSecond).toFixed(1)} tok/s · first token ${duration(d.timeToFirstTokenMs)} · total ${duration(d.totalMs)}`
            + `${num(d.waitedMs) ? ` · waited ${duration(d.waitedMs)} for the server` : ''} · finish: ${d.finishReason || '?'}`);
        }
      }, { signal: chatCtl.signal });
      bubble.dataset.state = 'done';
      history.push({ role: 'assistant', content: reply });
    } catch (err) {
      if (api.isAbort(err)) {
        bubble.dataset.state = 'stopped';
        setText(stats, `stopped after ${tokens} piece(s)`);
        if (reply) history.push({ role: 'assistant', content: reply });
      } else {
        bubble.dataset.state = 'failed';
        setText(stats, `failed: ${err.message}`);
        stats.classList.add('error-text');
        app.notices.error('Chat (POST /v1/llm/chat)', err);
        history.pop();
      }
    } finally {
      chatCtl = null;
      sendBtn.disabled = false;
      stopChatBtn.disabled = true;
    }
  });

  const el = h('div.tab.llama-server-control',
    h('div.tab-head', h('h2', 'LLM Server (llama-server)'), liveEl),
    card('Server Status', statusEl),
    card('Server Configuration', configForm),
    h('div.grid-2',
      card('Test Chat', { id: 'chat-card' }, convEl, chatForm),
      card('Logs', { id: 'logs-card' },
        h('div.log-tools', logState, h('label.check', autoScroll, ' auto-scroll'), clearLogs),
        logEl)));

  app.onChanged((what) => { if (what === 'models') loadModels(); });

  function streamState(pill, name) {
    return (state, err) => {
      pill.className = `pill stream-state ${state === 'live' ? 'pill-ok' : state === 'closed' ? 'pill-off' : 'pill-warn'}`;
      setText(pill, state === 'live' ? 'live' : state);
      if (state === 'live') app.notices.clear(name);
      else if (err) app.notices.error(name, err);
    };
  }

  return {
    el,
    start(signal) {
      loadModels();
      api.follow('/v1/llm/watch', (m) => { if (m.info) renderStatus(m.info); markers.fromWatch(m); }, {
        signal, onState: streamState(liveEl, 'LLM status stream (GET /v1/llm/watch)'),
      });
      api.follow(`/v1/llm/logs${api.q({ tailLines: 200, follow: 'true' })}`, addLogLine, {
        signal,
        onOpen: () => { logEl.replaceChildren(); missed = 0; },
        onState: streamState(logState, 'LLM log stream (GET /v1/llm/logs)'),
      });
    },
  };
}
