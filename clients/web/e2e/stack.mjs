// stack.mjs — builds genailab into a temporary directory and runs the real stack
// (`genailab up -ephemeral-ports`) for the browser tests; stops it after. Images come from the
// real stable-diffusion.cpp with the tiny random-weight test model when the project's test
// policy finds them (findRealSD), else from the demo stand-in (`-demo-engines`), which
// GENAILAB_REQUIRE_SDCPP=1 (CI) turns into a failure.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, createWriteStream, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** build compiles every binary into dir/bin with the project's own Makefile target. */
export function build(dir) {
  const bin = join(dir, 'bin');
  const r = spawnSync('make', ['-s', '-C', repoRoot, 'build', `BIN=${bin}`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`make build failed (exit ${r.status})`);
  return bin;
}

export const requireSDCPP = process.env.GENAILAB_REQUIRE_SDCPP === '1';

/**
 * findRealSD asks pkg/testenv (through the small Go command e2e/realsd, so that the browser
 * tests and the Go tests share one policy) for the real stable-diffusion.cpp and the tiny
 * model: GENAILAB_SDCPP_DIR, else ../shared/engines/sdcpp/bin beside the repository; the model
 * generated once into the test cache ($GENAILAB_TEST_CACHE or the user cache dir) and checked
 * by its sha256. It returns {sd, note}: sd is {dir, cli, server, model, modelId}, or null when
 * the engine is missing here (the stack then runs the demo stand-in; note says so). A missing
 * engine under GENAILAB_REQUIRE_SDCPP=1, or any other error, throws.
 */
export function findRealSD() {
  // E2E_DEMO_ENGINES=1 asks for the stand-in even where the real engine is found (to check the
  // fallback), like the Go tests' -demo-engines flag.
  if (process.env.E2E_DEMO_ENGINES === '1') return { sd: null, note: 'images: the demo stand-in (E2E_DEMO_ENGINES=1)' };
  const r = spawnSync('go', ['run', './e2e/realsd'], { cwd: resolve(repoRoot, 'clients/web'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw new Error(`go run ./e2e/realsd: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`go run ./e2e/realsd failed (exit ${r.status}):\n${r.stderr}`);
  const found = JSON.parse(r.stdout);
  if (found.missing) {
    if (requireSDCPP) throw new Error(`GENAILAB_REQUIRE_SDCPP=1 but ${found.missing}`);
    return { sd: null, note: `images: the demo stand-in (${found.missing}; set GENAILAB_REQUIRE_SDCPP=1 to make this a failure)` };
  }
  return { sd: found, note: `images: the real stable-diffusion.cpp in ${found.dir}, model ${found.modelId}` };
}

/**
 * startStack runs `genailab up` with a fresh data directory and returns {base, token, stop(),
 * sd, diffusionModel, ...}. sd is what findRealSD found (the real engine, autostarted with the
 * tiny model), null for the demo stand-in, or undefined to call findRealSD here. env adds
 * variables (for example the orchestrator's memory budget). It returns once the gateway
 * answers, the LLM runs and the diffusion engine (autostarted at boot) runs; diffusionModel is
 * the model id the engine reports.
 */
export async function startStack({ token, env = {}, logFile, sd } = {}) {
  if (sd === undefined) {
    const found = findRealSD();
    console.log(`# ${found.note}`);
    sd = found.sd;
  }
  const dir = mkdtempSync(join(tmpdir(), 'genailab-web-e2e-'));
  const bin = build(dir);
  const dataDir = join(dir, 'data');
  const args = ['up', '-ephemeral-ports', '-gateway-addr', '127.0.0.1:0', '-data-dir', dataDir];
  if (sd) args.push('-sd-cli', sd.cli, '-sd-server', sd.server, '-diffusion-model-file', sd.model);
  else args.push('-demo-engines');
  if (token) args.push('-token', token);
  const log = createWriteStream(logFile || `${dir}.log`);
  const child = spawn(join(bin, 'genailab'), args, {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so that stop() can end everything it started
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exited = null;
  child.on('exit', (code, sig) => { exited = { code, sig }; });
  // The stack has its own process group (see detached), so a Ctrl-C or a dying test runner
  // would not reach it: end it with the runner.
  const killGroup = () => { if (!exited) { try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ } } };
  process.once('exit', killGroup);
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => { killGroup(); process.exit(128 + (sig === 'SIGINT' ? 2 : 15)); });

  const stop = async () => {
    if (exited) return;
    try { process.kill(-child.pid, 'SIGINT'); } catch { /* gone */ }
    for (let i = 0; i < 150 && !exited; i++) await sleep(100);
    if (!exited) { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }
    for (let i = 0; i < 50 && !exited; i++) await sleep(100);
    // The binaries and the data directory go; the log stays where logFile put it.
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const addrFile = join(dataDir, 'run', 'gateway.addr');
    const deadline = Date.now() + 180_000;
    while (!existsSync(addrFile) || !readFileSync(addrFile, 'utf8').trim()) {
      if (exited) throw new Error(`genailab up exited early (${JSON.stringify(exited)}); see ${log.path}`);
      if (Date.now() > deadline) throw new Error(`no gateway address after 180 s; see ${log.path}`);
      await sleep(200);
    }
    const base = `http://${readFileSync(addrFile, 'utf8').trim()}`;
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    // Ready when the gateway answers and both engines (which autostart) are running.
    const running = async (what) => {
      let last = null;
      for (;;) {
        if (exited) throw new Error(`genailab up exited (${JSON.stringify(exited)}); see ${log.path}`);
        if (Date.now() > deadline) throw new Error(`the ${what} engine did not come up in 180 s (last ${JSON.stringify(last)}); see ${log.path}`);
        try {
          const r = await fetch(`${base}/v1/${what}`, { headers });
          if (r.ok) {
            last = (await r.json()).info;
            if (last && last.status === 'SERVER_STATUS_RUNNING') return last;
          }
        } catch { /* not yet */ }
        await sleep(300);
      }
    };
    await running('llm');
    const diffusion = await running('diffusion');
    if (Boolean(diffusion.demoEngine) !== !sd) {
      throw new Error(`the diffusion engine reports demoEngine=${diffusion.demoEngine}, want ${!sd}; see ${log.path}`);
    }
    return {
      base, token, dir, dataDir, logPath: log.path, stop, sd, diffusionModel: diffusion.modelId,
      api: (p, init = {}) => fetch(`${base}${p}`, { ...init, headers: { ...headers, ...(init.headers || {}) } }),
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
