#!/usr/bin/env node
// Token grants per second on loopback, side by side in one run: client_credentials (client_secret), the
// agent's managed-identity grant (a fresh ES256 host assertion per request: the agent's cache-miss path),
// the RS256 signing floor (node:crypto one-shot signatures on the authority's core), and a bare fastify
// fixed-body HTTPS route. Server and load generator are separate processes; when `taskset` exists the
// servers (and the floor) are pinned to CPU 0 and the load generator to CPU 1 so they do not fight for one core.
// Both grants are driven by the same generator (bench/grant-load.mjs). Alternating rounds; medians reported.
//
//   npm run bench                      # 3 rounds of 10 s per target, 32 keep-alive connections
//   BENCH_DURATION=20 BENCH_CONNECTIONS=64 BENCH_ROUNDS=5 npm run bench
//   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench   # PostgreSQL store
//   BENCH_CPU_PROF=/tmp/prof npm run bench   # the authority writes a V8 CPU profile there when it stops
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { autocannonRun, freePort, grantLoadRun, hasTaskset, median, medianRound, pinned, waitFor, withCpuPerRequest, stopChildren } from './lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const duration = Number(process.env.BENCH_DURATION ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const roundCount = Number(process.env.BENCH_ROUNDS ?? 3);
const cpuProfDir = process.env.BENCH_CPU_PROF;
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
const dirs = [dataDir];
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

  const profile = cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`];
  const [acmd, aargs] = pinned(0, process.execPath, [...profile, cli, '--data-dir', dataDir, 'authority']);
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

  // A host enrolled by the real agent (join token), which is then stopped: the bench signs the host's
  // assertions itself with the key the agent made, as the agent does on each cache miss.
  const agentDir = mkdtempSync(join(tmpdir(), 'openmsi-bench-agent-'));
  dirs.push(agentDir);
  openmsi(dataDir, ['group', 'create', '-n', 'bench-rg', '-l', 'local'], env);
  const joinToken = openmsi(dataDir, ['host', 'join-token', 'create', '-g', 'bench-rg', '-n', 'bench-host'], env);
  const agentPort = await freePort();
  const agent = spawn(
    process.execPath,
    [cli, 'agent', '--join-token', joinToken.token, '--authority', config.publicUrl, '--ca-file', caPath, '--data-dir', agentDir, '--port', String(agentPort)],
    { env: { ...process.env, OPENMSI_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  children.push(agent);
  await waitFor(() => existsSync(join(agentDir, 'host-credential.json')), 'the host enrolment');
  agent.kill('SIGTERM');
  const record = JSON.parse(readFileSync(join(agentDir, 'host-credential.json'), 'utf8'));
  const privateJwk = JSON.parse(readFileSync(join(agentDir, `host-key-${record.keyId.replace(/[^A-Za-z0-9-]/g, '_')}.jwk`), 'utf8'));
  const managedIdentity = {
    privateJwk,
    keyId: record.keyId,
    hostResourceId: record.hostResourceId,
    audience: record.tokenEndpoint,
    form: {
      grant_type: 'urn:openmsi:params:oauth:grant-type:managed-identity',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      resource: 'https://vault.azure.net',
    },
  };

  const ca = { NODE_EXTRA_CA_CERTS: caPath };
  // The authority's CPU per grant (from /proc) too: on a busy machine, CPU per grant against CPU per signature is
  // the steadier ratio.
  const grants = (spec) => withCpuPerRequest(authority.pid, () => grantLoadRun({ connections, duration, ...spec }, ca));
  const floor = () => {
    const [fcmd, fargs] = pinned(0, process.execPath, [join(root, 'bench/rs256-sign.mjs'), '--floor', String(Math.min(duration, 5))]);
    return JSON.parse(execFileSync(fcmd, fargs, { encoding: 'utf8' }));
  };
  // Warm up (JIT, TLS session set-up), then alternate, so load from anything else hits every side alike.
  grants({ url: tokenUrl, body, duration: 3 });
  grants({ url: record.tokenEndpoint, hostAssertion: managedIdentity, duration: 3 });
  const rounds = [];
  for (let i = 0; i < roundCount; i++) {
    rounds.push({
      floor: floor(),
      clientCredentials: grants({ url: tokenUrl, body }),
      managedIdentity: grants({ url: record.tokenEndpoint, hostAssertion: managedIdentity }),
      bare: await load(`https://localhost:${basePort}/token`, body, caPath),
    });
  }
  const ratio = (a, b) => Number((a / b).toFixed(3));
  const grant = medianRound(rounds, 'clientCredentials');
  const mi = medianRound(rounds, 'managedIdentity');
  const bare = medianRound(rounds, 'bare');
  const signatures = rounds.map((r) => r.floor.signaturesPerSecond);
  const floorRate = median(signatures);
  const floorCpu = median(rounds.map((r) => r.floor.cpuMicrosPerSignature));
  const os = await import('node:os');
  const report = {
    machine: { cpus: os.cpus().length, node: process.version, pinned: hasTaskset, loadAverage: os.loadavg() },
    settings: { durationSeconds: duration, rounds: roundCount, connections, keepAlive: true, store: store ? 'postgres' : 'sqlite' },
    clientCredentialsGrant: grant,
    managedIdentityGrant: mi,
    rs256SigningFloor: { signaturesPerSecond: floorRate, cpuMicrosPerSignature: floorCpu, rounds: rounds.map((r) => r.floor) },
    bareFastifyBaseline: bare,
    // Issue 19's goals: client_credentials ≥ 0.6 of the signing floor; managed identity ≥ 0.8 of client_credentials.
    clientCredentialsToFloor: ratio(grant.requestsPerSecond, floorRate),
    managedIdentityToClientCredentials: ratio(mi.requestsPerSecond, grant.requestsPerSecond),
    // The same ratios from CPU time per operation (signature, grant) on the authority's core.
    cpu: {
      clientCredentialsToFloor: ratio(floorCpu, grant.cpuMicrosPerRequest),
      managedIdentityToClientCredentials: ratio(grant.cpuMicrosPerRequest, mi.cpuMicrosPerRequest),
    },
    roundRatios: rounds.map((r) => ({
      clientCredentialsToFloor: ratio(r.clientCredentials.requestsPerSecond, r.floor.signaturesPerSecond),
      managedIdentityToClientCredentials: ratio(r.managedIdentity.requestsPerSecond, r.clientCredentials.requestsPerSecond),
      cpuClientCredentialsToFloor: ratio(r.floor.cpuMicrosPerSignature, r.clientCredentials.cpuMicrosPerRequest),
      cpuManagedIdentityToClientCredentials: ratio(r.clientCredentials.cpuMicrosPerRequest, r.managedIdentity.cpuMicrosPerRequest),
    })),
    clientCredentialsToBareFastify: ratio(grant.requestsPerSecond, bare.requestsPerSecond),
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  if (grant.non2xx > 0 || grant.errors > 0 || mi.non2xx > 0 || mi.errors > 0) {
    process.stderr.write('the grant benchmark saw failed requests\n');
    process.exitCode = 1;
  }
} finally {
  // Each is waited for (bounded): a server writes its CPU profile (BENCH_CPU_PROF) as it stops.
  await stopChildren(children);
  await dropDatabase();
  for (const dir of dirs) if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
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
