// stack.mjs — builds genailab into a temporary directory and runs the real stack
// (`genailab up -ephemeral-ports -demo-engines`) for the browser tests; stops it after.

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

/**
 * startStack runs `genailab up` with a fresh data directory and returns {base, token, stop()}.
 * env adds variables (for example SDSTANDIN_STEP_MS to slow the stand-in's steps).
 */
export async function startStack({ token, env = {}, logFile } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'genailab-web-e2e-'));
  const bin = build(dir);
  const dataDir = join(dir, 'data');
  const args = ['up', '-ephemeral-ports', '-demo-engines', '-gateway-addr', '127.0.0.1:0', '-data-dir', dataDir];
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
    const deadline = Date.now() + 90_000;
    while (!existsSync(addrFile) || !readFileSync(addrFile, 'utf8').trim()) {
      if (exited) throw new Error(`genailab up exited early (${JSON.stringify(exited)}); see ${log.path}`);
      if (Date.now() > deadline) throw new Error(`no gateway address after 90 s; see ${log.path}`);
      await sleep(200);
    }
    const base = `http://${readFileSync(addrFile, 'utf8').trim()}`;
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    // Ready when the gateway answers and the LLM (which autostarts) is running.
    for (;;) {
      if (exited) throw new Error(`genailab up exited (${JSON.stringify(exited)}); see ${log.path}`);
      if (Date.now() > deadline) throw new Error(`the LLM did not come up in 90 s; see ${log.path}`);
      try {
        const r = await fetch(`${base}/v1/llm`, { headers });
        if (r.ok) {
          const j = await r.json();
          if (j.info && j.info.status === 'SERVER_STATUS_RUNNING') break;
        }
      } catch { /* not yet */ }
      await sleep(300);
    }
    return { base, token, dir, dataDir, logPath: log.path, stop, api: (p, init = {}) => fetch(`${base}${p}`, { ...init, headers: { ...headers, ...(init.headers || {}) } }) };
  } catch (err) {
    await stop();
    throw err;
  }
}
