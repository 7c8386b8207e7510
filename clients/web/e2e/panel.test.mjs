// Browser tests of the web control panel: Debian's chromium driven by playwright-core against
// the real stack (real gateway and services, real llama-server with the tiny random model, the
// real stable-diffusion.cpp with the tiny random-weight diffusion model — or, where sd.cpp is not
// found and GENAILAB_REQUIRE_SDCPP is not 1, its stand-in). Screenshots of every tab go to
// artifacts/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { crc32, deflateSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { findRealSD, startStack } from './stack.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const artifacts = join(here, 'artifacts');
const TOKEN = `e2e-${Math.random().toString(36).slice(2)}`;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// What the image tests ask of the engine. The real stable-diffusion.cpp with the tiny model
// takes about 0.1-0.3 s a step at 64x64 on two cores, more at 128x128, and its VAE decode grows
// with the pixels (seconds at 256x256): the images stay small, and a cancelled one has enough
// steps to be caught half-way. The orchestrator's budget (256 MiB, no headroom)
// lets a 128x128 image (about 150 MiB with the tiny model's 76 MiB of weights) run next to the
// LLM, while a 384x384 one (about 390 MiB; 310 MiB on the stand-in, which has no weights) needs
// the LLM offloaded.
// The offloaded image has 2 steps on the real engine (seconds at 384x384), 30 on the stand-in
// (3 s), so that the page sees it generating.
const IMAGE = { size: 128, steps: 20, cancelSteps: 60, offloadSize: 384, offloadSteps: { real: 2, standin: 30 }, budget: 256 << 20 };
// The stand-in (no sd.cpp here) is slowed down so that the bar is seen moving and a cancel
// lands half-way: 20 steps take about 2 s.
const STANDIN_ENV = { SDSTANDIN_STEP_MS: '100', SDSTANDIN_STAGE_MS: '50' };

let stack;
let sd; // the real stable-diffusion.cpp (findRealSD), null for the stand-in
let browser; // a persistent context on a fresh profile
let page;
let consoleErrors = [];
let fileServer;
let profile;

function watchConsole(p, sink) {
  p.on('console', (m) => { if (m.type() === 'error') sink.push(`console: ${m.text()}`); });
  p.on('pageerror', (e) => sink.push(`pageerror: ${e.message}`));
}

async function newPanelPage({ withToken }) {
  const p = await browser.newPage();
  if (withToken) await p.addInitScript((t) => sessionStorage.setItem('genailab.token', t), TOKEN);
  return p;
}

/** noErrors asserts that the page logged no console error and shows no error notice. */
async function noErrors(p, what) {
  const notices = await p.locator('.notice-error').allTextContents();
  assert.deepEqual(notices, [], `${what}: error notices in the page`);
  assert.deepEqual(consoleErrors, [], `${what}: console errors`);
}

