#!/usr/bin/env node
// client_credentials grants per second on loopback, with a bare fastify fixed-body HTTPS route as the
// baseline in the same run. Server and load generator are separate processes; when `taskset` exists the
// servers are pinned to CPU 0 and autocannon to CPU 1 so they do not fight for one core.
//
//   npm run bench                      # 10 s per target, 32 keep-alive connections
//   BENCH_DURATION=20 BENCH_CONNECTIONS=64 npm run bench
//   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench   # PostgreSQL store
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { autocannonRun, freePort, hasTaskset, pinned } from './lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const duration = Number(process.env.BENCH_DURATION ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
// Optional: a PostgreSQL server URL; the run creates (and drops) a fresh database on it.
const pgServer = process.env.BENCH_POSTGRES_URL;

function waitForLine(child, pattern, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}: ${seen.slice(-2000)}`)), timeoutMs);
    const onData = (chunk) => {
      seen += chunk.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`process exited (${code}) before ready: ${seen.slice(-2000)}`)));
  });
}

function openmsi(dataDir, args, env = {}) {
  return JSON.parse(execFileSync(process.execPath, [cli, '--data-dir', dataDir, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' }));
}

async function load(url, body, caPath) {
  const args = ['-c', String(connections), '-d', String(duration), '-m', 'POST', '-H', 'content-type=application/x-www-form-urlencoded', '-b', body];
  return autocannonRun(url, args, { NODE_EXTRA_CA_CERTS: caPath });
}

const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-bench-'));
const children = [];
let store;
let dropDatabase = async () => {};
try {
  if (pgServer) {
    const { default: pg } = await import('pg');
    const name = `openmsi_bench_${Date.now()}`;
    const admin = async (sql) => {
      const client = new pg.Client({ connectionString: pgServer });
      await client.connect();
      try {
        await client.query(sql);
      } finally {
        await client.end();
      }
    };
    await admin(`CREATE DATABASE "${name}"`);
    dropDatabase = () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    const url = new URL(pgServer);
    url.pathname = `/${name}`;
    store = url.toString();
  }
  const port = await freePort();
  const env = store ? { OPENMSI_STORE: store } : {};
  openmsi(dataDir, ['init', '--port', String(port), ...(store ? ['--store', store] : [])], env);
  const caPath = join(dataDir, 'ca/ca.pem');

  const [acmd, aargs] = pinned(0, process.execPath, [cli, '--data-dir', dataDir, 'authority']);
  const authority = spawn(acmd, aargs, { env: { ...process.env, ...env, OPENMSI_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(authority);
  // At warn level the readiness line is not printed; poll the discovery document instead.
  const config = JSON.parse(readFileSync(join(dataDir, 'config.json'), 'utf8'));
  config.publicUrl ??= `https://localhost:${port}`;
  await waitUntilUp(`${config.publicUrl}/${config.tenantId}/v2.0/.well-known/openid-configuration`, caPath);

  const sp = openmsi(dataDir, ['ad', 'sp', 'create-for-rbac', '--name', 'bench'], env);
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: sp.appId,
    client_secret: sp.password,
    scope: 'https://vault.azure.net/.default',
  }).toString();
  const tokenUrl = `${config.publicUrl}/${config.tenantId}/oauth2/v2.0/token`;

  const basePort = await freePort();
  const [bcmd, bargs] = pinned(0, process.execPath, [join(root, 'bench/baseline-server.mjs'), dataDir, String(basePort)]);
  const baseline = spawn(bcmd, bargs, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(baseline);
  await waitForLine(baseline, /listening/);

  // Warm up both (JIT, TLS session set-up), then measure.
  await load(tokenUrl, body, caPath).catch(() => undefined);
  const grant = await load(tokenUrl, body, caPath);
  const bare = await load(`https://localhost:${basePort}/token`, body, caPath);
  const report = {
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version, pinned: hasTaskset },
    settings: { durationSeconds: duration, connections, keepAlive: true, store: store ? 'postgres' : 'sqlite' },
    clientCredentialsGrant: grant,
    bareFastifyBaseline: bare,
    ratio: Number((grant.requestsPerSecond / bare.requestsPerSecond).toFixed(3)),
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  if (grant.non2xx > 0 || grant.errors > 0) {
    process.stderr.write('the grant benchmark saw failed requests\n');
    process.exitCode = 1;
  }
} finally {
  for (const child of children) child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  await dropDatabase();
  if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
}

async function waitUntilUp(url, caPath) {
  const { request } = await import('node:https');
  const ca = readFileSync(caPath);
  for (let i = 0; i < 150; i++) {
    const ok = await new Promise((resolve) => {
      const req = request(url, { ca }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.end();
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('authority did not come up');
}
