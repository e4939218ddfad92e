// Start the server under test the way a host does: a stdio child process, or `serve --transport http` on a free
// loopback port. Each gets a fresh sandbox database and export folder in its own temporary directory.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const SERVE = ['serve', '--profile', 'all', '--backend', 'sandbox'];

/** A fresh temporary directory, removed by the returned `cleanup()`. */
export function scratch(label) {
  const dir = mkdtempSync(join(tmpdir(), `insights-host-${label}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The child's environment: ours without Bentley credentials or settings, plus a private sandbox and export dir. */
export function childEnv(dir) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('ITWIN_') && !key.startsWith('INSIGHTS_')),
  );
  return { ...env, INSIGHTS_SANDBOX_DB: join(dir, 'sandbox.db'), ITWIN_INSIGHTS_EXPORT_DIR: dir };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** `command serve --transport http` on a free port; resolves once /healthz answers. Call `stop()` when done. */
export async function startHttp(command, dir) {
  const port = await freePort();
  const child = spawn(command, [...SERVE, '--transport', 'http', '--port', String(port)], {
    env: childEnv(dir),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const base = `http://127.0.0.1:${port}`;
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
  for (let i = 0; i < 300; i += 1) {
    if (child.exitCode !== null) throw new Error(`http server exited with ${child.exitCode}: ${stderr}`);
    try {
      if ((await fetch(`${base}/healthz`)).status < 500) return { url: new URL(`${base}/mcp`), stop };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await stop();
  throw new Error(`http server did not answer on ${base}/healthz within 30 s: ${stderr}`);
}
