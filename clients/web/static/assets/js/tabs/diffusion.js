// Diffusion Server tab: start/stop with mode and offload options (status live from
// /v1/diffusion/watch); the generate form with every seed parameter and the eight samplers,
// live previews (the engine's preview image step by step), img2img and inpainting (an
// uploaded init image, a strength, a mask uploaded or drawn over the image), batches of n
// images; run through the orchestrator (/v1/images/generate: queue, offload, progress,
// previews, result) with a live progress bar, cancel, the images with their seeds; and the
// gallery of past images from the job history, every image of a batch (<job id>_<i>), with
// re-run using the same seed and the job's settings put back into the form. What the engine's
// mode cannot do (DiffusionInfo.capabilities) is disabled with the reason.

import * as api from '../api.js';
import {
  h, replace, card, field, setDisabled, num, duration, time, busy, formField, setText, statusPill, healthPill,
  enumLabel, intValue, floatValue, progressBar, progressLabel, visible, bytes,
} from '../dom.js';
import { markers } from '../timeline.js';
import { createMaskEditor } from '../maskcanvas.js';

// Display names of samplers; the list itself comes from the API (DiffusionInfo.samplers), the
// one list the service validates against. A sampler without a name here shows its id.
const SAMPLER_LABELS = {
  euler_a: 'Euler A', euler: 'Euler', heun: 'Heun', dpm2: 'DPM2',
  'dpm++2s_a': 'DPM++ 2S A', 'dpm++2m': 'DPM++ 2M', 'dpm++2mv2': 'DPM++ 2Mv2', lcm: 'LCM',
};
const GALLERY_SIZE = 24;
// The batch limit before the engine reports its own (capabilities.maxBatch).
const DEFAULT_MAX_BATCH = 8;
// Preview methods (sd-cli --preview); the engine's mode says which it offers.
const PREVIEW_METHODS = ['proj', 'tae', 'vae'];
const PREVIEW_LABELS = { proj: 'proj (fast, coarse)', tae: 'tae (tiny autoencoder)', vae: 'vae (full, slowest)' };

/** base64 encodes bytes for a JSON bytes field. */
function base64(u8) {
  let s = '';
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
  return btoa(s);
}

