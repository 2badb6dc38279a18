#!/usr/bin/env node
// `openmsi dev` start-up: from spawning `node dist/cli/main.js dev` to its `openmsi dev ready` line, on a fresh
// data dir (first run: init, directory, host enrolment, sample secret) and on the same data dir again (later
// runs), with an up-to-date build. Each start is stopped with SIGINT and must exit 0. Goals (issue 10): first
// start under 5 s, later starts under 1 s.
//
//   npm run bench:dev                 # 5 rounds of (first start, later start)
//   BENCH_ROUNDS=10 node bench/dev-startup.mjs
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, median } from './lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);

/** Milliseconds from spawn to the ready line; then SIGINT and wait for a clean exit. */
function timedStart(dataDir, ports) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(
      process.execPath,
      [cli, '--data-dir', dataDir, 'dev', '--port', String(ports.port), '--agent-port', String(ports.agent), '--proxy-port', String(ports.proxy)],
      {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, OPENMSI_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let readyMs;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`not ready within 60 s:\n${out}`));
    }, 60_000);
    child.stdout.on('data', (c) => {
      out += c;
      if (readyMs === undefined && out.includes('openmsi dev ready')) {
        readyMs = Number(process.hrtime.bigint() - started) / 1e6;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (c) => (out += c));
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (readyMs === undefined || code !== 0) reject(new Error(`openmsi dev exited ${code} (ready: ${readyMs !== undefined}):\n${out}`));
      else resolve(readyMs);
    });
  });
}

const first = [];
const later = [];
for (let i = 0; i < rounds; i++) {
  const dir = mkdtempSync(join(tmpdir(), 'openmsi-bench-dev-'));
  try {
    const ports = { port: await freePort(), agent: await freePort(), proxy: await freePort() };
    first.push(await timedStart(join(dir, 'data'), ports));
    later.push(await timedStart(join(dir, 'data'), ports));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const summary = (xs) => ({
  medianMs: Math.round(median(xs)),
  minMs: Math.round(Math.min(...xs)),
  maxMs: Math.round(Math.max(...xs)),
  runsMs: xs.map(Math.round),
});
const report = {
  machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
  rounds,
  firstStart: { ...summary(first), goalMs: 5000 },
  laterStart: { ...summary(later), goalMs: 1000 },
};
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
if (median(first) >= 5000 || median(later) >= 1000) {
  process.stderr.write('openmsi dev start-up missed its goal\n');
  process.exitCode = 1;
}
