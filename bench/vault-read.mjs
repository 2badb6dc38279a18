#!/usr/bin/env node
// Secret reads per second with a valid token (`GET /secrets/NAME?api-version=7.4`, RBAC vault, the caller
// holding Key Vault Secrets User at the vault), on `openmsi server`, against the vault's own server stack
// (bench/vault-baseline-server.mjs: same fastify options, certificate and headers) answering a fixed body of
// the same size, in the same run; reports both and the ratio.
// Alternating rounds; servers pinned to CPU 0 and autocannon to CPU 1 when `taskset` exists.
//
//   npm run bench:vault                         # 3 alternating rounds of 10 s per side, 32 connections
//   BENCH_DURATION=20 BENCH_CONNECTIONS=64 node bench/vault-read.mjs
//   BENCH_CPU_PROF=/tmp/prof npm run bench:vault   # the server writes a V8 CPU profile there when it stops
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { autocannonRun, freePort, hasTaskset, httpsCall, openmsiJson, medianRound, pinned, waitFor, stopChildren } from './lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const duration = Number(process.env.BENCH_DURATION ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const roundCount = Number(process.env.BENCH_ROUNDS ?? 3);

const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-bench-vault-'));
const children = [];
try {
  const port = await freePort();
  openmsiJson(dataDir, ['init', '--port', String(port)]);
  const caPath = join(dataDir, 'ca/ca.pem');
  const ca = readFileSync(caPath, 'utf8');
  const config = JSON.parse(readFileSync(join(dataDir, 'config.json'), 'utf8'));
  const profile = process.env.BENCH_CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`];
  const [scmd, sargs] = pinned(0, process.execPath, [...profile, cli, '--data-dir', dataDir, 'server']);
  const server = spawn(scmd, sargs, { env: { ...process.env, OPENMSI_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(server);
  const authority = `localhost:${port}`;
  await waitFor(
    async () => (await httpsCall(port, `/${config.tenantId}/v2.0/.well-known/openid-configuration`, { host: authority, ca })).status === 200,
    'the server',
  );

  openmsiJson(dataDir, ['group', 'create', '-n', 'bench', '-l', 'local']);
  const vault = openmsiJson(dataDir, ['keyvault', 'create', '-g', 'bench', '-n', 'kv-bench']);
  const sp = openmsiJson(dataDir, ['ad', 'sp', 'create-for-rbac', '--name', 'bench-reader']);
  const admin = JSON.parse(readFileSync(join(dataDir, 'admin.json'), 'utf8'));
  openmsiJson(dataDir, ['role', 'assignment', 'create', '--assignee', admin.objectId, '--role', 'Key Vault Secrets Officer', '--scope', vault.id]);
  openmsiJson(dataDir, ['role', 'assignment', 'create', '--assignee', sp.appId, '--role', 'Key Vault Secrets User', '--scope', vault.id]);
  const value = `Server=tcp:db.example,1433;Database=app;User ID=app;Password=${'p'.repeat(40)};Encrypt=true`;
  openmsiJson(dataDir, ['keyvault', 'secret', 'set', '--vault-name', 'kv-bench', '-n', 'connection-string', '--value', value]);

  const vaultHost = `kv-bench.${config.vaultDomain ?? 'vault.localhost'}:${port}`;
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: sp.appId,
    client_secret: sp.password,
    scope: `https://${config.vaultDomain ?? 'vault.localhost'}:${port}/.default`,
  }).toString();
  const tokenResponse = await httpsCall(port, `/${config.tenantId}/oauth2/v2.0/token`, {
    host: authority,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form,
    ca,
  });
  const token = JSON.parse(tokenResponse.body).access_token;
  const path = '/secrets/connection-string?api-version=7.4';
  const sample = await httpsCall(port, path, { host: vaultHost, headers: { authorization: `Bearer ${token}` }, ca });
  if (sample.status !== 200) throw new Error(`the vault answered ${sample.status}: ${sample.body}`);

  const basePort = await freePort();
  const [bcmd, bargs] = pinned(0, process.execPath, [join(root, 'bench/vault-baseline-server.mjs'), dataDir, String(basePort), String(sample.body.length)]);
  const baseline = spawn(bcmd, bargs, { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(baseline);
  await waitFor(async () => (await httpsCall(basePort, path, { host: `localhost:${basePort}`, ca })).status === 200, 'the baseline');

  const vaultUrl = `https://127.0.0.1:${port}${path}`;
  const bareUrl = `https://127.0.0.1:${basePort}${path}`;
  const load = (url, headers) =>
    autocannonRun(url, ['-c', String(connections), '-d', String(duration), ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`])], {
      NODE_EXTRA_CA_CERTS: caPath,
    });
  const vaultHeaders = { host: vaultHost, authorization: `Bearer ${token}` };
  load(vaultUrl, vaultHeaders); // warm-up (JIT, caches)
  load(bareUrl, {});
  const rounds = [];
  for (let i = 0; i < roundCount; i++) rounds.push({ vault: load(vaultUrl, vaultHeaders), bare: load(bareUrl, {}) });
  const pick = (side) => medianRound(rounds, side);
  const read = pick('vault');
  const bare = pick('bare');
  const report = {
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version, pinned: hasTaskset },
    settings: { durationSeconds: duration, rounds: roundCount, connections, keepAlive: true, responseBytes: sample.body.length, store: 'sqlite' },
    secretRead: read,
    sameStackFixedBody: bare,
    ratio: Number((read.requestsPerSecond / bare.requestsPerSecond).toFixed(3)),
    roundRatios: rounds.map((r) => Number((r.vault.requestsPerSecond / r.bare.requestsPerSecond).toFixed(3))),
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  if (read.non2xx > 0 || read.errors > 0) {
    process.stderr.write('the vault benchmark saw failed requests\n');
    process.exitCode = 1;
  }
} finally {
  // Each is waited for (bounded): a server writes its CPU profile (BENCH_CPU_PROF) as it stops.
  await stopChildren(children);
  if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
}
