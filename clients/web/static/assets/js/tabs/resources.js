// Resources tab: RAM bar and one VRAM bar per GPU (live from /v1/system/usage/watch); the
// 5-minute RAM/VRAM timeline (seeded from /v1/system/history) with offload/reload and
// start/stop markers; the server status grid with busy indicator (live from the LLM and
// diffusion watch streams); "would need offload" with the numbers behind it and the expected
// LLM down time; the saved LLM state while offloaded (with the conversations saved); the last
// offload's conversations saved and restored and the LLM's down time (from the OFFLOAD and
// RELOAD events); and the event log (/v1/events?follow=true).

import * as api from '../api.js';
import {
  h, replace, card, field, bytes, num, time, setText, statusPill, healthPill, enumLabel,
  progressBar, progressLabel, visible, intValue, busy, formField,
} from '../dom.js';
import { TimelineChart } from '../chart.js';
import { markers, MARKER_KINDS } from '../timeline.js';

const MAX_EVENTS = 200;
const MARKER_LEGEND = [
  ['offload', MARKER_KINDS['offload-start'].color],
  ['reload', MARKER_KINDS['reload-done'].color],
  ['LLM start', MARKER_KINDS['llm-start'].color],
  ['SD start', MARKER_KINDS['diffusion-start'].color],
  ['stop', MARKER_KINDS['llm-stop'].color],
  ['crash / failure', MARKER_KINDS['llm-crash'].color],
];