async function openTab(name, ready) {
  await page.click(`#tab-${name}`);
  await page.waitForSelector(`[data-tab-panel="${name}"]`);
  await ready();
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  const found = findRealSD();
  console.log(`# ${found.note}`);
  sd = found.sd;
  stack = await startStack({
    token: TOKEN,
    sd,
    env: {
      ...(sd ? {} : STANDIN_ENV),
      // The engines' memory budget and no headroom (see IMAGE).
      GENAILAB_ORCHESTRATOR_BUDGET_BYTES: String(IMAGE.budget),
      GENAILAB_ORCHESTRATOR_HEADROOM_BYTES: '0',
      // Another user's engines no longer count as this stack's (the monitor's
      // -managed-pid-dir: only the stack's services' descendants). This attributes none of
      // the stack's own by name either, so that the decisions rest on the estimates alone:
      // otherwise the real sd-cli's measured peaks (141 MiB at 128x128 against an estimate
      // of 150 MiB) are learnt into the estimates as the tests run, and move the line the
      // 256 MiB budget draws between IMAGE.size (no offload) and IMAGE.offloadSize (offload).
      GENAILAB_MONITOR_MANAGED_NAMES: '',
    },
    logFile: join(artifacts, 'stack.log'),
  });
  profile = mkdtempSync(join(tmpdir(), 'genailab-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  browser.setDefaultTimeout(30_000);
}, { timeout: 300_000 });

after(async () => {
  if (fileServer) fileServer.close();
  if (browser) await browser.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (stack) await stack.stop();
});

test('the gateway serves the panel without a token and keeps the API guarded', async () => {
  const index = await fetch(`${stack.base}/`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type'), /^text\/html/);
  const js = await fetch(`${stack.base}/assets/js/main.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  const guarded = await fetch(`${stack.base}/v1/system`);
  assert.equal(guarded.status, 401);
  const unknown = await stack.api('/v1/no-such-thing');
  assert.equal(unknown.status, 404);
  assert.match(unknown.headers.get('content-type'), /^application\/json/);
  assert.ok((await unknown.json()).error, 'a 404 under /v1 stays JSON');
});

test('the page asks for the token, refuses a wrong one, and loads with the right one', async () => {
  const errs = [];
  const p = await newPanelPage({ withToken: false });
  watchConsole(p, errs);
  await p.goto(stack.base);
  await p.waitForSelector('#token-dialog[open]');
  await p.fill('#token-input', 'wrong-token');
  await p.click('#token-save');
  await p.waitForFunction(() => /refused the token/.test(document.querySelector('#token-error').textContent));
  await p.fill('#token-input', TOKEN);
  await p.click('#token-save');
  await p.waitForSelector('#token-dialog', { state: 'hidden' });
  await p.waitForSelector('#recommended-threads');
  assert.equal(await p.evaluate(() => sessionStorage.getItem('genailab.token')), TOKEN);
  // The only errors are the browser's own lines for the two refused (401) requests.
  const unexpected = errs.filter((e) => !/status of 401/.test(e));
  assert.deepEqual(unexpected, []);
  await p.close();
});

test('every tab loads with no console error', async () => {
  page = await newPanelPage({ withToken: true });
  watchConsole(page, consoleErrors);
  await page.goto(stack.base);
  await openTab('system', () => page.waitForSelector('#recommended-threads'));
  const threads = Number(await page.textContent('#recommended-threads .value'));
  assert.ok(threads >= 1, `recommended threads ${threads}`);
  await openTab('models', () => page.waitForSelector('.model-row[data-model-id="tiny-random-llama"]'));
  await page.waitForSelector('#storage-total');
  await openTab('llm', () => page.waitForSelector('#llm-status-field [data-status="running"]'));
  await page.waitForSelector('#llm-logs .log-line');
  await openTab('diffusion', () => page.waitForSelector('#diffusion-status-field [data-status]'));
  await page.waitForSelector('#gallery :is(p, .gallery-item)');
  await openTab('resources', () => page.waitForFunction(() => Number(document.querySelector('#timeline-chart').dataset.points) > 0));
  await page.waitForSelector('#would-need-offload [data-needs-offload]');
  await page.waitForSelector('#server-llm [data-status="running"]');
  await noErrors(page, 'loading every tab');
});

test('LLM: stop and start from the page, then a chat streams tokens', async () => {
  await openTab('llm', () => page.waitForSelector('#llm-status-field [data-status="running"]'));
  await page.click('#llm-stop');
  await page.waitForSelector('#llm-status-field [data-status="stopped"]');
  assert.equal((await page.textContent('#llm-pid .value')).trim(), '—');
  await page.click('#llm-start');
  await page.waitForSelector('#llm-status-field [data-status="running"]', { timeout: 60_000 });
  const pid = (await page.textContent('#llm-pid .value')).trim();
  assert.match(pid, /^\d+$/);
  // Restart with the form's options (context size 128): a new process with that context.
  await page.fill('#llm-context', '128');
  await page.click('#llm-restart');
  await page.waitForFunction((old) => {
    const v = document.querySelector('#llm-pid .value')?.textContent.trim();
    return /^\d+$/.test(v) && v !== old && document.querySelector('#llm-status-field [data-status="running"]');
  }, pid, { timeout: 60_000 });
  assert.match(await page.getAttribute('#llm-context', 'placeholder'), /now 128/);
  await page.fill('#llm-context', '');

  await page.fill('#chat-max-tokens', '24');
  await page.fill('#chat-input', 'Hello there');
  await page.click('#chat-send');
  // Record how the reply grows: tokens must arrive one by one, not all at the end.
  const sizes = await page.evaluate(() => new Promise((resolve) => {
    const seen = [];
    const t0 = performance.now();
    const tick = () => {
      const b = document.querySelector('.chat-assistant:last-of-type');
      if (b) seen.push(Number(b.dataset.tokens || 0));
      if (b && b.dataset.state !== 'streaming') resolve({ seen, state: b.dataset.state });
      else if (performance.now() - t0 > 60000) resolve({ seen, state: 'timeout' });
      else requestAnimationFrame(tick);
    };
    tick();
  }));
  assert.equal(sizes.state, 'done');
  const last = page.locator('.chat-assistant').last();
  const tokens = Number(await last.getAttribute('data-tokens'));
  assert.ok(tokens > 1, `tokens ${tokens}`);
  assert.match(await last.locator('.chat-stats').textContent(), /tok\/s/);
  // Random-weight output (U+FFFD, control characters) is text: no element inside the reply.
  assert.equal(await last.locator('.chat-text *').count(), 0);
  assert.ok((await last.locator('.chat-text').textContent()).length > 0);
  await noErrors(page, 'LLM stop/start and chat');
});

test('failed calls show clear messages in the page', async () => {
  // The browser's own checks: the LLM's Start button is disabled while it runs.
  assert.equal(await page.isDisabled('#llm-start'), true);
  // A download from a host that refuses connections is refused by the service (503): the
  // page says why, in a notice and on the download.
  await openTab('models', () => page.waitForSelector('.model-row'));
  await page.selectOption('#download-source', 'url');
  await page.fill('#download-url', 'http://127.0.0.1:9/nothing-here.gguf');
  await page.fill('#download-id', '');
  await page.click('#download-start');
  const notice = page.locator('.notice-error').first();
  await notice.waitFor();
  assert.match(await notice.textContent(), /Download nothing-here\.gguf: .*connection refused/);
  const dl = page.locator('.download-item').first();
  assert.equal(await dl.getAttribute('data-state'), 'failed');
  assert.match(await dl.locator('.download-status').textContent(), /source unavailable/);
  await notice.locator('.notice-close').click();
  assert.equal(await page.locator('.notice-error').count(), 0);
  await dl.getByRole('button', { name: 'Dismiss' }).click();
  // Input the page can check itself never reaches the server.
  await page.fill('#download-url', 'ftp://example.invalid/x.gguf');
  await page.click('#download-start');
  await page.waitForSelector('.notice-error >> text=/must start with http/');
  await page.locator('.notice-error .notice-close').click();
  assert.ok(consoleErrors.length === 1 && /status of 503/.test(consoleErrors[0]), consoleErrors.join('\n'));
  consoleErrors.length = 0;
});

test('Diffusion: start, generate with a live progress bar to 100% (the status card shows the same stage), the image appears, re-run with the same seed', async () => {
  await openTab('diffusion', () => page.waitForSelector('#diffusion-status-field [data-status]'));
  // genailab up starts the engine at boot with its model (the id the stack reports).
  if (!(await page.$('#diffusion-status-field [data-status="running"]'))) {
    await page.fill('#diffusion-model', stack.diffusionModel);
    await page.click('#diffusion-start');
    await page.waitForSelector('#diffusion-status-field [data-status="running"]', { timeout: 120_000 });
  }
  assert.equal(await page.inputValue('#diffusion-model'), stack.diffusionModel);
  const statusText = await page.textContent('#diffusion-status');
  assert.ok(statusText.includes(stack.diffusionModel), `status without the model ${stack.diffusionModel}: ${statusText}`);
  if (sd) {
    assert.ok(statusText.includes(sd.cli) && !/demo stand-in/.test(statusText), `status of the real engine: ${statusText}`);
  } else {
    assert.match(statusText, /demo stand-in/);
  }
  // The sampler list comes from the API (GET /v1/diffusion → samplers), not from a copy.
  await page.waitForFunction(() => document.querySelectorAll('#gen-sampler option').length === 8);
  assert.equal(await page.locator('#gen-sampler option').count(), 8);
  const prompt = 'a <b>lighthouse</b> at dusk';
  await page.fill('#gen-prompt', prompt);
  await page.fill('#gen-negative', 'blurry');
  await page.fill('#gen-width', String(IMAGE.size));
  await page.fill('#gen-height', String(IMAGE.size));
  await page.fill('#gen-steps', String(IMAGE.steps));
  await page.selectOption('#gen-sampler', 'dpm++2m');
  await page.evaluate(() => {
    window.__progress = [];
    const bar = document.querySelector('#gen-progress');
    new MutationObserver(() => {
      const busy = document.querySelector('#diffusion-busy');
      window.__progress.push({
        p: Number(bar.getAttribute('aria-valuenow')), stage: bar.dataset.stage, step: Number(bar.dataset.step || 0),
        label: bar.querySelector('.progress-label').textContent, busyStage: busy.dataset.stage, busyText: busy.textContent,
      });
    }).observe(bar, { attributes: true, attributeFilter: ['aria-valuenow', 'data-step'] });
  });
  await page.click('#gen-start');
  await page.waitForFunction(() => {
    const img = document.querySelector('#generated-image');
    return img && img.complete && img.naturalWidth > 0;
  }, null, { timeout: 180_000 });
  const progress = await page.evaluate(() => window.__progress);
  const values = progress.map((x) => x.p);
  assert.ok(new Set(values).size >= 5, `the bar moved through only ${JSON.stringify(values)}`);
  assert.equal(values[values.length - 1], 100);
  for (let i = 1; i < values.length; i++) assert.ok(values[i] >= values[i - 1], `progress went back: ${values}`);
  assert.ok(progress.some((x) => x.stage === 'sampling' && x.step > 0 && x.step < IMAGE.steps), 'saw sampling steps');
  // Regression: the status card said "loading 0/30" while the bar said 56 %, step 17/30. The
  // card's Busy field shows the bar's progress, stage and step, whenever the bar moves.
  // (Before the engine's first progress the bar shows the page's own "queued…"; at 100 % its "done".)
  const engineProgress = progress.filter((x) => x.p < 100 && x.label !== 'queued…');
  assert.ok(engineProgress.some((x) => x.stage === 'sampling'), JSON.stringify(progress));
  for (const x of engineProgress) {
    assert.equal(x.busyStage, x.stage, `status card stage ${x.busyStage} while the bar shows ${x.stage}: ${JSON.stringify(x)}`);
    assert.ok(x.busyText.includes(x.label), `status card ${JSON.stringify(x.busyText)} while the bar shows ${JSON.stringify(x.label)}`);
  }
  assert.equal(await page.getAttribute('#gen-progress', 'data-state'), 'done');
  const img = await page.evaluate(() => { const i = document.querySelector('#generated-image'); return { w: i.naturalWidth, h: i.naturalHeight, seed: i.dataset.seed, job: i.dataset.jobId }; });
  assert.deepEqual([img.w, img.h], [IMAGE.size, IMAGE.size]);
  assert.match(img.seed, /^\d+$/);
  assert.equal((await page.textContent('#gen-result-seed .value')).trim(), img.seed);

  // The gallery shows it (prompt as text, not markup), and re-run reuses the seed.
  const item = page.locator(`.gallery-item[data-job-id="${img.job}"]`);
  await item.waitFor();
  assert.equal(await item.locator('.gallery-prompt').textContent(), prompt);
  assert.equal(await item.locator('.gallery-prompt b').count(), 0);
  await item.locator('img.thumb[src^="blob:"]').waitFor();
  await item.getByRole('button', { name: 'Re-run (same seed)' }).click();
  await page.waitForFunction((old) => {
    const i = document.querySelector('#generated-image');
    return i && i.dataset.jobId && i.dataset.jobId !== old && i.complete && i.naturalWidth > 0;
  }, img.job, { timeout: 180_000 });
  assert.equal(await page.getAttribute('#generated-image', 'data-seed'), img.seed);
  assert.equal(await page.inputValue('#gen-sampler'), 'dpm++2m');
  await noErrors(page, 'generation');
});

test('Diffusion: cancel stops a long generation, and a cancel is no error (no LAST ERROR)', async () => {
  await page.fill('#gen-steps', String(IMAGE.cancelSteps));
  await page.fill('#gen-seed', '-1');
  await page.click('#gen-start');
  // Cancel once sampling has begun (the real engine first loads the model and encodes the prompt).
  await page.waitForFunction(() => {
    const bar = document.querySelector('#gen-progress');
    return bar.dataset.stage === 'sampling' && Number(bar.dataset.step || 0) >= 1;
  }, null, { timeout: 120_000 });
  await page.click('#gen-cancel');
  await page.waitForFunction(() => document.querySelector('#gen-progress').dataset.state === 'failed');
  assert.match(await page.textContent('#gen-progress-text'), /Cancelled/);
  await page.waitForSelector('.gallery-item[data-status="cancelled"]');
  // Regression: the user's own cancel showed a red LAST ERROR "genailab-diffusion: context
  // canceled". Once the engine reports the generation finished (Busy: no), it reports no error,
  // and the status card shows none.
  await page.waitForSelector('#diffusion-busy[data-stage=""]');
  const engine = (await (await stack.api('/v1/diffusion')).json()).info;
  assert.ok(!engine.lastError, `lastError after a cancel: ${engine.lastError}`);
  assert.equal(await page.locator('#diffusion-last-error').count(), 0, await page.textContent('#diffusion-status'));
  // Stop and start the engine from the page (with the model it shows).
  await page.click('#diffusion-stop');
  await page.waitForSelector('#diffusion-status-field [data-status="stopped"]');
  assert.equal(await page.inputValue('#diffusion-model'), stack.diffusionModel);
  await page.check('#diffusion-vae-tiling');
  await page.click('#diffusion-start');
  await page.waitForSelector('#diffusion-status-field [data-status="running"]', { timeout: 120_000 });
  await noErrors(page, 'cancel');
  await page.fill('#gen-steps', String(IMAGE.steps));
});

// What the tests of previews, batches and edits ask of the engine: few steps at the small size.
const FEATURES = { size: 128, previewSteps: 6, batchSteps: 3, batchSeed: 100, editSteps: 4, editSeed: 7 };

/** png encodes an RGB image (pixel(x, y) → [r, g, b]) as PNG bytes (the edit's upload). */
function png(width, height, pixel) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) raw.set(pixel(x, y), row + 1 + x * 3);
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** pngSize reads a PNG's width and height from its IHDR chunk. */
function pngSize(buf) {
  assert.equal(buf.subarray(1, 4).toString('latin1'), 'PNG', 'not a PNG');
  return [buf.readUInt32BE(16), buf.readUInt32BE(20)];
}

/** imageParamsOf records the params of the page's next POST /v1/images/generate. */
function nextGenerateParams(p) {
  return new Promise((resolve) => {
    const on = (req) => {
      if (req.method() === 'POST' && new URL(req.url()).pathname === '/v1/images/generate') {
        p.off('request', on);
        resolve(req.postDataJSON().params);
      }
    };
    p.on('request', on);
  });
}

/** newImage waits until #generated-image is a loaded image of another job than old. */
async function newImage(old) {
  await page.waitForFunction((o) => {
    const i = document.querySelector('#generated-image');
    return i && i.dataset.jobId && i.dataset.jobId !== o && i.complete && i.naturalWidth > 0;
  }, old, { timeout: 180_000 });
  return page.getAttribute('#generated-image', 'data-job-id');
}

test('Diffusion: live previews arrive with increasing steps beside the bar, then the final image', async (t) => {
  await openTab('diffusion', () => page.waitForSelector('#diffusion-status-field [data-status="running"]'));
  if (!sd) {
    // The stand-in writes no previews: the capabilities say so, and the page says why.
    assert.equal(await page.isDisabled('#gen-preview'), true);
    assert.match(await page.textContent('#gen-preview-reason'), /Previews are off: .*demo engine/);
    t.skip('the demo stand-in writes no previews (checked: the toggle is disabled with the reason)');
    return;
  }
  assert.equal(await page.isDisabled('#gen-preview'), false);
  assert.deepEqual(await page.$$eval('#gen-preview-method option', (os) => os.map((o) => o.value)), ['proj', 'tae', 'vae']);
  await page.check('#gen-preview');
  await page.selectOption('#gen-preview-method', 'proj');
  await page.fill('#gen-preview-interval', '1');
  await page.fill('#gen-prompt', 'a lighthouse, emerging');
  await page.fill('#gen-width', String(FEATURES.size));
  await page.fill('#gen-height', String(FEATURES.size));
  await page.fill('#gen-steps', String(FEATURES.previewSteps));
  await page.fill('#gen-seed', '42');
  await page.fill('#gen-n', '1');
  await page.evaluate(() => {
    window.__previews = [];
    const img = document.querySelector('#gen-preview-image');
    new MutationObserver(() => {
      if (!img.dataset.step) return;
      window.__previews.push({ step: Number(img.dataset.step), caption: document.querySelector('#gen-preview-caption').textContent, barStep: Number(document.querySelector('#gen-progress').dataset.step), src: img.src });
    }).observe(img, { attributes: true, attributeFilter: ['src'] });
  });
  const sent = nextGenerateParams(page);
  const old = await page.getAttribute('#generated-image', 'data-job-id');
  await page.click('#gen-start');
  assert.deepEqual((await sent).preview, { method: 'PREVIEW_METHOD_PROJ', interval: 1 });
  // Screenshot while it emerges: the first preview is shown beside the bar.
  await page.waitForFunction(() => Number(document.querySelector('#gen-preview-image').dataset.step || 0) >= 1 && document.querySelector('#gen-preview-image').complete, null, { timeout: 120_000 });
  await page.screenshot({ path: join(artifacts, 'diffusion-preview.png'), fullPage: true });
  await newImage(old);
  const previews = await page.evaluate(() => window.__previews);
  const steps = previews.map((x) => x.step);
  console.log(`# previews of steps ${steps.join(', ')} (of ${FEATURES.previewSteps})`);
  assert.ok(steps.length >= 2, `previews of steps ${JSON.stringify(steps)}`);
  for (let i = 1; i < steps.length; i++) assert.ok(steps[i] > steps[i - 1], `preview steps not increasing: ${steps}`);
  assert.ok(steps.every((s) => s >= 1 && s <= FEATURES.previewSteps), JSON.stringify(steps));
  assert.match(previews[0].caption, new RegExp(`^Preview · step ${steps[0]}/${FEATURES.previewSteps}`));
  // The preview element shows a decoded image (a small PNG), and the final image is full size.
  const shown = await page.evaluate(() => { const i = document.querySelector('#gen-preview-image'); return [i.naturalWidth, i.naturalHeight]; });
  assert.ok(shown[0] > 0 && shown[0] <= 256 && shown[1] > 0, `preview ${shown}`);
  assert.deepEqual(await page.evaluate(() => { const i = document.querySelector('#generated-image'); return [i.naturalWidth, i.naturalHeight]; }), [FEATURES.size, FEATURES.size]);
  assert.equal(await page.getAttribute('#gen-progress', 'data-state'), 'done');
  await page.uncheck('#gen-preview');
  await noErrors(page, 'previews');
});

test('Diffusion: a batch of 3 shows 3 images with 3 seeds, the gallery keeps them and puts the settings back', async () => {
  await page.fill('#gen-prompt', 'three lighthouses');
  await page.fill('#gen-width', String(FEATURES.size));
  await page.fill('#gen-height', String(FEATURES.size));
  await page.fill('#gen-steps', String(FEATURES.batchSteps));
  await page.fill('#gen-seed', String(FEATURES.batchSeed));
  await page.fill('#gen-n', '3');
  const sent = nextGenerateParams(page);
  const old = await page.getAttribute('#generated-image', 'data-job-id');
  await page.click('#gen-start');
  assert.equal((await sent).n, 3);
  const job = await newImage(old);
  await page.waitForFunction(() => [...document.querySelectorAll('#gen-batch img')].every((i) => i.complete && i.naturalWidth > 0));
  const items = await page.$$eval('#gen-batch .batch-item', (fs) => fs.map((f) => ({
    seed: f.dataset.seed, caption: f.querySelector('.batch-seed').textContent, w: f.querySelector('img').naturalWidth,
  })));
  const want = [0, 1, 2].map((i) => String(FEATURES.batchSeed + i));
  assert.deepEqual(items.map((x) => x.seed), want, 'seeds seed, seed+1, seed+2');
  assert.deepEqual(items.map((x) => x.caption), want.map((s) => `seed ${s}`));
  assert.deepEqual(items.map((x) => x.w), [FEATURES.size, FEATURES.size, FEATURES.size]);
  assert.equal((await page.textContent('#gen-result-seed .value')).trim(), want.join(', '));
  await page.screenshot({ path: join(artifacts, 'diffusion-batch.png'), fullPage: true });

  // The gallery shows every image of the batch (<job>_<i>) with its seed.
  const item = page.locator(`.gallery-item[data-job-id="${job}"]`);
  await item.waitFor();
  assert.equal(await item.getAttribute('data-count'), '3');
  await page.waitForFunction((id) => [...document.querySelectorAll(`.gallery-item[data-job-id="${id}"] img.thumb`)].filter((i) => i.src.startsWith('blob:')).length === 3, job);
  assert.deepEqual(await item.locator('img.thumb').evaluateAll((is) => is.map((i) => [i.dataset.imageId, i.dataset.seed])),
    want.map((s, i) => [`${job}_${i}`, s]));
  assert.match(await item.locator('.gallery-params').textContent(), /3 images · seeds 100, 101, 102/);

  // "Use settings" puts the batch's parameters back into a changed form.
  await page.fill('#gen-prompt', 'something else');
  await page.fill('#gen-n', '1');
  await page.fill('#gen-steps', '20');
  await page.fill('#gen-seed', '-1');
  await page.fill('#gen-width', '512');
  await item.getByRole('button', { name: 'Use settings' }).click();
  assert.deepEqual({
    prompt: await page.inputValue('#gen-prompt'), n: await page.inputValue('#gen-n'), steps: await page.inputValue('#gen-steps'),
    seed: await page.inputValue('#gen-seed'), width: await page.inputValue('#gen-width'), height: await page.inputValue('#gen-height'),
  }, { prompt: 'three lighthouses', n: '3', steps: String(FEATURES.batchSteps), seed: String(FEATURES.batchSeed), width: String(FEATURES.size), height: String(FEATURES.size) });
  await page.fill('#gen-n', '1');
  await noErrors(page, 'batch');
});

test('Diffusion: an edit of an uploaded PNG with a mask drawn on it returns an image', async (t) => {
  if (!sd) {
    assert.equal(await page.isDisabled('#gen-init'), true);
    assert.match(await page.textContent('#gen-edit-reason'), /Edits are off: .*demo engine/);
    t.skip('the demo stand-in cannot edit (checked: the upload is disabled with the reason)');
    return;
  }
  const s = FEATURES.size;
  const init = png(s, s, (x, y) => [x * 2, y * 2, 128]);
  await page.setInputFiles('#gen-init', { name: 'gradient.png', mimeType: 'image/png', buffer: init });
  await page.waitForSelector('#gen-mask-stage:not([hidden])');
  await page.waitForFunction(() => { const i = document.querySelector('#gen-init-preview'); return i.complete && i.naturalWidth > 0; });
  assert.match(await page.textContent('#gen-init-note'), new RegExp(`Editing gradient\\.png \\(${s}×${s}`));
  assert.equal(await page.isDisabled('#gen-width'), true, 'the size is the init image\'s');
  assert.equal(await page.getAttribute('#gen-edit', 'data-mode'), 'img2img');
  // Paint a stroke across the middle of the image.
  const box = await page.locator('#gen-mask-canvas').boundingBox();
  await page.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.5);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) await page.mouse.move(box.x + box.width * (0.25 + i * 0.05), box.y + box.height * 0.5);
  await page.mouse.up();
  assert.equal(await page.getAttribute('#gen-mask-canvas', 'data-strokes'), '1');
  assert.equal(await page.getAttribute('#gen-edit', 'data-mode'), 'inpaint');
  assert.match(await page.textContent('#gen-mask-note'), /Mask: drawn/);
  await page.fill('#gen-strength', '0.6');
  assert.equal(await page.textContent('#gen-strength-value'), '0.60');
  await page.fill('#gen-prompt', 'a red fox, repainted');
  await page.fill('#gen-steps', String(FEATURES.editSteps));
  await page.fill('#gen-seed', String(FEATURES.editSeed));
  await page.screenshot({ path: join(artifacts, 'diffusion-edit-mask.png'), fullPage: true });
  const sent = nextGenerateParams(page);
  const old = await page.getAttribute('#generated-image', 'data-job-id');
  await page.click('#gen-start');
  const params = await sent;
  // The request carries the upload as it was, the drawn mask as a PNG of the image's size, the
  // strength, and no width/height (the service takes the init image's).
  assert.ok(Buffer.from(params.initImage, 'base64').equals(init), 'the init image is sent as uploaded');
  assert.deepEqual(pngSize(Buffer.from(params.mask, 'base64')), [s, s]);
  assert.ok(Math.abs(params.strength - 0.6) < 1e-6, `strength ${params.strength}`);
  assert.equal(params.width, undefined);
  const job = await newImage(old);
  assert.deepEqual(await page.evaluate(() => { const i = document.querySelector('#generated-image'); return [i.naturalWidth, i.naturalHeight]; }), [s, s]);
  assert.match(await page.textContent('#gen-result-mode'), /edit \(img2img\), strength 0\.60/);
  await page.screenshot({ path: join(artifacts, 'diffusion-edit-result.png'), fullPage: true });

  // The gallery has it as an edit; its settings come back, and since the service keeps no
  // init image, the page says so once the form has none either.
  const item = page.locator(`.gallery-item[data-job-id="${job}"]`);
  await item.waitFor();
  assert.equal(await item.getAttribute('data-mode'), 'edit');
  await page.click('#gen-init-clear');
  await page.waitForSelector('#gen-mask-stage[hidden]', { state: 'attached' });
  assert.equal(await page.isDisabled('#gen-width'), false);
  await page.$eval('#gen-strength', (el) => { el.value = '0.75'; }); // disabled without an init image
  await item.getByRole('button', { name: 'Use settings' }).click();
  assert.ok(Math.abs(Number(await page.inputValue('#gen-strength')) - 0.6) < 1e-6, await page.inputValue('#gen-strength'));
  assert.equal(await page.inputValue('#gen-seed'), String(FEATURES.editSeed));
  const info = page.locator('.notice-info', { hasText: 'keeps no init image' });
  await info.waitFor();
  await info.locator('.notice-close').click();
  await noErrors(page, 'edit');
});

test('Diffusion: a text file as the init image gets the service\'s 400 reason as a notice', async (t) => {
  if (!sd) { t.skip('the demo stand-in cannot edit: the upload is disabled (see the edit test)'); return; }
  await page.setInputFiles('#gen-init', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('these are notes, not an image\n') });
  await page.waitForFunction(() => /cannot show notes\.txt as an image/.test(document.querySelector('#gen-init-note').textContent));
  await page.fill('#gen-prompt', 'edit my notes');
  const status = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/images/generate');
  await page.click('#gen-start');
  assert.equal((await status).status(), 400);
  const notice = page.locator('.notice-error').first();
  await notice.waitFor();
  const text = await notice.textContent();
  assert.match(text, /POST \/v1\/images\/generate \(400\): .*not a PNG or JPEG image/, text);
  assert.equal(await page.getAttribute('#gen-progress', 'data-state'), 'failed');
  await page.screenshot({ path: join(artifacts, 'diffusion-bad-upload.png'), fullPage: true });
  await notice.locator('.notice-close').click();
  await page.click('#gen-init-clear');
  // The browser's own line for the refused request is the only console error.
  assert.ok(consoleErrors.length === 1 && /status of 400/.test(consoleErrors[0]), consoleErrors.join('\n'));
  consoleErrors.length = 0;
  await page.fill('#gen-steps', String(IMAGE.steps));
  await page.fill('#gen-seed', '-1');
  await noErrors(page, 'bad upload');
});

