// Models tab: installed models by type with size, files and GGUF details; verify; delete;
// disk usage; download by URL, Hugging Face repo/file or one-click preset, with live
// progress per component.

import * as api from '../api.js';
import {
  h, replace, card, field, bytes, num, duration, time, busy, formField, progressBar, setText,
} from '../dom.js';

export const TYPES = [
  { value: 'MODEL_TYPE_LLM', label: 'LLM', key: 'llm' },
  { value: 'MODEL_TYPE_DIFFUSION', label: 'Diffusion', key: 'diffusion' },
];

export function createModelsTab(app) {
  const usageEl = h('div.storage-grid#storage-usage', h('p.muted', 'Loading disk usage…'));
  const listEls = Object.fromEntries(TYPES.map((t) => [t.value, h('div.model-list', { id: `models-${t.key}` }, h('p.muted', 'Loading…'))]));
  const downloadsEl = h('div.downloads#downloads');
  const presetsEl = h('div.preset-list#presets', h('p.muted', 'Loading presets…'));
  const presetsCache = new Map();

  // --- download form ------------------------------------------------------------------
  const typeSel = h('select#download-type', TYPES.map((t) => h('option', { value: t.value }, t.label)));
  const sourceSel = h('select#download-source',
    h('option', { value: 'url' }, 'URL'),
    h('option', { value: 'hf' }, 'Hugging Face repo/file'),
    h('option', { value: 'preset' }, 'Preset (one click)'));
  const urlIn = h('input#download-url', { type: 'url', placeholder: 'https://…/model.gguf', dataset: { label: 'URL' } });
  const repoIn = h('input#download-hf-repo', { placeholder: 'owner/name, e.g. lmstudio-community/Qwen2.5-0.5B-Instruct-GGUF' });
  const fileIn = h('input#download-hf-file', { placeholder: 'path in the repo, e.g. Qwen2.5-0.5B-Instruct-Q4_K_M.gguf' });
  const revIn = h('input#download-hf-revision', { placeholder: 'main' });
  const hfTokenIn = h('input#download-hf-token', { type: 'password', autocomplete: 'off', placeholder: 'only for gated repositories (never stored)' });
  const idIn = h('input#download-id', { placeholder: 'derived from the file name' });
  const nameIn = h('input#download-name', { placeholder: 'same as the id' });
  const shaIn = h('input#download-sha256', { placeholder: 'optional: expected sha256 (hex)' });
  const downloadBtn = h('button.btn.btn-primary#download-start', { type: 'submit' }, 'Download');
  const urlGroup = h('div.source-group', formField('URL', urlIn));
  const hfGroup = h('div.source-group',
    h('div.form-row', formField('Repository', repoIn), formField('File', fileIn), formField('Revision', revIn)),
    formField('Hugging Face token', hfTokenIn));
  const commonGroup = h('div.source-group',
    h('div.form-row', formField('Model id', idIn), formField('Display name', nameIn), formField('sha256', shaIn)));
  const form = h('form.download-form#download-form',
    h('div.form-row', formField('Type', typeSel), formField('Source', sourceSel)),
    urlGroup, hfGroup, commonGroup,
    h('div.preset-group', presetsEl),
    h('div.button-group.download-buttons', downloadBtn));

  function syncSource() {
    const s = sourceSel.value;
    urlGroup.hidden = s !== 'url';
    hfGroup.hidden = s !== 'hf';
    commonGroup.hidden = s === 'preset';
    presetsEl.parentElement.hidden = s !== 'preset';
    downloadBtn.hidden = s === 'preset';
    if (s === 'preset') loadPresets(typeSel.value);
  }
  sourceSel.addEventListener('change', syncSource);
  typeSel.addEventListener('change', syncSource);

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const type = typeSel.value;
    const req = { type };
    const source = {};
    if (sourceSel.value === 'url') {
      const u = urlIn.value.trim();
      if (!u) { app.notices.error('Download', 'enter the URL of the model file'); return; }
      if (!/^https?:\/\//i.test(u)) { app.notices.error('Download', 'the URL must start with http:// or https://'); return; }
      source.url = u;
    } else {
      const repo = repoIn.value.trim();
      const file = fileIn.value.trim();
      if (!repo || !file) { app.notices.error('Download', 'enter the Hugging Face repository (owner/name) and the file'); return; }
      source.huggingFace = { repo, file, revision: revIn.value.trim() };
      if (hfTokenIn.value.trim()) req.huggingFaceToken = hfTokenIn.value.trim();
    }
    if (shaIn.value.trim()) source.sha256 = shaIn.value.trim();
    req.source = source;
    if (idIn.value.trim()) req.id = idIn.value.trim();
    if (nameIn.value.trim()) req.name = nameIn.value.trim();
    const label = source.url ? source.url.split('/').pop() : source.huggingFace.file.split('/').pop();
    startDownload(req, label || 'model', [{ component: 'model' }]);
  });

  async function loadPresets(type) {
    if (presetsCache.has(type)) { renderPresets(type, presetsCache.get(type)); return; }
    replace(presetsEl, h('p.muted', 'Loading presets…'));
    try {
      const r = await api.get(`/v1/presets${api.q({ type })}`);
      presetsCache.set(type, r.presets || []);
      renderPresets(type, r.presets || []);
    } catch (err) {
      app.notices.error('Load presets (GET /v1/presets)', err);
      replace(presetsEl, h('p.error-message', `Could not load presets: ${err.message}`));
    }
  }

  function renderPresets(type, presets) {
    if (!presets.length) { replace(presetsEl, h('p.muted', 'No presets for this type.')); return; }
    replace(presetsEl, presets.map((p) => {
      const btn = h('button.btn.btn-primary', { type: 'button', dataset: { presetId: p.id } }, 'Download');
      btn.addEventListener('click', () => startDownload({ type, presetId: p.id }, p.name || p.id, p.components || []));
      const rec = Object.entries(p.recommended || {}).map(([k, v]) => `${k}=${v}`).join(', ');
      return h('div.preset-item',
        h('div.preset-head', h('strong', p.name || p.id), h('span.muted', ` ~${bytes(p.sizeBytes)}`)),
        h('p.preset-desc', p.description || ''),
        h('p.small', `Components: ${(p.components || []).map((c) => c.component).join(', ') || 'model'}`),
        rec ? h('p.small.muted', `Recommended: ${rec}`) : null,
        btn);
    }));
  }

  // --- downloads in progress ----------------------------------------------------------
  function startDownload(req, label, components) {
    const comps = components.length ? components.map((c) => c.component) : ['model'];
    const bar = progressBar('download-bar');
    bar.set(0, 'starting…');
    const compRows = comps.map((c) => h('li.component.pending', { dataset: { component: c } },
      h('span.component-name', c), h('span.component-state', 'pending')));
    const statusEl = h('div.download-status.small', 'Connecting…');
    const cancelBtn = h('button.btn.btn-danger.btn-small', { type: 'button' }, 'Cancel');
    const box = h('div.download-item', { dataset: { state: 'running' } },
      h('div.download-head', h('strong', label), h('span.muted', ` (${TYPES.find((t) => t.value === req.type).label})`), cancelBtn),
      bar, statusEl, h('ul.component-list', compRows));
    downloadsEl.prepend(box);
    let downloadId = '';
    const boundaries = [0];
    let lastIndex = 0;
    cancelBtn.addEventListener('click', async () => {
      if (!downloadId) { app.notices.error('Cancel download', 'the download has not reported its id yet; try again in a moment'); return; }
      try {
        const r = await api.post(`/v1/models/downloads/${encodeURIComponent(downloadId)}/cancel`, { type: req.type, downloadId });
        if (!r.cancelled) app.notices.info('The download had already ended.');
      } catch (err) {
        app.notices.error('Cancel download', err);
      }
    });
    const finish = (state, text) => {
      box.dataset.state = state;
      bar.classList.add(state === 'done' ? 'done' : 'failed');
      if (state !== 'done') bar.set(bar.dataset.percent, 'failed');
      cancelBtn.remove();
      setText(statusEl, text);
      const close = h('button.btn.btn-secondary.btn-small', { type: 'button', on: { click: () => box.remove() } }, 'Dismiss');
      box.querySelector('.download-head').append(close);
    };
    api.stream('POST', '/v1/models/download', req, (m) => {
      if (m.progress) {
        const p = m.progress;
        downloadId = p.downloadId || downloadId;
        const idx = num(p.componentIndex);
        const total = num(p.totalBytes);
        const done = num(p.downloadedBytes);
        while (lastIndex < idx) { lastIndex++; boundaries[lastIndex] = done; }
        const percent = total > 0 ? (done / total) * 100 : 0;
        bar.set(percent, total > 0 ? `${percent.toFixed(1)}%` : bytes(done));
        const eta = num(p.etaMs) >= 0 && p.etaMs !== undefined ? duration(p.etaMs) : 'unknown';
        setText(statusEl, `${bytes(done)} of ${total ? bytes(total) : '?'} · ${bytes(p.bytesPerSecond)}/s · ETA ${eta} · component ${idx + 1}/${num(p.componentCount) || comps.length}: ${p.component || ''} (${p.file || ''})`);
        compRows.forEach((row, i) => {
          const st = row.querySelector('.component-state');
          row.classList.remove('pending', 'active', 'done');
          if (i < idx) {
            row.classList.add('done');
            setText(st, `done (${bytes(num(boundaries[i + 1]) - num(boundaries[i]))})`);
          } else if (i === idx) {
            row.classList.add('active');
            setText(st, `downloading ${p.file || ''}: ${bytes(done - num(boundaries[i]))}`);
          } else {
            row.classList.add('pending');
            setText(st, 'pending');
          }
        });
      } else if (m.model) {
        bar.set(100, '100%');
        compRows.forEach((row) => { row.classList.remove('pending', 'active'); row.classList.add('done'); setText(row.querySelector('.component-state'), 'done'); });
        finish('done', `Installed ${m.model.id} (${bytes(m.model.sizeBytes)}).`);
        app.notices.info(`Model ${m.model.id} downloaded.`);
      }
    }).then(() => {
      if (box.dataset.state === 'running') finish('done', 'Download finished.');
      loadAll();
      app.changed('models');
    }).catch((err) => {
      finish('failed', `Failed: ${err.message}`);
      app.notices.error(`Download ${label}`, err);
      loadAll();
    });
  }

  // --- installed models ---------------------------------------------------------------
  async function loadModels(type) {
    const el = listEls[type];
    try {
      const r = await api.get(`/v1/models${api.q({ type })}`);
      renderModels(type, r.models || []);
    } catch (err) {
      app.notices.error(`List ${type === 'MODEL_TYPE_LLM' ? 'LLM' : 'diffusion'} models (GET /v1/models)`, err);
      replace(el, h('p.error-message', `Could not list models: ${err.message}`));
    }
  }

  function renderModels(type, models) {
    const el = listEls[type];
    if (!models.length) {
      replace(el, h('p.muted.no-models', 'No models installed. Download one below.'));
      return;
    }
    const rows = [];
    for (const m of models) {
      const details = h('tr.model-details', { hidden: true }, h('td', { colspan: '6' }, modelDetails(m)));
      const verifyOut = h('span.verify-result');
      const detailsBtn = h('button.btn.btn-secondary.btn-small', { type: 'button' }, 'Details');
      detailsBtn.addEventListener('click', () => {
        details.hidden = !details.hidden;
        setText(detailsBtn, details.hidden ? 'Details' : 'Hide');
      });
      const verifyBtn = h('button.btn.btn-secondary.btn-small', { type: 'button' }, 'Verify');
      verifyBtn.addEventListener('click', () => busy(verifyBtn, async () => {
        setText(verifyOut, '');
        try {
          const r = await api.post(`/v1/models/${encodeURIComponent(m.id)}/verify`, { type, id: m.id });
          const bad = (r.files || []).filter((f) => !f.ok);
          verifyOut.className = `verify-result ${r.ok ? 'ok' : 'bad'}`;
          setText(verifyOut, r.ok ? `✓ ${(r.files || []).length} file(s) ok` : `✗ ${bad.map((f) => `${f.name}: ${f.problem || 'mismatch'}`).join('; ')}`);
        } catch (err) {
          verifyOut.className = 'verify-result bad';
          setText(verifyOut, '✗ verify failed');
          app.notices.error(`Verify ${m.id}`, err);
        }
      }, 'Verifying…'));
      const deleteBtn = h('button.btn.btn-danger.btn-small', { type: 'button' }, 'Delete');
      deleteBtn.addEventListener('click', async () => {
        const force = !!m.inUse;
        const q = force
          ? `${m.id} is in use by a running server. Delete it anyway (the server keeps its open file until it stops)?`
          : `Delete ${m.id} (${bytes(m.sizeBytes)})?`;
        if (!window.confirm(q)) return;
        await busy(deleteBtn, async () => {
          try {
            const r = await api.del(`/v1/models/${encodeURIComponent(m.id)}${api.q({ type, force: force ? 'true' : '' })}`);
            app.notices.info(`Deleted ${m.id}, freed ${bytes(r.freedBytes)}.`);
            loadAll();
            app.changed('models');
          } catch (err) {
            app.notices.error(`Delete ${m.id}`, err);
          }
        }, 'Deleting…');
      });
      rows.push(h('tr.model-row', { dataset: { modelId: m.id } },
        h('td', h('div.model-name', m.name || m.id), h('div.small.muted', m.id)),
        h('td', bytes(m.sizeBytes)),
        h('td', (m.files || []).map((f) => f.component).join(', ')),
        h('td', time(m.downloadedAt, true)),
        h('td', m.inUse ? h('span.pill.pill-ok', 'in use') : h('span.muted', '—')),
        h('td', h('div.actions', detailsBtn, verifyBtn, deleteBtn, verifyOut))));
      rows.push(details);
    }
    replace(el, h('table.model-table',
      h('thead', h('tr', h('th', 'Model'), h('th', 'Size'), h('th', 'Components'), h('th', 'Downloaded'), h('th', 'In use'), h('th', 'Actions'))),
      h('tbody', rows)));
  }

  function modelDetails(m) {
    const g = m.gguf;
    return h('div.model-detail-body',
      h('table.files-table',
        h('thead', h('tr', h('th', 'Component'), h('th', 'File'), h('th', 'Size'), h('th', 'sha256'), h('th', 'Source'))),
        h('tbody', (m.files || []).map((f) => h('tr',
          h('td', f.component), h('td', f.name), h('td', bytes(f.sizeBytes)),
          h('td.mono', f.sha256 || '—'), h('td.small', f.sourceUrl || '—'))))),
      m.presetId ? h('p.small', `Preset: ${m.presetId}`) : null,
      m.sourceUrl ? h('p.small', `Source: ${m.sourceUrl}`) : null,
      g ? h('div.gguf',
        h('h4', 'GGUF metadata'),
        h('div.status-grid.gguf-grid',
          field('Architecture', g.architecture),
          field('Name', g.name),
          field('Parameters', num(g.parameterCount).toLocaleString()),
          field('Quantisation', g.fileType),
          field('Context length', g.contextLength),
          field('Blocks', g.blockCount),
          field('Embedding', g.embeddingLength),
          field('Feed-forward', g.feedForwardLength),
          field('Heads (KV)', `${num(g.headCount)} (${num(g.headCountKv)})`),
          field('Key/value length', `${num(g.keyLength)}/${num(g.valueLength)}`),
          field('Vocabulary', g.vocabSize),
          field('Tensor data', bytes(g.tensorDataSizeBytes)),
          field('Shards', g.shardCount)))
        : h('p.small.muted', 'No GGUF metadata (not a GGUF file).'));
  }

  // --- disk usage ---------------------------------------------------------------------
  async function loadUsage() {
    const results = await Promise.all(TYPES.map(async (t) => {
      try {
        return [t, await api.get(`/v1/storage${api.q({ type: t.value })}`)];
      } catch (err) {
        app.notices.error(`Disk usage of ${t.label} models (GET /v1/storage)`, err);
        return [t, null];
      }
    }));
    let total = 0;
    const items = results.map(([t, u]) => {
      if (!u) return h('div.storage-item', h('strong', t.label), h('p.error-message', 'unavailable'));
      total += num(u.usedBytes);
      return h('div.storage-item', { dataset: { type: t.key } },
        h('strong', `${t.label} models`),
        field('Used', bytes(u.usedBytes)),
        field('Partial downloads', bytes(u.partialBytes)),
        field('Free on disk', bytes(u.freeBytes)),
        field('Models', String((u.models || []).length)));
    });
    replace(usageEl, h('div.storage-item.storage-total', h('strong', 'All models'), field('Disk used', bytes(total), { props: { id: 'storage-total' } })), ...items);
  }

  function loadAll() {
    for (const t of TYPES) loadModels(t.value);
    loadUsage();
  }

  const refresh = h('button.btn.btn-secondary#models-refresh', { type: 'button', on: { click: loadAll } }, 'Refresh');
  const el = h('div.tab.model-manager',
    h('div.tab-head', h('h2', 'Model Management'), refresh),
    card('Disk usage', usageEl),
    ...TYPES.map((t) => card(`${t.label} models`, listEls[t.value])),
    card('Download a model', form),
    card('Downloads', { id: 'downloads-card' }, downloadsEl, h('p.muted.small', 'Downloads in progress and finished ones appear here; they go on while you use other tabs.')));

  syncSource();
  app.onChanged((what) => { if (what === 'models-external') loadAll(); });

  return {
    el,
    start() { loadAll(); },
  };
}
