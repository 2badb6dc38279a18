#!/usr/bin/env node
// The agent's token paths on loopback keep-alive, from a separate autocannon process:
//  - cached: the same (identity, resource) again and again (IMDS GET with Metadata: true), against a bare
//    node:http server answering a fixed token body of the same size, in the same run; reports both and the ratio;
//  - miss: a new resource per request (autocannon's [<id>] replacement), so every request is a grant at the
//    authority: tokens/s end to end.
// The agent and the baseline are pinned to CPU 0 and autocannon to CPU 1 when `taskset` exists; the authority
// (only on the miss path) shares CPU 0 with the agent.
//
//   npm run bench:agent                         # 3 alternating rounds of 10 s per side, 32 connections
//   BENCH_DURATION=20 BENCH_CONNECTIONS=64 node bench/agent-token.mjs
//   BENCH_CPU_PROF=/tmp/prof npm run bench:agent   # the agent writes a V8 CPU profile there when it stops
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { autocannonRun, freePort, hasTaskset, medianRound, pinned, waitFor, withCpuPerRequest, stopChildren } from './lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const duration = Number(process.env.BENCH_DURATION ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const roundCount = Number(process.env.BENCH_ROUNDS ?? 3);

function openmsi(dataDir, args) {
  return JSON.parse(execFileSync(process.execPath, [cli, '--data-dir', dataDir, ...args], { encoding: 'utf8' }));
}

function get(port, path, headers) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function load(url, headers = {}) {
  const headerArgs = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]);
  // -I: replace [<id>] in the URL with a fresh id per request (the cache-miss run).
  const ids = url.includes('[<id>]') ? ['-I'] : [];
  return autocannonRun(url, ['-c', String(connections), '-d', String(duration), ...ids, ...headerArgs]);
}

const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-bench-'));
const agentDir = mkdtempSync(join(tmpdir(), 'openmsi-bench-agent-'));
const children = [];
try {
  const port = await freePort();
  openmsi(dataDir, ['init', '--port', String(port)]);
  const caPath = join(dataDir, 'ca/ca.pem');
  const config = JSON.parse(readFileSync(join(dataDir, 'config.json'), 'utf8'));
  const authorityUrl = config.publicUrl ?? `https://localhost:${port}`;
  const [acmd, aargs] = pinned(0, process.execPath, [cli, '--data-dir', dataDir, 'authority']);
  const authority = spawn(acmd, aargs, { env: { ...process.env, OPENMSI_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(authority);
  const ca = readFileSync(caPath, 'utf8');
  await waitFor(
    () =>
      new Promise((resolve, reject) => {
        const req = httpsGet(`${authorityUrl}/${config.tenantId}/v2.0/.well-known/openid-configuration`, { ca }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        });
        req.on('error', reject);
      }),
    'the authority',
  );

  openmsi(dataDir, ['group', 'create', '-n', 'bench-rg', '-l', 'local']);
  const join_ = openmsi(dataDir, ['host', 'join-token', 'create', '-g', 'bench-rg', '-n', 'bench-host']);
  const agentPort = await freePort();
  // The rate limit is a safety valve, not what is measured: raise it far above the offered load.
  const profile = process.env.BENCH_CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`];
  const [gcmd, gargs] = pinned(0, process.execPath, [
    ...profile,
    cli,
    'agent',
    '--join-token',
    join_.token,
    '--authority',
    authorityUrl,
    '--ca-file',
    caPath,
    '--data-dir',
    agentDir,
    '--port',
    String(agentPort),
    '--rate-limit',
    '10000000',
  ]);
  const agent = spawn(gcmd, gargs, { env: { ...process.env, OPENMSI_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(agent);
  const cachedPath = '/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net';
  await waitFor(async () => (await get(agentPort, cachedPath, { Metadata: 'true' })).status === 200, 'the agent');
  const sample = await get(agentPort, cachedPath, { Metadata: 'true' });

  const basePort = await freePort();
  const [bcmd, bargs] = pinned(0, process.execPath, [
    join(root, 'bench/agent-baseline-server.mjs'),
    String(basePort),
    String(JSON.parse(sample.body).access_token.length),
  ]);
  const baseline = spawn(bcmd, bargs, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(baseline);
  await waitFor(async () => (await get(basePort, '/', {})).status === 200, 'the baseline');

  const agentUrl = `http://127.0.0.1:${agentPort}${cachedPath}`;
  const bareUrl = `http://127.0.0.1:${basePort}/metadata/identity/oauth2/token`;
  load(agentUrl, { Metadata: 'true' }); // warm-up (JIT)
  load(bareUrl);
  // Alternating rounds, so that load from anything else on the machine hits both sides alike; medians reported.
  // CPU time each server spends (utime + stime from /proc), per request served: robust to a busy machine.
  const rounds = [];
  for (let i = 0; i < roundCount; i++)
    rounds.push({
      cached: withCpuPerRequest(agent.pid, () => load(agentUrl, { Metadata: 'true' })),
      bare: withCpuPerRequest(baseline.pid, () => load(bareUrl)),
    });
  const pick = (side) => medianRound(rounds, side);
  const cached = pick('cached');
  const bare = pick('bare');
  const miss = load(`http://127.0.0.1:${agentPort}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fbench-[<id>].example`, {
    Metadata: 'true',
  });
  const report = {
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version, pinned: hasTaskset },
    settings: { durationSeconds: duration, rounds: roundCount, connections, keepAlive: true, responseBytes: sample.body.length },
    cachedToken: cached,
    bareNodeHttpBaseline: bare,
    ratio: Number((cached.requestsPerSecond / bare.requestsPerSecond).toFixed(3)),
    roundRatios: rounds.map((r) => Number((r.cached.requestsPerSecond / r.bare.requestsPerSecond).toFixed(3))),
    cpuPerRequestRatio: Number((bare.cpuMicrosPerRequest / cached.cpuMicrosPerRequest).toFixed(3)),
    cacheMissTokens: miss,
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  if (cached.non2xx > 0 || cached.errors > 0 || miss.non2xx > 0 || miss.errors > 0) {
    process.stderr.write('the agent benchmark saw failed requests\n');
    process.exitCode = 1;
  }
} finally {
  // Each is waited for (bounded): a server writes its CPU profile (BENCH_CPU_PROF) as it stops.
  await stopChildren(children);
  for (const dir of [dataDir, agentDir]) if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
}
