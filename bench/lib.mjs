// Shared by the benchmarks: CPU pinning (servers on CPU 0, the load generator on CPU 1, when `taskset`
// exists) and a free loopback port.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';

export const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
})();

/** `[cmd, args]` that run `cmd args` on `cpu` when taskset exists, else unpinned. */
export const pinned = (cpu, cmd, args) => (hasTaskset ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args]);

export function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const autocannon = new URL('../node_modules/autocannon/autocannon.js', import.meta.url).pathname;

/**
 * One autocannon run from its own process on CPU 1 (`--json`), summarised. `args` are autocannon's own
 * (`-c`, `-d`, `-m`, `-H`, `-b`, `-I`, ...) before the URL; `env` is added to this process's environment.
 */
export function autocannonRun(url, args, env = {}) {
  const [cmd, argv] = pinned(1, process.execPath, [autocannon, '--json', ...args, url]);
  return summary(JSON.parse(execFileSync(cmd, argv, { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })));
}

/**
 * One run of `bench/grant-load.mjs` (autocannon's API, a body built per request: a fresh host assertion each) from
 * its own process on CPU 1, summarised as {@link autocannonRun}'s.
 */
export function grantLoadRun(spec, env = {}) {
  const script = new URL('./grant-load.mjs', import.meta.url).pathname;
  const [cmd, argv] = pinned(1, process.execPath, [script, JSON.stringify(spec)]);
  return summary(JSON.parse(execFileSync(cmd, argv, { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })));
}

function summary(result) {
  return {
    requestsPerSecond: Math.round(result.requests.average),
    p50ms: result.latency.p50,
    p99ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    total: result.requests.total,
  };
}

/** Polls `check` (every 200 ms, errors counting as "not yet") until it returns true; throws after `timeoutMs`. */
export async function waitFor(check, what, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** CPU time (utime + stime, ms) process `pid` has used, from /proc; NaN where there is none. */
export function cpuMillis(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/** `run()`'s result (an autocannon summary) with the CPU µs process `pid` spent per request served during it. */
export function withCpuPerRequest(pid, run) {
  const before = cpuMillis(pid);
  const result = run();
  return { ...result, cpuMicrosPerRequest: Number((((cpuMillis(pid) - before) * 1000) / result.total).toFixed(1)) };
}

/** Sends SIGTERM to each child process and waits (at most 10 s) for all to exit. */
export async function stopChildren(children) {
  const exited = children.map((child) =>
    child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r)),
  );
  for (const child of children) child.kill('SIGTERM');
  await Promise.race([Promise.all(exited), new Promise((r) => setTimeout(r, 10_000))]);
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * One side of alternating rounds (`rounds[i][side]` are autocannonRun results): the median round, with every
 * round's rate and the failures summed over all rounds.
 */
export function medianRound(rounds, side) {
  const rps = rounds.map((r) => r[side].requestsPerSecond);
  const mid = rounds.find((r) => r[side].requestsPerSecond === median(rps))[side];
  return {
    ...mid,
    roundsRequestsPerSecond: rps,
    non2xx: rounds.reduce((n, r) => n + r[side].non2xx, 0),
    errors: rounds.reduce((n, r) => n + r[side].errors, 0),
  };
}

const cli = join(fileURLToPath(new URL('..', import.meta.url)), 'dist/cli/main.js');

/** `openmsi --data-dir DIR ARGS...` (the built CLI, warnings only), its JSON output parsed. */
export function openmsiJson(dataDir, args) {
  return JSON.parse(
    execFileSync(process.execPath, [cli, '--data-dir', dataDir, ...args], { encoding: 'utf8', env: { ...process.env, OPENMSI_LOG_LEVEL: 'warn' } }),
  );
}

/** One HTTPS request to 127.0.0.1:`port` with this Host (a vault's name needs no DNS), trusting `ca`. */
export function httpsCall(port, path, { host, method = 'GET', headers = {}, body, ca }) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, servername: host.split(':')[0], headers: { host, ...headers }, ca, agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
