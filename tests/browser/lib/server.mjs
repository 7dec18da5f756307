// Starts the real local server (`target/debug/patient-access serve`) for a browser
// test: a free port, a fresh temporary data directory, ready once /metadata answers.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const binary = join(repoRoot, 'target', 'debug', 'patient-access');

/** Builds the runner when the binary is missing (scripts/test-all builds it first). */
export function ensureBinary() {
  if (existsSync(binary)) return;
  const built = spawnSync('cargo', ['build', '-p', 'patient-access'], { cwd: repoRoot, stdio: 'inherit' });
  if (built.status !== 0) throw new Error('cargo build -p patient-access failed');
}

function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.on('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

async function waitUntilUp(baseUrl, child, log, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`patient-access exited early:\n${log.join('')}`);
    try {
      const response = await fetch(`${baseUrl}/metadata`);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((ok) => setTimeout(ok, 250));
  }
  throw new Error(`patient-access did not answer /metadata within ${timeoutMs} ms:\n${log.join('')}`);
}

/**
 * Starts `patient-access serve`. Returns { baseUrl, dataDir, run, stop }: `run(args)`
 * runs another patient-access command against the same data directory and returns
 * its stdout; `stop()` ends the server and removes the data directory.
 */
export async function startServer({ timeoutMs = 60_000 } = {}) {
  ensureBinary();
  const dataDir = mkdtempSync(join(tmpdir(), 'patient-access-browser-'));
  const port = await freePort();
  const baseUrl = `http://localhost:${port}`;
  const log = [];
  const child = spawn(binary, ['serve', '--data', dataDir, '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (chunk) => log.push(chunk.toString()));
  child.stderr.on('data', (chunk) => log.push(chunk.toString()));
  try {
    await waitUntilUp(baseUrl, child, log, timeoutMs);
  } catch (error) {
    child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const run = (args) => {
    const result = spawnSync(binary, [...args, '--data', dataDir], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`patient-access ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { baseUrl, dataDir, run, stop, log };
}