export function createResourcesTab(app) {
  // --- memory -------------------------------------------------------------------------
  const ramBar = progressBar('memory-bar');
  ramBar.id = 'ram-bar';
  const ramStats = h('div.memory-stats#ram-stats');
  const gpuEl = h('div.gpu-bars#vram-bars', h('p.muted', 'Waiting for the first sample…'));
  const procsEl = h('div.procs#managed-processes');
  const usageState = h('span.pill.pill-unknown.stream-state#usage-stream', 'connecting');

  function renderUsage(u) {
    const mem = u.memory || {};
    const total = num(mem.totalBytes);
    const used = total - num(mem.availableBytes);
    const p = total ? (used / total) * 100 : 0;
    ramBar.set(p, `${p.toFixed(1)}%`);
    replace(ramStats,
      h('div', h('strong', 'Total: '), bytes(total)),
      h('div', h('strong', 'Used: '), bytes(used)),
      h('div', h('strong', 'Available: '), bytes(mem.availableBytes)),
      h('div', h('strong', 'CPU: '), `${num(u.cpuPercent).toFixed(0)}%`));
    const gpus = u.gpus || [];
    if (!gpus.length) {
      if (!gpuEl.dataset.none) {
        gpuEl.dataset.none = '1';
        replace(gpuEl, h('p.info-message', `No GPU reported${gpuReason ? `: ${gpuReason}` : ''}. Decisions use system RAM.`));
      }
    } else {
      delete gpuEl.dataset.none;
      replace(gpuEl, gpus.map((g) => {
        const t = num(g.memoryTotalBytes);
        const bar = progressBar('memory-bar vram-bar');
        bar.dataset.gpu = String(g.index ?? 0);
        const up = t ? (num(g.memoryUsedBytes) / t) * 100 : 0;
        bar.set(up, `${up.toFixed(1)}%`);
        return h('div.gpu-usage',
          h('h4', `VRAM — GPU ${g.index ?? 0}: ${g.name || ''}`),
          bar,
          h('div.memory-stats',
            h('div', h('strong', 'Total: '), bytes(t)),
            h('div', h('strong', 'Used: '), bytes(g.memoryUsedBytes)),
            h('div', h('strong', 'Managed: '), bytes(g.managedMemoryBytes)),
            h('div', h('strong', 'Foreign: '), bytes(g.foreignMemoryBytes)),
            h('div', h('strong', 'Util: '), `${num(g.utilizationPercent)}%`)));
      }));
    }
    const procs = u.managedProcesses || [];
    replace(procsEl, procs.length
      ? h('table.procs-table',
        h('thead', h('tr', h('th', 'Engine process'), h('th', 'PID'), h('th', 'Role'), h('th', 'RSS'), h('th', 'CPU'), h('th', 'GPU memory'))),
        h('tbody', procs.map((pr) => h('tr', h('td', pr.name), h('td', String(pr.pid)), h('td', pr.role),
          h('td', bytes(pr.rssBytes)), h('td', `${num(pr.cpuPercent).toFixed(1)}%`), h('td', bytes(pr.gpuMemoryBytes))))))
      : h('p.muted.small', 'No engine process running.'));
  }

  // --- timeline -----------------------------------------------------------------------
  const canvas = h('canvas.timeline-chart#timeline-chart', { dataset: { points: '0', livePoints: '0' } });
  const chart = new TimelineChart(canvas, markers);
  chart.defineSeries('ram', 'RAM');
  const legend = h('div.chart-legend#chart-legend');

  function point(u, live) {
    const t = Date.parse(u.time);
    const mem = u.memory || {};
    const total = num(mem.totalBytes);
    const values = {};
    if (total) values.ram = ((total - num(mem.availableBytes)) / total) * 100;
    for (const g of u.gpus || []) {
      const key = `vram${g.index ?? 0}`;
      chart.defineSeries(key, `VRAM GPU ${g.index ?? 0}`);
      const gt = num(g.memoryTotalBytes);
      if (gt) values[key] = (num(g.memoryUsedBytes) / gt) * 100;
    }
    chart.add(t, values, live);
    // The legend shows the newest sample, whichever arrived last (history and stream race).
    const newest = chart.points[chart.points.length - 1];
    if (newest) renderLegend(newest.values);
  }

  function renderLegend(values) {
    replace(legend, [...chart.series].map(([key, s]) => h('span.legend-item',
      h('span.legend-swatch', { style: { background: s.color } }),
      `${s.label}${values[key] !== undefined ? ` ${values[key].toFixed(1)}%` : ''}`)),
    h('span.legend-item.muted', 'Markers:'),
    MARKER_LEGEND.map(([label, color]) => h('span.legend-item',
      h('span.legend-swatch.legend-marker', { style: { background: color } }), label)));
  }

  async function loadHistory() {
    const since = chart.lastTime();
    try {
      const r = await api.get(`/v1/system/history${api.q({ since: since ? new Date(since).toISOString() : '' })}`);
      for (const s of r.samples || []) point(s, false);
    } catch (err) {
      app.notices.error('Load the usage history (GET /v1/system/history)', err);
    }
  }

  // --- servers ------------------------------------------------------------------------
  const llmEl = h('div.server-status-item#server-llm', h('h4', 'LLM Server'), h('p.muted', 'Connecting…'));
  const diffEl = h('div.server-status-item#server-diffusion', h('h4', 'Diffusion Server'), h('p.muted', 'Connecting…'));

  function renderLLM(i) {
    replace(llmEl,
      h('div.server-head', h('h4', 'LLM Server'), statusPill(i.status)),
      h('div.server-details',
        field('Health', healthPill(i.health)),
        field('PID', num(i.pid) ? String(i.pid) : '—'),
        field('Port', num(i.port) ? String(i.port) : '—'),
        field('Model', i.modelId),
        field('Chats in flight', String(num(i.inFlightRequests))),
        i.offloaded ? h('p.busy-indicator.offloaded', 'Offloaded for an image: chat waits for the reload') : null,
        num(i.inFlightRequests) ? h('p.busy-indicator', '⚙ Answering a chat…') : null));
  }

  function renderDiffusion(i) {
    const cur = i.current;
    replace(diffEl,
      h('div.server-head', h('h4', 'Diffusion Server'), statusPill(i.status)),
      h('div.server-details',
        field('Health', healthPill(i.health)),
        field('PID', num(i.pid) ? String(i.pid) : '—'),
        field('Port', num(i.port) ? String(i.port) : '—'),
        field('Model', i.modelId),
        field('Mode', i.config && i.config.mode ? enumLabel(i.config.mode, 'ENGINE_MODE_') : '—'),
        i.busy ? h('p.busy-indicator#diffusion-busy-indicator',
          `⚙ Generating image… ${cur ? progressLabel(cur) : ''}`) : null));
  }

  // --- orchestration ------------------------------------------------------------------
  const wnoW = h('input#wno-width', { type: 'number', min: '64', max: '2048', step: '64', value: '512', dataset: { label: 'Width' } });
  const wnoH = h('input#wno-height', { type: 'number', min: '64', max: '2048', step: '64', value: '512', dataset: { label: 'Height' } });
  const wnoBtn = h('button.btn.btn-secondary.btn-small#wno-check', { type: 'button' }, 'Check');
  const wnoEl = h('div.orchestration-item#would-need-offload', h('p.muted', 'Checking…'));
  const savedEl = h('div.saved-states#saved-state');
  let wnoRunning = false;

  async function checkOffload() {
    if (wnoRunning) return;
    wnoRunning = true;
    try {
      let w; let hh;
      try { w = intValue(wnoW); hh = intValue(wnoH); } catch (err) { app.notices.error('Would need offload', err); return; }
      const r = await api.post('/v1/orchestrator/would-need-offload', { params: { width: w || 512, height: hh || 512 } });
      const kind = enumLabel(r.memoryKind, 'MEMORY_KIND_');
      const mem = kind === 'vram' ? `VRAM (GPU ${r.gpuIndex})` : 'RAM';
      replace(wnoEl,
        h('div.wno-head',
          h('label', 'Would need offload:'),
          h('span', { class: r.needsOffload ? 'warning' : 'ok', dataset: { needsOffload: String(!!r.needsOffload) } }, r.needsOffload ? '⚠ Yes' : '✓ No')),
        h('p.small', visible(r.explanation || '')),
        h('table.numbers',
          h('tbody',
            row('Memory compared', mem),
            row('Image needs (estimate)', bytes(r.requiredBytes)),
            row('  diffusion weights', bytes(r.diffusionWeightsBytes)),
            row('  activations for the size', bytes(r.diffusionActivationBytes)),
            row('  learned correction', `${num(r.learnedCorrectionBytes) < 0 ? '−' : ''}${bytes(Math.abs(num(r.learnedCorrectionBytes)))}`),
            row('Free now', bytes(r.freeBytes)),
            row('Headroom kept free', bytes(r.headroomBytes)),
            row('LLM would release', bytes(r.llmReleaseBytes)),
            row('Used by other processes', bytes(r.foreignBytes)),
            row('Budget', num(r.budgetBytes) ? bytes(r.budgetBytes) : 'none'),
            row('LLM running', r.llmRunning ? 'yes' : 'no'),
            r.needsOffload ? row('Expected LLM down time', r.expectedDownMs !== undefined
              ? `~${(num(r.expectedDownMs) / 1000).toFixed(1)} s (learnt from measured offloads)`
              : 'not measured yet (known after the first offload)') : null)),
        !r.needsOffload ? null : h('p.info-message', 'If you generate this image now, the LLM server is offloaded to free memory, then reloaded when the image is done.'));
    } catch (err) {
      app.notices.error('Would need offload (POST /v1/orchestrator/would-need-offload)', err);
      replace(wnoEl, h('p.error-message', `Could not decide: ${err.message}`));
    } finally {
      wnoRunning = false;
    }
  }
  const row = (k, v) => h('tr', h('th', k), h('td', v));
  wnoBtn.addEventListener('click', () => busy(wnoBtn, checkOffload, 'Checking…'));

  async function loadSaved() {
    try {
      const r = await api.get('/v1/orchestrator/saved-state');
      const states = r.states || [];
      if (!states.length) {
        replace(savedEl, h('p.muted.small#no-saved-state', 'No saved LLM state: the LLM is not offloaded.'));
        return;
      }
      const clear = h('button.btn.btn-secondary.btn-small', { type: 'button' }, 'Clear saved state');
      clear.addEventListener('click', () => busy(clear, async () => {
        if (!window.confirm('Forget the saved LLM state? The LLM will not be reloaded from it.')) return;
        try {
          const c = await api.del('/v1/orchestrator/saved-state');
          app.notices.info(`Cleared ${num(c.cleared)} saved state(s).`);
          loadSaved();
        } catch (err) { app.notices.error('Clear the saved state', err); }
      }));
      replace(savedEl, states.map((s) => {
        const c = s.llmConfig || {};
        return h('div.saved-state',
          h('h4', 'LLM State Saved (Offloaded)'),
          field('Model', c.modelId),
          field('Config', `port ${num(c.port) || 'auto'}, ${num(c.threads) || 'auto'} threads, context ${num(c.contextSize) || 'auto'}, GPU layers ${c.gpuLayers ?? 'auto'}`),
          field('Was running', s.wasRunning ? 'yes' : 'no'),
          field('Saved at', time(s.savedAt, true)),
          field('Reason', s.reason),
          field('Reload attempts', String(num(s.reloadAttempts))),
          field('Conversations saved', (s.slotFiles || []).length
            ? `${s.slotFiles.length} KV-cache slot file(s), restored by the reload`
            : 'none (nothing to restore)'),
          s.lastReloadError ? field('Last reload error', s.lastReloadError, { props: { class: 'field-error' } }) : null,
          s.host ? field('Host', s.host) : null,
          h('p.info-message', 'The LLM server is reloaded automatically when the image is done.'));
      }), h('div.button-group', clear));
    } catch (err) {
      app.notices.error('Saved LLM state (GET /v1/orchestrator/saved-state)', err);
      replace(savedEl, h('p.error-message', `Could not load the saved state: ${err.message}`));
    }
  }

  // --- last offload: conversations saved and restored, down time ------------------------
  const lastOffloadEl = h('div.last-offload#last-offload', h('p.muted.small', 'No offload yet.'));
  const lastOffload = { off: null, rel: null };

  function renderLastOffload() {
    const o = lastOffload.off ? lastOffload.off.values || {} : null;
    const r = lastOffload.rel ? lastOffload.rel.values || {} : null;
    replace(lastOffloadEl,
      h('h4', 'Last offload'),
      o ? field('Saved at the stop', `${num(o.slots_saved)} conversation(s), ${num(o.tokens_saved)} tokens, ${bytes(o.slot_bytes)} in ${num(o.slot_save_ms)} ms`
        + (num(o.slots_not_saved) ? ` (${num(o.slots_not_saved)} not saved: see the LLM log)` : '')) : null,
      r ? field('Restored at the reload', `${num(r.slots_restored)} conversation(s), ${num(r.tokens_restored)} tokens in ${num(r.slot_restore_ms)} ms`
        + (num(r.slots_skipped) ? ` (${num(r.slots_skipped)} skipped)` : '')) : h('p.muted.small', 'Reload pending…'),
      r && r.down_ms !== undefined ? field('LLM down time', `${(num(r.down_ms) / 1000).toFixed(2)} s`) : null);
  }

  function trackOffload(ev) {
    if (ev.type === 'EVENT_TYPE_OFFLOAD_FINISHED') {
      lastOffload.off = ev;
      lastOffload.rel = null;
    } else if (ev.type === 'EVENT_TYPE_RELOAD_FINISHED') {
      lastOffload.rel = ev;
    } else {
      return;
    }
    renderLastOffload();
  }

  // --- events -------------------------------------------------------------------------
  const eventList = h('ul.event-list#event-list');
  const noEvents = h('p.no-events', 'No events yet. Start/stop servers or generate images to see events.');
  const eventsState = h('span.pill.pill-unknown.stream-state#events-stream', 'connecting');
  let lastEventId = 0;
  let refreshTimer = 0;

  function addEvent(ev) {
    const id = num(ev.id);
    if (id && id <= lastEventId) return;
    if (id) lastEventId = id;
    noEvents.hidden = true;
    markers.fromEvent(ev);
    trackOffload(ev);
    const type = enumLabel(ev.type, 'EVENT_TYPE_');
    const vals = Object.entries(ev.values || {});
    eventList.prepend(h('li', { class: `event event-${type.replace(/\s/g, '-')}`, dataset: { type: ev.type || '' } },
      h('span.event-time', `[${time(ev.time)}]`), ' ',
      h('span.event-type', type), ' ',
      h('span.event-message', visible(ev.message || '')),
      ev.jobId ? h('span.event-job.small.muted', ` (job ${ev.jobId})`) : null,
      vals.length ? h('div.event-values.small.muted', vals.map(([k, v]) => `${k}=${/bytes/.test(k) ? bytes(v) : v}`).join('  ')) : null));
    while (eventList.childElementCount > MAX_EVENTS) eventList.lastElementChild.remove();
    // Offload, reload and job ends change the saved state and the decision: refresh both once.
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => { loadSaved(); checkOffload(); }, 300);
  }

  // --- layout -------------------------------------------------------------------------
  let gpuReason = '';
  const el = h('div.tab.resource-monitor',
    h('div.tab-head', h('h2', 'Resource Monitor'), usageState),
    h('div.grid-2',
      card('System Memory Usage', { id: 'memory-card' }, h('div.memory-usage', ramBar, ramStats), procsEl),
      card('GPU Memory Usage (VRAM)', { id: 'vram-card' }, gpuEl)),
    card('Resource Timeline (last 5 minutes)', { id: 'timeline-card' }, legend, canvas),
    card('Server Status', h('div.server-status-grid', llmEl, diffEl)),
    h('div.grid-2',
      card('Resource Orchestration', { id: 'orchestration-card' },
        h('div.form-row.wno-form', formField('Image width', wnoW), formField('Image height', wnoH), h('div.form-group', h('label', '\u00a0'), wnoBtn)),
        wnoEl, savedEl, lastOffloadEl),
      card('Recent Events', { id: 'events-card' }, h('div.log-tools', eventsState), h('div.event-log', noEvents, eventList))));

  function streamState(pill, name) {
    return (state, err) => {
      pill.className = `pill stream-state ${state === 'live' ? 'pill-ok' : state === 'closed' ? 'pill-off' : 'pill-warn'}`;
      setText(pill, state);
      if (state === 'live') app.notices.clear(name); else if (err) app.notices.error(name, err);
    };
  }

  let usageCount = 0;
  return {
    el,
    start(signal) {
      if (!gpuReason) {
        api.get('/v1/system').then((s) => { gpuReason = s.gpuUnavailableReason || ''; delete gpuEl.dataset.none; })
          .catch((err) => app.notices.error('Load system information (GET /v1/system)', err));
      }
      loadHistory();
      loadSaved();
      checkOffload();
      api.follow(`/v1/system/usage/watch${api.q({ intervalMs: 1000 })}`, (m) => {
        if (!m.usage) return;
        renderUsage(m.usage);
        point(m.usage, true);
        // The decision depends on free memory: refresh it every few samples (from the stream).
        if (++usageCount % 5 === 0) checkOffload();
      }, { signal, onState: streamState(usageState, 'Usage stream (GET /v1/system/usage/watch)') });
      api.follow(`/v1/events${api.q({ follow: 'true', backlog: 100, sinceId: lastEventId || '' })}`, (m) => { if (m.event) addEvent(m.event); }, {
        signal, onState: streamState(eventsState, 'Event stream (GET /v1/events)'),
      });
      api.follow('/v1/llm/watch', (m) => { if (m.info) renderLLM(m.info); markers.fromWatch(m); }, {
        signal, onState: (s, err) => { if (err) app.notices.error('LLM status stream (GET /v1/llm/watch)', err); else if (s === 'live') app.notices.clear('LLM status stream'); },
      });
      api.follow('/v1/diffusion/watch', (m) => { if (m.info) renderDiffusion(m.info); markers.fromWatch(m); }, {
        signal, onState: (s, err) => { if (err) app.notices.error('Diffusion status stream (GET /v1/diffusion/watch)', err); else if (s === 'live') app.notices.clear('Diffusion status stream'); },
      });
    },
  };
}