/** imagesOf lists a result's images in order: the first, then result.batch. */
function imagesOf(r) {
  return [{ png: r.png, seed: r.seed, width: r.width, height: r.height }, ...(r.batch || [])];
}

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
    applyCapabilities(info.capabilities);
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
  const nIn = h('input#gen-n', { type: 'number', min: '1', max: String(DEFAULT_MAX_BATCH), value: '1', dataset: { label: 'Images' } });
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

  // Previews: the methods the engine's mode offers (capabilities.previewMethods).
  const previewChk = h('input#gen-preview', { type: 'checkbox' });
  const previewMethodSel = h('select#gen-preview-method', PREVIEW_METHODS.map((m) => h('option', { value: m }, PREVIEW_LABELS[m])));
  const previewIntervalIn = h('input#gen-preview-interval', { type: 'number', min: '1', max: '150', value: '1', dataset: { label: 'Preview every N steps' } });
  const previewReason = h('small.hint.capability-reason#gen-preview-reason', { hidden: true });
  const previewFields = h('div.form-row.preview-options',
    h('div.form-group', h('label', '\u00a0'), h('label.check', previewChk, ' Live preview')),
    formField('Preview method', previewMethodSel), formField('Every N steps', previewIntervalIn));

  // Edits: an init image (img2img), a strength, and a mask uploaded or drawn (inpainting).
  const initIn = h('input#gen-init', { type: 'file', accept: 'image/png,image/jpeg' });
  const initClear = h('button.btn.btn-secondary.btn-small#gen-init-clear', { type: 'button', disabled: true }, 'Remove image');
  const initNote = h('small.hint#gen-init-note', 'Text to image. Choose a PNG or JPEG to edit it instead (its size is the image size).');
  const strengthIn = h('input#gen-strength', { type: 'range', min: '0', max: '1', step: '0.05', value: '0.75', disabled: true });
  const strengthOut = h('output#gen-strength-value', '0.75');
  const maskIn = h('input#gen-mask-file', { type: 'file', accept: 'image/png,image/jpeg', disabled: true });
  const brushIn = h('input#gen-brush', { type: 'range', min: '2', max: '64', step: '1', value: '16' });
  const maskClear = h('button.btn.btn-secondary.btn-small#gen-mask-clear', { type: 'button', disabled: true }, 'Clear mask');
  const maskNote = h('small.hint#gen-mask-note', 'No mask: the whole image is edited. Paint on the image (white is repainted) or upload a mask.');
  const editReason = h('small.hint.capability-reason#gen-edit-reason', { hidden: true });
  const edit = { bytes: null, name: '', url: '', maskBytes: null, maskName: '' };
  const mask = createMaskEditor({ brushInput: brushIn, onChange: () => renderEdit() });
  const editFields = h('fieldset.edit-options#gen-edit',
    h('legend', 'Edit an image (img2img, inpainting)'),
    h('div.form-row',
      formField('Init image', initIn),
      h('div.form-group', h('label', { for: 'gen-strength' }, 'Strength ', strengthOut), strengthIn),
      h('div.form-group', h('label', '\u00a0'), initClear)),
    initNote, editReason,
    mask.el,
    h('div.form-row.mask-tools',
      formField('Mask file (optional)', maskIn),
      h('div.form-group', h('label', { for: 'gen-brush' }, 'Brush'), brushIn),
      h('div.form-group', h('label', '\u00a0'), maskClear)),
    maskNote);

  const genBtn = h('button.btn.btn-primary#gen-start', { type: 'submit' }, 'Generate Image');
  const cancelBtn = h('button.btn.btn-danger#gen-cancel', { type: 'button', disabled: true }, 'Cancel');
  const bar = progressBar('gen-progress');
  bar.id = 'gen-progress';
  bar.set(0, 'idle');
  const progText = h('div.progress-text.small#gen-progress-text', 'No generation running.');
  const orchText = h('div.orch-text.small.muted#gen-orchestration');
  const previewImg = h('img.preview-image#gen-preview-image', { alt: 'Preview of the image being sampled' });
  const previewCaption = h('figcaption.small.muted#gen-preview-caption');
  const previewEl = h('figure.preview#gen-preview', { hidden: true }, previewImg, previewCaption);
  const genForm = h('form.generate-form#generate-form',
    formField('Prompt', promptIn),
    formField('Negative prompt', negIn),
    h('div.form-row',
      formField('Width', widthIn), formField('Height', heightIn), formField('Steps', stepsIn),
      formField('CFG scale', cfgIn), formField('Seed (-1 random)', seedIn), formField('Sampler', samplerSel),
      formField('Images (batch)', nIn)),
    previewFields, previewReason,
    editFields,
    h('div.button-group', genBtn, cancelBtn),
    h('div.progress-area', bar, progText, orchText, previewEl));

  // What the engine's mode can do; unknown (no capabilities reported) leaves everything on and
  // lets the service say no.
  let caps = null;
  function applyCapabilities(c) {
    caps = c || null;
    const methods = caps ? (caps.previewMethods || []).map((m) => enumLabel(m, 'PREVIEW_METHOD_')) : PREVIEW_METHODS;
    const noPreview = caps !== null && methods.length === 0;
    previewChk.disabled = noPreview;
    if (noPreview) previewChk.checked = false;
    const keep = previewMethodSel.value;
    const key = methods.join(',');
    if (previewMethodSel.dataset.methods !== key) {
      previewMethodSel.dataset.methods = key;
      previewMethodSel.replaceChildren(...methods.map((m) => h('option', { value: m }, PREVIEW_LABELS[m] || m)));
      if (methods.includes(keep)) previewMethodSel.value = keep;
    }
    previewReason.hidden = !noPreview;
    setText(previewReason, noPreview ? `Previews are off: ${caps.limitations || 'the engine in this mode writes none'}.` : '');
    const noEdit = caps !== null && !caps.edits;
    const noMask = caps !== null && !caps.masks;
    initIn.disabled = noEdit;
    editFields.dataset.edits = noEdit ? 'no' : 'yes';
    editFields.dataset.masks = noMask ? 'no' : 'yes';
    editReason.hidden = !noEdit && !noMask;
    setText(editReason, noEdit ? `Edits are off: ${caps.limitations || 'the engine in this mode cannot edit images'}.`
      : noMask ? `Masks are off: ${caps.limitations || 'the engine in this mode cannot inpaint'}.` : '');
    nIn.max = String(caps && num(caps.maxBatch) > 0 ? num(caps.maxBatch) : DEFAULT_MAX_BATCH);
    renderPreviewOptions();
    renderEdit();
  }

  function renderPreviewOptions() {
    previewMethodSel.disabled = !previewChk.checked;
    previewIntervalIn.disabled = !previewChk.checked;
  }
  previewChk.addEventListener('change', renderPreviewOptions);

  function renderEdit() {
    const on = Boolean(edit.bytes);
    const masksOK = !(caps && !caps.masks);
    strengthIn.disabled = !on;
    initClear.disabled = !on;
    maskIn.disabled = !on || !masksOK;
    widthIn.disabled = on;
    heightIn.disabled = on;
    mask.setEnabled(on && masksOK && !edit.maskBytes);
    maskClear.disabled = !edit.maskBytes && !mask.hasStrokes();
    editFields.dataset.mode = !on ? 'txt2img' : (edit.maskBytes || mask.hasStrokes()) ? 'inpaint' : 'img2img';
    if (!on) setText(initNote, 'Text to image. Choose a PNG or JPEG to edit it instead (its size is the image size).');
    setText(maskNote, !on ? 'Choose an init image to paint a mask on it.'
      : edit.maskBytes ? `Mask: ${edit.maskName} (sent as it is; white is repainted).`
        : mask.hasStrokes() ? 'Mask: drawn (white is repainted, the rest kept).'
          : 'No mask: the whole image is edited. Paint on the image (white is repainted) or upload a mask.');
  }
  strengthIn.addEventListener('input', () => setText(strengthOut, Number(strengthIn.value).toFixed(2)));

  async function readFile(input) {
    const f = input.files && input.files[0];
    if (!f) return null;
    return { name: f.name, bytes: new Uint8Array(await f.arrayBuffer()), type: f.type };
  }

  function setInit(file) {
    if (edit.url) URL.revokeObjectURL(edit.url);
    Object.assign(edit, { bytes: null, name: '', url: '', maskBytes: null, maskName: '' });
    maskIn.value = '';
    mask.setImage(null);
    if (!file) { initIn.value = ''; renderEdit(); return; }
    edit.bytes = file.bytes;
    edit.name = file.name;
    edit.url = URL.createObjectURL(new Blob([file.bytes], { type: file.type || 'application/octet-stream' }));
    const probe = new Image();
    probe.onload = () => {
      if (edit.bytes !== file.bytes) return; // replaced meanwhile
      widthIn.value = String(probe.naturalWidth);
      heightIn.value = String(probe.naturalHeight);
      mask.setImage(edit.url, probe.naturalWidth, probe.naturalHeight);
      setText(initNote, `Editing ${file.name} (${probe.naturalWidth}×${probe.naturalHeight}, ${bytes(file.bytes.length)}): the image's size is the output size.`);
      renderEdit();
    };
    probe.onerror = () => {
      if (edit.bytes !== file.bytes) return;
      // Only a convenience: the service decides (and says why) when the image is submitted.
      setText(initNote, `The browser cannot show ${file.name} as an image; the service checks it when you generate.`);
      renderEdit();
    };
    probe.src = edit.url;
    renderEdit();
  }

  initIn.addEventListener('change', async () => {
    try { setInit(await readFile(initIn)); } catch (err) { app.notices.error('Read the init image', err); }
  });
  initClear.addEventListener('click', () => setInit(null));
  maskIn.addEventListener('change', async () => {
    try {
      const f = await readFile(maskIn);
      edit.maskBytes = f ? f.bytes : null;
      edit.maskName = f ? f.name : '';
      if (f) mask.clear();
      renderEdit();
    } catch (err) { app.notices.error('Read the mask', err); }
  });
  maskClear.addEventListener('click', () => {
    edit.maskBytes = null;
    edit.maskName = '';
    maskIn.value = '';
    mask.clear();
  });

  const resultEl = h('div.generated-image-container#gen-result', h('p.muted', 'The image appears here.'));
  let genCtl = null;
  let jobId = '';

  // readParams reads the form into ImageParams (JSON names). Its checks are only convenience:
  // the service validates everything again and its reason is shown.
  async function readParams() {
    const prompt = promptIn.value.trim();
    if (!prompt) throw new Error('enter a prompt');
    const p = { prompt, sampler: samplerSel.value };
    if (negIn.value.trim()) p.negativePrompt = negIn.value.trim();
    const w = intValue(widthIn); const hh = intValue(heightIn); const s = intValue(stepsIn);
    const cfg = floatValue(cfgIn); const seed = intValue(seedIn); const n = intValue(nIn);
    if (!edit.bytes) {
      for (const [name, v] of [['Width', w], ['Height', hh]]) {
        if (v !== undefined && (v < 64 || v > 2048 || v % 64 !== 0)) throw new Error(`${name} must be a multiple of 64 between 64 and 2048`);
      }
      if (w !== undefined) p.width = w;
      if (hh !== undefined) p.height = hh;
    }
    if (s !== undefined && (s < 1 || s > 150)) throw new Error('Steps must be between 1 and 150');
    if (cfg !== undefined && (cfg < 0 || cfg > 30)) throw new Error('CFG scale must be between 0 and 30');
    const maxN = Number(nIn.max) || DEFAULT_MAX_BATCH;
    if (n !== undefined && (n < 1 || n > maxN)) throw new Error(`Images must be between 1 and ${maxN}`);
    if (s !== undefined) p.steps = s;
    if (cfg !== undefined) p.cfgScale = cfg;
    if (seed !== undefined && seed >= 0) p.seed = String(seed);
    if (n !== undefined && n > 1) p.n = n;
    if (previewChk.checked && !previewChk.disabled) {
      const iv = intValue(previewIntervalIn);
      p.preview = { method: `PREVIEW_METHOD_${previewMethodSel.value.toUpperCase()}` };
      if (iv !== undefined) p.preview.interval = iv;
    }
    if (edit.bytes) {
      // Width and height come from the init image (the service reads its size).
      p.initImage = base64(edit.bytes);
      p.strength = Number(strengthIn.value);
      if (edit.maskBytes) p.mask = base64(edit.maskBytes);
      else if (mask.hasStrokes()) p.mask = base64(await mask.toPNG());
    }
    return p;
  }

  // setParams puts a job's parameters back into the form (a re-run). An edit's init image and
  // mask are not kept by the service (job records drop the uploads): the one in the form, if
  // any, stays; said so when there is none.
  function setParams(p, seed) {
    promptIn.value = p.prompt || '';
    negIn.value = p.negativePrompt || '';
    if (!edit.bytes) {
      widthIn.value = String(num(p.width) || 512);
      heightIn.value = String(num(p.height) || 512);
    }
    stepsIn.value = String(num(p.steps) || 20);
    cfgIn.value = String(p.cfgScale ?? 7.5);
    seedIn.value = String(seed ?? p.seed ?? -1);
    samplerSel.value = p.sampler || 'euler_a';
    nIn.value = String(num(p.n) || 1);
    const pm = p.preview && p.preview.method ? enumLabel(p.preview.method, 'PREVIEW_METHOD_') : '';
    previewChk.checked = Boolean(pm) && !previewChk.disabled;
    if (pm) {
      previewMethodSel.value = pm;
      previewIntervalIn.value = String(num(p.preview.interval) || 1);
    }
    renderPreviewOptions();
    const isEdit = p.strength !== undefined && p.strength !== null;
    if (isEdit) {
      strengthIn.value = String(p.strength);
      setText(strengthOut, Number(p.strength).toFixed(2));
    }
    return isEdit;
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

  let previewURL = '';
  function showPreview(pv, p) {
    if (previewURL) URL.revokeObjectURL(previewURL);
    previewURL = pngURL(pv.png);
    previewImg.src = previewURL;
    const step = num(pv.step);
    const count = num(p.imageCount);
    previewImg.dataset.step = String(step);
    previewImg.dataset.imageIndex = String(num(pv.imageIndex));
    previewEl.hidden = false;
    const perImage = count > 1 ? Math.round(num(p.totalSteps) / count) : num(p.totalSteps);
    setText(previewCaption, `Preview · step ${step}${perImage ? `/${perImage}` : ''}${count > 1 ? ` · image ${num(pv.imageIndex) + 1} of ${count}` : ''} · ${num(pv.width)}×${num(pv.height)}`);
  }

  async function generate() {
    let params;
    try { params = await readParams(); } catch (err) { app.notices.error('Generate an image', err); return; }
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
    previewEl.hidden = true;
    delete previewImg.dataset.step;
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
          const of = num(p.imageCount) > 1 ? ` · image ${num(p.imageIndex) + 1} of ${num(p.imageCount)}` : '';
          setText(progText, `${p.message || stage}${of} · ${duration(p.elapsedMs)} elapsed${num(p.stepsPerSecond) ? ` · ${num(p.stepsPerSecond).toFixed(2)} steps/s` : ''}`);
          if (p.preview && p.preview.png) showPreview(p.preview, p);
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
      bar.set(bar.dataset.percent, cancelled ? 'cancelled' : 'failed');
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

  let resultURLs = [];
  function showResult(r, id) {
    for (const u of resultURLs) URL.revokeObjectURL(u);
    const p = r.params || {};
    const images = imagesOf(r);
    resultURLs = images.map((im) => pngURL(im.png));
    const rerun = h('button.btn.btn-secondary#gen-rerun', { type: 'button' }, images.length > 1 ? 'Re-run the batch' : 'Re-run with this seed');
    rerun.addEventListener('click', () => { setParams(p, r.seed); generate(); });
    const name = (i) => `${id || 'image'}_${i}-${images[i].seed}.png`;
    const pictures = images.length === 1
      ? h('img.generated-image#generated-image', { src: resultURLs[0], alt: `Generated: ${p.prompt || ''}`, dataset: { seed: String(r.seed), jobId: id || '', index: '0' } })
      : h('div.batch-grid#gen-batch', { dataset: { count: String(images.length) } }, images.map((im, i) => {
        const alone = h('button.btn.btn-secondary.btn-small', { type: 'button' }, 'Re-run alone');
        alone.addEventListener('click', () => { setParams({ ...p, n: 1 }, im.seed); generate(); });
        return h('figure.batch-item', { dataset: { index: String(i), seed: String(im.seed) } },
          h(i === 0 ? 'img.generated-image.batch-image#generated-image' : 'img.generated-image.batch-image',
            { src: resultURLs[i], alt: `Image ${i + 1} of ${images.length}: ${p.prompt || ''}`, dataset: { seed: String(im.seed), jobId: id || '', index: String(i) } }),
          h('figcaption.small', h('span.batch-seed', `seed ${im.seed}`), ' · ',
            h('a', { href: resultURLs[i], download: name(i) }, 'PNG'), ' ', alone));
      }));
    const isEdit = p.strength !== undefined && p.strength !== null;
    replace(resultEl,
      pictures,
      h('div.image-metadata',
        h('div.status-grid',
          field('Dimensions', `${num(r.width)}×${num(r.height)}`),
          field('Time taken', duration(r.timeTakenMs)),
          field(images.length > 1 ? 'Seeds' : 'Seed', images.length > 1 ? images.map((im) => im.seed).join(', ') : String(r.seed), { props: { id: 'gen-result-seed' } }),
          images.length > 1 ? field('Images', String(images.length)) : null,
          field('Sampler', p.sampler),
          field('Steps', p.steps),
          field('CFG scale', p.cfgScale),
          field('Mode', isEdit ? `edit (img2img), strength ${Number(p.strength).toFixed(2)}` : 'text to image', { props: { id: 'gen-result-mode' } }),
          p.preview ? field('Preview', `${enumLabel(p.preview.method, 'PREVIEW_METHOD_')} every ${num(p.preview.interval) || 1} step(s)`) : null,
          field('Job', id),
          field('Engine', r.demoEngine ? 'demo stand-in (synthetic pattern)' : 'stable-diffusion.cpp')),
        h('p.small', h('strong', 'Prompt: '), p.prompt || ''),
        p.negativePrompt ? h('p.small', h('strong', 'Negative: '), p.negativePrompt) : null,
        h('div.button-group', images.length === 1 ? h('a.btn.btn-secondary', { href: resultURLs[0], download: name(0) }, 'Download PNG') : null, rerun)));
  }

  // --- gallery ------------------------------------------------------------------------
  const galleryEl = h('div.gallery#gallery', h('p.muted', 'Loading past images…'));
  const thumbs = new Map(); // job id -> [object URL of each image]
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

  // useSettings puts a past job's parameters into the form; for an edit it says that the init
  // image is not kept by the service. It answers whether the form can re-run it as it was.
  function useSettings(j, seed) {
    const r = j.result || {};
    const isEdit = setParams(r.params || j.params || {}, seed);
    window.scrollTo({ top: 0, behavior: 'smooth' });
    if (isEdit && !edit.bytes) {
      app.notices.info('This was an edit: its settings are in the form, but the service keeps no init image or mask (job records drop the uploads). Choose the image again, then Generate.');
      return false;
    }
    return true;
  }

  function renderGallery(jobs) {
    if (!jobs.length) { replace(galleryEl, h('p.muted', 'No images yet.')); return; }
    const pending = [];
    replace(galleryEl, jobs.map((j) => {
      const p = j.params || {};
      const r = j.result || {};
      const rp = r.params || p;
      const status = enumLabel(j.status, 'JOB_STATUS_');
      const count = status === 'succeeded' ? 1 + (r.batch || []).length : num(rp.n) || 1;
      const seeds = status === 'succeeded' ? imagesOf(r).map((im) => im.seed) : [];
      const imgs = status === 'succeeded' ? Array.from({ length: count }, (_, i) => h('img.thumb', {
        alt: `${p.prompt || 'image'} (${i + 1} of ${count})`, title: seeds[i] !== undefined ? `${j.id}_${i} · seed ${seeds[i]}` : `${j.id}_${i}`,
        dataset: { imageId: `${j.id}_${i}`, seed: seeds[i] !== undefined ? String(seeds[i]) : '' },
      })) : [];
      const frame = h(count > 1 ? 'div.thumb-frame.thumb-grid' : 'div.thumb-frame', status === 'succeeded' ? imgs : h('span.thumb-status', status));
      if (status === 'succeeded') {
        if (thumbs.has(j.id)) thumbs.get(j.id).forEach((u, i) => { if (imgs[i]) imgs[i].src = u; });
        else pending.push([j.id, imgs]);
      }
      const seed = r.seed ?? p.seed;
      const isEdit = rp.strength !== undefined && rp.strength !== null;
      const rerun = h('button.btn.btn-secondary.btn-small.gallery-rerun', { type: 'button', disabled: !p.prompt }, 'Re-run (same seed)');
      rerun.addEventListener('click', () => { if (useSettings(j, seed ?? -1)) generate(); });
      const use = h('button.btn.btn-secondary.btn-small.gallery-use', { type: 'button', disabled: !p.prompt }, 'Use settings');
      use.addEventListener('click', () => useSettings(j, seed ?? -1));
      const delBtn = h('button.btn.btn-danger.btn-small', { type: 'button' }, 'Delete');
      delBtn.addEventListener('click', async () => {
        if (!window.confirm('Delete this image from the history?')) return;
        try {
          await api.del(`/v1/images/jobs/${encodeURIComponent(j.id)}`);
          if (thumbs.has(j.id)) { thumbs.get(j.id).forEach((u) => URL.revokeObjectURL(u)); thumbs.delete(j.id); }
          loadGallery();
        } catch (err) {
          app.notices.error('Delete the image', err);
        }
      });
      const mode = isEdit ? ` · edit, strength ${Number(rp.strength).toFixed(2)}` : '';
      const seedText = seeds.length > 1 ? `seeds ${seeds.join(', ')}` : `seed ${seed ?? 'random'}`;
      return h('div.gallery-item', { dataset: { jobId: j.id, status, count: String(count), mode: isEdit ? 'edit' : 'txt2img' } },
        frame,
        h('div.gallery-meta',
          h('div.gallery-prompt', p.prompt || '(no prompt)'),
          h('div.small.muted.gallery-params', `${num(r.width || rp.width)}×${num(r.height || rp.height)} · ${rp.steps || '?'} steps · ${rp.sampler || 'euler_a'}${count > 1 ? ` · ${count} images` : ''}${mode} · ${seedText}`),
          h('div.small.muted', `${status}${j.offloaded ? ' · LLM offloaded' : ''} · ${time(j.createdAt, true)}`),
          j.error ? h('div.small.error-text', j.error) : null,
          h('div.button-group', rerun, use, delBtn)));
    }));
    loadThumbs(pending);
  }

  // Thumbnails load one job after another so that the gallery never takes every connection.
  async function loadThumbs(list) {
    for (const [id, imgs] of list) {
      try {
        const r = await api.get(`/v1/images/jobs/${encodeURIComponent(id)}${api.q({ includeImage: 'true' })}`);
        const res = r.job && r.job.result;
        if (!res || !res.png) continue;
        const urls = imagesOf(res).map((im) => pngURL(im.png));
        thumbs.set(id, urls);
        urls.forEach((u, i) => { if (imgs[i]) imgs[i].src = u; });
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