test('Diffusion: in server mode the preview toggle is disabled with the mode\'s reason; back in CLI mode it is on', async (t) => {
  if (!sd) { t.skip('the demo stand-in has no server mode of the real engine'); return; }
  await page.click('#diffusion-stop');
  await page.waitForSelector('#diffusion-status-field [data-status="stopped"]');
  await page.selectOption('#diffusion-mode', 'ENGINE_MODE_SERVER');
  await page.click('#diffusion-start');
  await page.waitForSelector('#diffusion-status-field [data-status="running"]', { timeout: 120_000 });
  await page.waitForFunction(() => document.querySelector('#gen-preview').disabled);
  assert.match(await page.textContent('#gen-preview-reason'), /Previews are off: server mode .*writes no previews/);
  assert.equal(await page.isChecked('#gen-preview'), false);
  // sd-server edits and batches: those stay on.
  assert.equal(await page.isDisabled('#gen-init'), false);
  assert.equal(await page.getAttribute('#gen-n', 'max'), '8');
  await page.screenshot({ path: join(artifacts, 'diffusion-server-mode.png'), fullPage: true });
  await page.click('#diffusion-stop');
  await page.waitForSelector('#diffusion-status-field [data-status="stopped"]');
  await page.selectOption('#diffusion-mode', 'ENGINE_MODE_CLI');
  await page.click('#diffusion-start');
  await page.waitForSelector('#diffusion-status-field [data-status="running"]', { timeout: 120_000 });
  await page.waitForFunction(() => !document.querySelector('#gen-preview').disabled);
  assert.equal(await page.isHidden('#gen-preview-reason'), true);
  await noErrors(page, 'server mode capabilities');
});

