// Diffusion Server tab: start/stop with mode and offload options (status live from
// /v1/diffusion/watch); the generate form with every seed parameter and the eight samplers,
// run through the orchestrator (/v1/images/generate: queue, offload, progress, result) with a
// live progress bar, cancel, the image with its metadata; and the gallery of past images from
// the job history with re-run using the same seed.

import * as api from '../api.js';
import {
  h, replace, card, field, setDisabled, num, duration, time, busy, formField, setText, statusPill, healthPill,
  enumLabel, intValue, floatValue, progressBar, progressLabel, visible,
} from '../dom.js';
import { markers } from '../timeline.js';

// Display names of samplers; the list itself comes from the API (DiffusionInfo.samplers), the
// one list the service validates against. A sampler without a name here shows its id.
const SAMPLER_LABELS = {
  euler_a: 'Euler A', euler: 'Euler', heun: 'Heun', dpm2: 'DPM2',
  'dpm++2s_a': 'DPM++ 2S A', 'dpm++2m': 'DPM++ 2M', 'dpm++2mv2': 'DPM++ 2Mv2', lcm: 'LCM',
};
const GALLERY_SIZE = 24;

export function createDiffusionTab(app) {
  let info = null;

  // --- status -------------------------------------------------------------------------
  const statusEl = h('div.status-grid#diffusion-status', h('p.muted', 'Connecting…'));
  const liveEl = h('span.pill.pill-unknown.stream-state#diffusion-stream', 'connecting');

  // The progress of the generation in progress has one source of truth: the newest Progress
  // the engine reported. The status stream (/v1/diffusion/watch) carries it only with the
  // engine's events (a generation started, finished), so while this page's own generation
  // runs, its stream's progress (which the progress bar shows) is the newer one.
  let ownProgress = null;
  const busyEl = h('div.field#diffusion-busy');
  function renderBusy() {
    const i = info || {};
    const cur = ownProgress || i.current;
    const generating = Boolean(i.busy || ownProgress);
    busyEl.dataset.stage = generating && cur ? enumLabel(cur.stage, 'STAGE_') : '';
    replace(busyEl, h('label', 'Busy'), generating
      ? h('span.value.busy-indicator', `⚙ Generating… ${cur ? progressLabel(cur) : ''}`)
      : h('span.value', 'no'));
  }

  let setSamplers = () => {};
  function renderStatus(i) {
    info = i || {};
    if (Array.isArray(info.samplers) && info.samplers.length) setSamplers(info.samplers);
    const c = info.config || {};
    renderBusy();
    replace(statusEl,
      field('Status', statusPill(info.status), { props: { id: 'diffusion-status-field' } }),
      field('Health', healthPill(info.health)),
      busyEl,
      field('PID', num(info.pid) ? String(info.pid) : '—'),
      field('Port', num(info.port) ? String(info.port) : (c.mode === 'ENGINE_MODE_SERVER' ? '—' : 'none (CLI mode)')),
      field('Model', info.modelId),
      field('Mode', c.mode ? enumLabel(c.mode, 'ENGINE_MODE_') : '—'),
      field('Started', time(info.startedAt, true)),
      field('Engine', info.demoEngine ? h('span.pill.pill-warn', 'demo stand-in (synthetic images)') : (info.binaryPath || '—')),
      info.unavailableReason ? field('Unavailable', info.unavailableReason, { props: { class: 'field-error' } }) : null,
      info.lastError ? field('Last error', info.lastError, { props: { class: 'field-error', id: 'diffusion-last-error' } }) : null);
    const running = info.status === 'SERVER_STATUS_RUNNING' || info.status === 'SERVER_STATUS_STARTING';
    setDisabled(startBtn, running);
    setDisabled(stopBtn, !running && info.status !== 'SERVER_STATUS_CRASHED');
    if (!modelIn.value && info.modelId) modelIn.value = info.modelId;
  }

  // --- start options ------------------------------------------------------------------
  const modelList = h('datalist#diffusion-models');
  const modelIn = h('input#diffusion-model', { list: 'diffusion-models', placeholder: 'model id (from the Models tab)' });
  const modeSel = h('select#diffusion-mode',
    h('option', { value: 'ENGINE_MODE_CLI' }, 'CLI (one sd-cli per image)'),
    h('option', { value: 'ENGINE_MODE_SERVER' }, 'Server (persistent sd-server)'));
  const threadsIn = h('input#diffusion-threads', { type: 'number', min: '0', placeholder: 'auto', dataset: { label: 'Threads' } });
  const portIn = h('input#diffusion-port', { type: 'number', min: '0', max: '65535', placeholder: 'auto (server mode)', dataset: { label: 'Port' } });
  const checks = {
    offloadToCpu: h('input#diffusion-offload-to-cpu', { type: 'checkbox' }),
    vaeTiling: h('input#diffusion-vae-tiling', { type: 'checkbox' }),
    clipOnCpu: h('input#diffusion-clip-on-cpu', { type: 'checkbox' }),
    vaeOnCpu: h('input#diffusion-vae-on-cpu', { type: 'checkbox' }),
    diffusionFa: h('input#diffusion-fa', { type: 'checkbox' }),
  };
  const startBtn = h('button.btn.btn-primary#diffusion-start', { type: 'button' }, 'Start Server');
  const stopBtn = h('button.btn.btn-danger#diffusion-stop', { type: 'button' }, 'Stop Server');
  const noModels = h('p.info-message#diffusion-no-models', { hidden: true }, 'No diffusion models installed. Download one in the Models tab, or type the id of a model the engine knows.');

  const configForm = h('form.diffusion-config#diffusion-config', { on: { submit: (e) => e.preventDefault() } },
    h('div.form-row', formField('Model', modelIn), formField('Mode', modeSel), formField('Threads', threadsIn), formField('Port', portIn)),
    modelList, noModels,
    h('div.form-row.checks',
      h('label.check', checks.offloadToCpu, ' Offload weights to CPU (--offload-to-cpu)'),
      h('label.check', checks.vaeTiling, ' VAE tiling (--vae-tiling)'),
      h('label.check', checks.clipOnCpu, ' CLIP on CPU (--clip-on-cpu)'),
      h('label.check', checks.vaeOnCpu, ' VAE on CPU (--vae-on-cpu)'),
      h('label.check', checks.diffusionFa, ' Flash attention (--diffusion-fa)')),
    h('div.button-group', startBtn, stopBtn));

  startBtn.addEventListener('click', () => busy(startBtn, async () => {
    const modelId = modelIn.value.trim();
    if (!modelId) { app.notices.error('Start the diffusion server', 'choose a model first'); return; }
    const config = { modelId, mode: modeSel.value };
    try {
      const t = intValue(threadsIn); if (t !== undefined) config.threads = t;
      const p = intValue(portIn); if (p !== undefined) config.port = p;
    } catch (err) { app.notices.error('Start the diffusion server', err); return; }
    for (const [k, c] of Object.entries(checks)) config[k] = c.checked;
    try {
      const r = await api.post('/v1/diffusion/start', { config });
      if (r.info) renderStatus(r.info);
      app.notices.info('Diffusion server started.');
    } catch (err) {
      app.notices.error('Start the diffusion server', err);
    }
  }, 'Starting…'));

  stopBtn.addEventListener('click', () => busy(stopBtn, async () => {
    try {
      const r = await api.post('/v1/diffusion/stop', {});
      if (r.info) renderStatus(r.info);
      app.notices.info('Diffusion server stopped.');
    } catch (err) {
      app.notices.error('Stop the diffusion server', err);
    }
  }, 'Stopping…'));

  async function loadModels() {
    try {
      const r = await api.get(`/v1/models${api.q({ type: 'MODEL_TYPE_DIFFUSION' })}`);
      const models = r.models || [];
      replace(modelList, models.map((m) => h('option', { value: m.id }, m.name || m.id)),
        h('option', { value: 'demo' }, 'demo — generated stand-in model (only with -demo-engines)'));
      noModels.hidden = models.length > 0;
      if (!modelIn.value && models.length) modelIn.value = models[0].id;
    } catch (err) {
      app.notices.error('List diffusion models (GET /v1/models)', err);
    }
  }

  // --- generate -----------------------------------------------------------------------
  const promptIn = h('textarea#gen-prompt', { rows: 3, maxlength: '4000', placeholder: 'A serene mountain landscape at sunset' });
  const negIn = h('textarea#gen-negative', { rows: 2, placeholder: 'blurry, low quality' });
  const widthIn = h('input#gen-width', { type: 'number', min: '64', max: '2048', step: '64', value: '512', dataset: { label: 'Width' } });
  const heightIn = h('input#gen-height', { type: 'number', min: '64', max: '2048', step: '64', value: '512', dataset: { label: 'Height' } });
  const stepsIn = h('input#gen-steps', { type: 'number', min: '1', max: '150', value: '20', dataset: { label: 'Steps' } });
  const cfgIn = h('input#gen-cfg', { type: 'number', min: '0', max: '30', step: '0.5', value: '7.5', dataset: { label: 'CFG scale' } });
  const seedIn = h('input#gen-seed', { type: 'number', min: '-1', value: '-1', dataset: { label: 'Seed' } });
  const samplerSel = h('select#gen-sampler', h('option', { value: 'euler_a' }, SAMPLER_LABELS.euler_a));
  let samplerList = '';
  setSamplers = (list) => {
    const key = list.join(',');
    if (key === samplerList) return;
    samplerList = key;
    const keep = samplerSel.value;
    samplerSel.replaceChildren(...list.map((v) => h('option', { value: v }, SAMPLER_LABELS[v] || v)));
    samplerSel.value = list.includes(keep) ? keep : (list.includes('euler_a') ? 'euler_a' : list[0]);
  };
  if (Array.isArray(info?.samplers) && info.samplers.length) setSamplers(info.samplers);
  const genBtn = h('button.btn.btn-primary#gen-start', { type: 'submit' }, 'Generate Image');
  const cancelBtn = h('button.btn.btn-danger#gen-cancel', { type: 'button', disabled: true }, 'Cancel');
  const bar = progressBar('gen-progress');
  bar.id = 'gen-progress';
  bar.set(0, 'idle');
  const progText = h('div.progress-text.small#gen-progress-text', 'No generation running.');
  const orchText = h('div.orch-text.small.muted#gen-orchestration');
  const genForm = h('form.generate-form#generate-form',
    formField('Prompt', promptIn),
    formField('Negative prompt', negIn),
    h('div.form-row',
      formField('Width', widthIn), formField('Height', heightIn), formField('Steps', stepsIn),
      formField('CFG scale', cfgIn), formField('Seed (-1 random)', seedIn), formField('Sampler', samplerSel)),
    h('div.button-group', genBtn, cancelBtn),
    h('div.progress-area', bar, progText, orchText));

  const resultEl = h('div.generated-image-container#gen-result', h('p.muted', 'The image appears here.'));
  let genCtl = null;
  let jobId = '';

  function readParams() {
    const prompt = promptIn.value.trim();
    if (!prompt) throw new Error('enter a prompt');
    const p = { prompt, sampler: samplerSel.value };
    if (negIn.value.trim()) p.negativePrompt = negIn.value.trim();
    const w = intValue(widthIn); const hh = intValue(heightIn); const s = intValue(stepsIn);
    const cfg = floatValue(cfgIn); const seed = intValue(seedIn);
    for (const [name, v] of [['Width', w], ['Height', hh]]) {
      if (v !== undefined && (v < 64 || v > 2048 || v % 64 !== 0)) throw new Error(`${name} must be a multiple of 64 between 64 and 2048`);
    }
    if (s !== undefined && (s < 1 || s > 150)) throw new Error('Steps must be between 1 and 150');
    if (cfg !== undefined && (cfg < 0 || cfg > 30)) throw new Error('CFG scale must be between 0 and 30');
    if (w !== undefined) p.width = w;
    if (hh !== undefined) p.height = hh;
    if (s !== undefined) p.steps = s;
    if (cfg !== undefined) p.cfgScale = cfg;
    if (seed !== undefined && seed >= 0) p.seed = String(seed);
    return p;
  }

  function setParams(p, seed) {
    promptIn.value = p.prompt || '';
    negIn.value = p.negativePrompt || '';
    widthIn.value = String(num(p.width) || 512);
    heightIn.value = String(num(p.height) || 512);
    stepsIn.value = String(num(p.steps) || 20);
    cfgIn.value = String(p.cfgScale ?? 7.5);
    seedIn.value = String(seed ?? p.seed ?? -1);
    samplerSel.value = p.sampler || 'euler_a';
  }

  genForm.addEventListener('submit', (e) => { e.preventDefault(); generate(); });

  cancelBtn.addEventListener('click', async () => {
    setText(progText, 'Cancelling…');
    try {
      if (jobId) await api.post(`/v1/images/jobs/${encodeURIComponent(jobId)}/cancel`, { id: jobId });
      else await api.post('/v1/diffusion/cancel', {});
    } catch (err) {
      app.notices.error('Cancel the generation', err);
    }
  });

  async function generate() {
    let params;
    try { params = readParams(); } catch (err) { app.notices.error('Generate an image', err); return; }
    genCtl = new AbortController();
    jobId = '';
    genBtn.disabled = true;
    cancelBtn.disabled = false;
    bar.classList.remove('failed', 'done');
    bar.set(0, 'queued…');
    bar.dataset.state = 'running';
    bar.dataset.stage = 'queued';
    bar.dataset.step = '0';
    delete bar.dataset.jobId;
    setText(progText, 'Submitting…');
    setText(orchText, '');
    let result = null;
    try {
      await api.stream('POST', '/v1/images/generate', { params }, (m) => {
        if (m.jobId) { jobId = m.jobId; bar.dataset.jobId = jobId; }
        if (m.queue) {
          const pos = num(m.queue.position);
          if (pos > 0) setText(progText, `Queued: position ${pos} of ${num(m.queue.queueLength)}`);
        }
        if (m.event) setText(orchText, visible(m.event.message || enumLabel(m.event.type, 'EVENT_TYPE_')));
        if (m.progress) {
          const p = m.progress;
          const stage = enumLabel(p.stage, 'STAGE_');
          ownProgress = p;
          bar.set(p.percent, progressLabel(p));
          bar.dataset.stage = stage;
          bar.dataset.step = String(num(p.step));
          renderBusy();
          setText(progText, `${p.message || stage} · ${duration(p.elapsedMs)} elapsed${num(p.stepsPerSecond) ? ` · ${num(p.stepsPerSecond).toFixed(2)} steps/s` : ''}`);
        }
        if (m.result) result = m.result;
      }, { signal: genCtl.signal });
      if (!result) throw new Error('the stream ended without an image');
      bar.set(100, '100% · done');
      bar.dataset.state = 'done';
      bar.classList.add('done');
      setText(progText, `Done in ${duration(result.timeTakenMs)}.`);
      showResult(result, jobId);
    } catch (err) {
      bar.dataset.state = 'failed';
      bar.classList.add('failed');
      const cancelled = /cancel/i.test(err.message || '');
      setText(progText, cancelled ? 'Cancelled.' : `Failed: ${err.message}`);
      if (cancelled) app.notices.info('Generation cancelled.');
      else if (!api.isAbort(err)) app.notices.error('Generate an image (POST /v1/images/generate)', err);
    } finally {
      ownProgress = null;
      renderBusy();
      genBtn.disabled = false;
      cancelBtn.disabled = true;
      genCtl = null;
      loadGallery();
    }
  }

  function pngURL(b64) {
    const bin = atob(b64);
    const arr = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) arr[i] = bin.charCodeAt(i);
    return URL.createObjectURL(new Blob([arr], { type: 'image/png' }));
  }

  let resultURL = '';
  function showResult(r, id) {
    if (resultURL) URL.revokeObjectURL(resultURL);
    resultURL = pngURL(r.png);
    const p = r.params || {};
    const rerun = h('button.btn.btn-secondary', { type: 'button' }, 'Re-run with this seed');
    rerun.addEventListener('click', () => { setParams(p, r.seed); generate(); });
    replace(resultEl,
      h('img.generated-image#generated-image', { src: resultURL, alt: `Generated: ${p.prompt || ''}`, dataset: { seed: String(r.seed), jobId: id || '' } }),
      h('div.image-metadata',
        h('div.status-grid',
          field('Dimensions', `${num(r.width)}×${num(r.height)}`),
          field('Time taken', duration(r.timeTakenMs)),
          field('Seed', String(r.seed), { props: { id: 'gen-result-seed' } }),
          field('Sampler', p.sampler),
          field('Steps', p.steps),
          field('CFG scale', p.cfgScale),
          field('Job', id),
          field('Engine', r.demoEngine ? 'demo stand-in (synthetic pattern)' : 'stable-diffusion.cpp')),
        h('p.small', h('strong', 'Prompt: '), p.prompt || ''),
        p.negativePrompt ? h('p.small', h('strong', 'Negative: '), p.negativePrompt) : null,
        h('div.button-group', h('a.btn.btn-secondary', { href: resultURL, download: `${id || 'image'}-${r.seed}.png` }, 'Download PNG'), rerun)));
  }

  // --- gallery ------------------------------------------------------------------------
  const galleryEl = h('div.gallery#gallery', h('p.muted', 'Loading past images…'));
  const thumbs = new Map(); // job id -> object URL
  let galleryLoading = null;

  async function loadGallery() {
    if (galleryLoading) { galleryLoading.again = true; return; }
    galleryLoading = { again: false };
    try {
      const r = await api.get(`/v1/images/jobs${api.q({ pageSize: GALLERY_SIZE })}`);
      renderGallery(r.jobs || []);
    } catch (err) {
      app.notices.error('Load the gallery (GET /v1/images/jobs)', err);
      replace(galleryEl, h('p.error-message', `Could not load past images: ${err.message}`));
    } finally {
      const again = galleryLoading.again;
      galleryLoading = null;
      if (again) loadGallery();
    }
  }

  function renderGallery(jobs) {
    if (!jobs.length) { replace(galleryEl, h('p.muted', 'No images yet.')); return; }
    const pending = [];
    replace(galleryEl, jobs.map((j) => {
      const p = j.params || {};
      const r = j.result || {};
      const status = enumLabel(j.status, 'JOB_STATUS_');
      const img = h('img.thumb', { alt: p.prompt || 'image' });
      const frame = h('div.thumb-frame', status === 'succeeded' ? img : h('span.thumb-status', status));
      if (status === 'succeeded') {
        if (thumbs.has(j.id)) img.src = thumbs.get(j.id);
        else pending.push([j.id, img]);
      }
      const seed = r.seed ?? p.seed;
      const rerun = h('button.btn.btn-secondary.btn-small', { type: 'button', disabled: !p.prompt }, 'Re-run (same seed)');
      rerun.addEventListener('click', () => {
        setParams(r.params || p, seed ?? -1);
        window.scrollTo({ top: 0, behavior: 'smooth' });
        generate();
      });
      const delBtn = h('button.btn.btn-danger.btn-small', { type: 'button' }, 'Delete');
      delBtn.addEventListener('click', async () => {
        if (!window.confirm('Delete this image from the history?')) return;
        try {
          await api.del(`/v1/images/jobs/${encodeURIComponent(j.id)}`);
          if (thumbs.has(j.id)) { URL.revokeObjectURL(thumbs.get(j.id)); thumbs.delete(j.id); }
          loadGallery();
        } catch (err) {
          app.notices.error('Delete the image', err);
        }
      });
      return h('div.gallery-item', { dataset: { jobId: j.id, status } },
        frame,
        h('div.gallery-meta',
          h('div.gallery-prompt', p.prompt || '(no prompt)'),
          h('div.small.muted', `${num(r.width || p.width)}×${num(r.height || p.height)} · ${p.steps || '?'} steps · ${p.sampler || 'euler_a'} · seed ${seed ?? 'random'}`),
          h('div.small.muted', `${status}${j.offloaded ? ' · LLM offloaded' : ''} · ${time(j.createdAt, true)}`),
          j.error ? h('div.small.error-text', j.error) : null,
          h('div.button-group', rerun, delBtn)));
    }));
    loadThumbs(pending);
  }

  // Thumbnails load one after another so that the gallery never takes every connection.
  async function loadThumbs(list) {
    for (const [id, img] of list) {
      try {
        const r = await api.get(`/v1/images/jobs/${encodeURIComponent(id)}${api.q({ includeImage: 'true' })}`);
        const png = r.job && r.job.result && r.job.result.png;
        if (!png) continue;
        const url = pngURL(png);
        thumbs.set(id, url);
        img.src = url;
      } catch (err) {
        if (err.status === 404) continue; // deleted meanwhile
        app.notices.error('Load a gallery image', err);
        return;
      }
    }
  }

  const el = h('div.tab.diffusion-server-control',
    h('div.tab-head', h('h2', 'Diffusion Server (stable-diffusion.cpp)'), liveEl),
    card('Server Status', statusEl),
    card('Server Configuration', configForm),
    h('div.grid-2',
      card('Generate Image', { id: 'generate-card' }, genForm),
      card('Generated Image', { id: 'result-card' }, resultEl)),
    card('Gallery', { id: 'gallery-card' },
      h('div.log-tools', h('span.muted.small', 'Past images from the job history, newest first.'),
        h('button.btn.btn-secondary.btn-small#gallery-refresh', { type: 'button', on: { click: () => loadGallery() } }, 'Refresh')),
      galleryEl));

  app.onChanged((what) => { if (what === 'models') loadModels(); });

  return {
    el,
    start(signal) {
      loadModels();
      loadGallery();
      api.follow('/v1/diffusion/watch', (m) => { if (m.info) renderStatus(m.info); markers.fromWatch(m); }, {
        signal,
        onState: (state, err) => {
          liveEl.className = `pill stream-state ${state === 'live' ? 'pill-ok' : state === 'closed' ? 'pill-off' : 'pill-warn'}`;
          setText(liveEl, state);
          const name = 'Diffusion status stream (GET /v1/diffusion/watch)';
          if (state === 'live') app.notices.clear(name); else if (err) app.notices.error(name, err);
        },
      });
    },
  };
}