test('Models: download by URL with live progress, GGUF details, verify, delete', async () => {
  // Serve a copy of the tiny model from a loopback HTTP server, like a model host would.
  const file = findFile(stack.dataDir, 'tiny-random-llama.gguf');
  const body = readFileSync(file);
  fileServer = createServer((req, res) => {
    res.setHeader('Content-Length', String(body.length));
    res.setHeader('Content-Type', 'application/octet-stream');
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise((r) => fileServer.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${fileServer.address().port}/tiny-copy.gguf`;

  await openTab('models', () => page.waitForSelector('.model-row[data-model-id="tiny-random-llama"]'));
  await page.selectOption('#download-type', 'MODEL_TYPE_LLM');
  await page.selectOption('#download-source', 'url');
  await page.fill('#download-url', url);
  await page.fill('#download-id', 'tiny-copy');
  await page.click('#download-start');
  const dl = page.locator('.download-item').first();
  await page.waitForFunction(() => document.querySelector('.download-item')?.dataset.state !== 'running', null, { timeout: 60_000 });
  assert.equal(await dl.getAttribute('data-state'), 'done', await dl.textContent());
  assert.equal(await dl.getAttribute('data-state'), 'done');
  assert.equal(await dl.locator('.progress').getAttribute('aria-valuenow'), '100.0');
  assert.match(await dl.locator('.component[data-component="model"]').textContent(), /done/);

  const row = page.locator('.model-row[data-model-id="tiny-copy"]');
  await row.waitFor();
  await row.getByRole('button', { name: 'Details' }).click();
  const details = page.locator('.model-row[data-model-id="tiny-copy"] + tr.model-details');
  assert.match(await details.textContent(), /Architecture\s*llama/);
  await row.getByRole('button', { name: 'Verify' }).click();
  await page.waitForFunction(() => /ok/.test(document.querySelector('.model-row[data-model-id="tiny-copy"] .verify-result')?.textContent || ''));
  page.once('dialog', (d) => d.accept());
  await row.getByRole('button', { name: 'Delete' }).click();
  await page.waitForSelector('.model-row[data-model-id="tiny-copy"]', { state: 'detached' });
  await noErrors(page, 'download, verify, delete');
});

test('Resources: the chart receives live points and marks the LLM stop/start', async () => {
  await openTab('resources', () => page.waitForSelector('#timeline-chart'));
  const before = Number(await page.getAttribute('#timeline-chart', 'data-live-points'));
  await page.waitForFunction((n) => Number(document.querySelector('#timeline-chart').dataset.livePoints) >= n + 3,
    before, { timeout: 30_000 });
  const ram = Number(await page.getAttribute('#ram-bar', 'aria-valuenow'));
  assert.ok(ram > 0 && ram <= 100, `RAM bar ${ram}`);
  // The stop and start done on the LLM tab are on the timeline.
  assert.ok(Number(await page.getAttribute('#timeline-chart', 'data-markers')) >= 2);
  // The event log has the finished jobs from the orchestrator's stored events.
  await page.waitForSelector('#event-list li[data-type="EVENT_TYPE_JOB_FINISHED"]');
  await page.waitForSelector('#no-saved-state');
  assert.match(await page.textContent('#would-need-offload'), /Image needs/);
  await noErrors(page, 'resources');
});

test('Resources: an image that needs the LLM offloaded shows the saved state, the offload and the reload', async () => {
  await openTab('resources', () => page.waitForSelector('#server-llm [data-status="running"]'));
  await page.fill('#wno-width', String(IMAGE.offloadSize));
  await page.fill('#wno-height', String(IMAGE.offloadSize));
  await page.click('#wno-check');
  await page.waitForSelector('#would-need-offload [data-needs-offload="true"]');
  assert.match(await page.textContent('#would-need-offload'), /Offload: the image needs \d+(\.\d+)? [MG]iB/);
  // Issue 17: the expected down time is learnt from measured offloads; this stack has had none.
  assert.match(await page.textContent('#would-need-offload'), /Expected LLM down time\s*not measured yet/);
  assert.match(await page.textContent('#last-offload'), /No offload yet/);
  const markersBefore = Number(await page.getAttribute('#timeline-chart', 'data-markers'));

  // Another client (the API) submits the job; the page only watches.
  const r = await stack.api('/v1/images/jobs', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ params: { prompt: 'offload me', width: IMAGE.offloadSize, height: IMAGE.offloadSize, steps: sd ? IMAGE.offloadSteps.real : IMAGE.offloadSteps.standin } }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  await page.waitForSelector('#saved-state .saved-state', { timeout: 60_000 });
  const saved = await page.textContent('#saved-state');
  assert.match(saved, /tiny-random-llama/);
  assert.match(saved, /Was running\s*yes/);
  // The conversations (KV-cache slots) the LLM saved at the stop, which the reload restores.
  // (Shown as the page first reads the saved state: the slot files are added to it a moment later.)
  assert.match(saved, /Conversations saved\s*(?:(\d+) KV-cache slot file\(s\), restored by the reload|none \(nothing to restore\))/);
  await page.waitForSelector('#diffusion-busy-indicator', { timeout: 60_000 });
  await page.screenshot({ path: join(artifacts, 'tab-resources-offloaded.png'), fullPage: true });

  await page.waitForSelector('#event-list li[data-type="EVENT_TYPE_RELOAD_FINISHED"]', { timeout: 240_000 });
  await page.waitForSelector('#no-saved-state');
  await page.waitForSelector('#server-llm [data-status="running"]');
  for (const t of ['EVENT_TYPE_OFFLOAD_STARTED', 'EVENT_TYPE_OFFLOAD_FINISHED', 'EVENT_TYPE_RELOAD_STARTED']) {
    assert.equal(await page.locator(`#event-list li[data-type="${t}"]`).count(), 1, t);
  }
  // Offload started/finished, reload started/finished, LLM stop/start: all on the timeline.
  assert.ok(Number(await page.getAttribute('#timeline-chart', 'data-markers')) >= markersBefore + 4);

  // Issue 17: the OFFLOAD and RELOAD events' slots saved and restored and the LLM's down time.
  const last = await page.textContent('#last-offload');
  const stopped = /Saved at the stop\s*(\d+) conversation\(s\), (\d+) tokens, [\d.]+ [KMG]?i?B in (\d+) ms/.exec(last);
  const restored = /Restored at the reload\s*(\d+) conversation\(s\), (\d+) tokens in (\d+) ms/.exec(last);
  const down = /LLM down time\s*(\d+\.\d\d) s/.exec(last);
  assert.ok(stopped && restored && down, last);
  assert.equal(Number(restored[1]), Number(stopped[1]), `every saved conversation restored: ${last}`);
  // The LLM test's chat left a conversation in a slot: it is saved and restored, every token.
  assert.ok(Number(stopped[1]) >= 1 && Number(stopped[2]) > 0, last);
  assert.equal(Number(restored[2]), Number(stopped[2]), last);
  assert.ok(Number(down[1]) > 0, last);
  // The same offload, asked again, now has an expected down time learnt from it.
  await page.click('#wno-check');
  await page.waitForFunction(() => /Expected LLM down time\s*~\d+\.\d s \(learnt from measured offloads\)/.test(document.querySelector('#would-need-offload').textContent), null, { timeout: 30_000 });
  await page.screenshot({ path: join(artifacts, 'tab-resources-after-offload.png'), fullPage: true });
  console.log(`# offload: ${last.replace(/\s+/g, ' ')}`);
  await noErrors(page, 'offload');
});

test('GPU stand-in: one VRAM bar and one timeline series per GPU', async () => {
  // No NVIDIA GPU here: a second page gets the monitor's answers for two stand-in A100s
  // (shaped like NVML's readings through the gateway) instead of the real ones.
  const gpu = (index, usedGiB) => ({
    index, uuid: `GPU-standin-${index}`, name: 'NVIDIA A100-SXM4-40GB (stand-in)',
    memoryTotalBytes: String(40 * 2 ** 30), memoryUsedBytes: String(usedGiB * 2 ** 30), memoryFreeBytes: String((40 - usedGiB) * 2 ** 30),
    utilizationPercent: 35, memoryUtilizationPercent: 20, temperatureCelsius: 51, powerDrawMilliwatts: 90000, powerLimitMilliwatts: 400000,
    processes: [], managedMemoryBytes: String(usedGiB * 2 ** 30), foreignMemoryBytes: '0',
  });
  const usage = (t, used0, used1) => ({
    time: new Date(t).toISOString(), cpuPercent: 12,
    memory: { totalBytes: String(64 * 2 ** 30), availableBytes: String(48 * 2 ** 30), usedBytes: String(16 * 2 ** 30), swapTotalBytes: '0', swapUsedBytes: '0' },
    gpus: [gpu(0, used0), gpu(1, used1)], managedProcesses: [],
  });
  const p = await newPanelPage({ withToken: true });
  const now = Date.now();
  await p.route('**/v1/system/history*', (r) => r.fulfill({ contentType: 'application/json', body: JSON.stringify({ samples: [usage(now - 60000, 10, 2), usage(now - 30000, 20, 4)] }) }));
  await p.route('**/v1/system/usage/watch*', (r) => r.fulfill({ contentType: 'application/json', body: `${JSON.stringify({ result: { usage: usage(Date.now(), 30, 8), missed: '0' } })}\n` }));
  await p.goto(`${stack.base}/#resources`);
  await p.waitForFunction(() => document.querySelectorAll('.vram-bar').length === 2);
  assert.deepEqual(await p.$$eval('.vram-bar', (bars) => bars.map((b) => [b.dataset.gpu, b.getAttribute('aria-valuenow')])), [['0', '75.0'], ['1', '20.0']]);
  const legend = await p.textContent('#chart-legend');
  assert.match(legend, /VRAM GPU 0 75\.0%/);
  assert.match(legend, /VRAM GPU 1 20\.0%/);
  assert.ok(Number(await p.getAttribute('#timeline-chart', 'data-points')) >= 3);
  await p.screenshot({ path: join(artifacts, 'tab-resources-gpu-standin.png'), fullPage: true });
  await p.close();
});

test('screenshots of every tab', async () => {
  for (const [name, ready] of [
    ['system', '#recommended-threads'],
    ['models', '.model-row'],
    ['llm', '#llm-logs .log-line'],
    ['diffusion', '#generated-image'],
    ['resources', '#would-need-offload [data-needs-offload]'],
  ]) {
    await openTab(name, () => page.waitForSelector(ready));
    await page.waitForTimeout(300);
    const path = join(artifacts, `tab-${name}.png`);
    await page.screenshot({ path, fullPage: true });
    assert.ok(statSync(path).size > 10_000, `${path} is too small to be a screenshot`);
  }
  await noErrors(page, 'screenshots');
});

function findFile(dir, name) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) { const f = findFile(p, name); if (f) return f; } else if (e.name === name) return p;
  }
  return '';
}
