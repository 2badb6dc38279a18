#!/usr/bin/env node
// The fleet simulator (issue 19): simulated agents speaking the real host protocol against two `openmsi server`
// replicas on one PostgreSQL on this machine. Phases:
//   1. seed (management API, as the bootstrap admin): a pool of user-assigned identities; per host a machine
//      with its system-assigned identity and FLEET_IDENTITIES-1 user-assigned ones, and a join token;
//   2. enrol: every agent makes an ES256 key and enrols with its join token at its replica (the real path);
//   3. start: every agent reads `self` (its identities);
//   4. steady state (FLEET_STEADY_SECONDS of real time at the real rate): tokens live FLEET_TOKEN_LIFETIME
//      seconds (the authority's configured lifetime, default 1 h) and are refreshed at half-life, so
//      agents × identities tokens are refreshed per half-life, evenly spread (open loop, as independent
//      agents); with FLEET_SELF_POLL_SECONDS > 0 (default 0: off), also each agent's `self` re-read that often
//      (today's agent re-reads every 2 s; issue 19 replaces that with a long poll and a rare full reconciliation);
//   5. herd: every agent restarts at once (no connection, no TLS session, no token) and reads `self` and
//      fetches all its tokens, retrying failures with the agent's backoff; until every agent has every token.
// Reported: issuance/s, grant latency p50/p99, PostgreSQL statements per agent per minute in steady state
// (pg_stat_statements), herd recovery time, each replica's RSS and CPU, the load average.
//
//   npm run bench:fleet                                      # 10,000 agents × 5 identities, 180 s steady state
//   FLEET_AGENTS=300 FLEET_STEADY_SECONDS=15 npm run bench:fleet     # a quick development run
//   FLEET_CPU_PROF=/tmp/prof npm run bench:fleet             # replicas run with --cpu-prof (profiles there)
//
// PostgreSQL: a throwaway cluster from scripts/pg-cluster.sh (state in $OPENMSI_PG_STATE, default
// /tmp/openmsi-pg-fleetbench), started with pg_stat_statements preloaded and stopped at the end; or an existing
// server with FLEET_PG_URL (a fresh database is made there; queries are then counted only if
// pg_stat_statements is loaded, else transactions from pg_stat_database stand in).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { freePort, waitFor } from '../lib.mjs';
import { SimulatedAgent } from './agent.mjs';
import { clusterCpuSeconds, cpuSeconds, memory, percentile, summarise } from './stats.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const env = process.env;
const settings = {
  agents: Number(env.FLEET_AGENTS ?? 10_000),
  identities: Number(env.FLEET_IDENTITIES ?? 5),
  steadySeconds: Number(env.FLEET_STEADY_SECONDS ?? 180),
  tokenLifetimeSeconds: Number(env.FLEET_TOKEN_LIFETIME ?? 3600),
  selfPollSeconds: Number(env.FLEET_SELF_POLL_SECONDS ?? 0),
  userAssignedPool: Number(env.FLEET_UA_POOL ?? 100),
  herdDeadlineSeconds: Number(env.FLEET_HERD_DEADLINE_SECONDS ?? 900),
  setupConcurrency: Number(env.FLEET_SETUP_CONCURRENCY ?? 32),
};
if (!(settings.agents >= 1 && settings.identities >= 1 && settings.steadySeconds >= 1))
  throw new Error('FLEET_AGENTS, FLEET_IDENTITIES, FLEET_STEADY_SECONDS must be positive');
settings.userAssignedPool = Math.max(settings.userAssignedPool, settings.identities - 1);
const RETRY_BASE_MS = 1000; // the agent's AGENT_DEFAULTS.retryBaseMs / retryMaxMs
const RETRY_MAX_MS = 60_000;
const API_VERSION = 'api-version=2023-01-31';
const log = (message) => process.stderr.write(`[fleet ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** CLOCK_MONOTONIC in µs: the time base of V8's CPU profiles, so a phase can be cut out of a replica's profile. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/** Runs `work(i)` for i in [0, n) with at most `limit` in flight. */
async function pool(n, limit, work) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, n) }, async () => {
      while (next < n) await work(next++);
    }),
  );
}

// ---- PostgreSQL ---------------------------------------------------------------------------------------------

const pgState = env.OPENMSI_PG_STATE ?? '/tmp/openmsi-pg-fleetbench';
const pgScript = join(root, 'scripts/pg-cluster.sh');

async function startPostgres() {
  if (env.FLEET_PG_URL) return { url: env.FLEET_PG_URL, started: false };
  const url = execFileSync('bash', [pgScript, 'start'], { env: { ...env, OPENMSI_PG_STATE: pgState }, encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop();
  // Preload pg_stat_statements (a restart of this throwaway cluster) so every statement is counted.
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const preload = (await admin.query('SHOW shared_preload_libraries')).rows[0].shared_preload_libraries;
  if (!preload.includes('pg_stat_statements')) {
    await admin.query("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
    await admin.end();
    const dir = readFileSync(join(pgState, 'dir'), 'utf8').trim();
    const bindir = readFileSync(join(pgState, 'bindir'), 'utf8').trim();
    const pgCtl = [join(bindir, 'pg_ctl'), '-D', join(dir, 'data'), '-w', '-t', '60', 'restart'];
    const asRoot = process.getuid?.() === 0;
    execFileSync(asRoot ? 'runuser' : pgCtl[0], asRoot ? ['-u', 'postgres', '--', ...pgCtl] : pgCtl.slice(1), { stdio: 'ignore' });
  } else {
    await admin.end();
  }
  return { url, started: true, dataDir: join(readFileSync(join(pgState, 'dir'), 'utf8').trim(), 'data') };
}

function stopPostgres() {
  execFileSync('bash', [pgScript, 'stop'], { env: { ...env, OPENMSI_PG_STATE: pgState }, stdio: 'ignore' });
}

/** A fresh database for this run, and a counter of the statements and transactions run in it. */
async function benchDatabase(serverUrl) {
  const name = `fleetbench_${Date.now()}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  let statements = false;
  try {
    await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await admin.query('SELECT 1 FROM pg_stat_statements LIMIT 1');
    statements = true;
  } catch {
    log('pg_stat_statements is not loaded: counting transactions (pg_stat_database) only');
  }
  return {
    url: url.toString(),
    name,
    /** Statements (pg_stat_statements calls, with and without BEGIN/COMMIT/ROLLBACK) and transactions so far. */
    async counters() {
      const xacts = await admin.query('SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1', [name]);
      if (!statements) return { transactions: Number(xacts.rows[0].n) };
      const rows = await admin.query(
        `SELECT sum(calls) AS all_calls,
                sum(calls) FILTER (WHERE query !~* '^\\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION|SAVEPOINT|RELEASE)') AS data_calls
           FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1`,
        [name],
      );
      return { statements: Number(rows.rows[0].all_calls ?? 0), dataStatements: Number(rows.rows[0].data_calls ?? 0), transactions: Number(xacts.rows[0].n) };
    },
    /** The statements that ran most often in this database since `reset` (text, calls, mean ms). */
    async top(n = 12) {
      if (!statements) return [];
      const rows = await admin.query(
        `SELECT calls, round(mean_exec_time::numeric, 3) AS mean_ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 140) AS query
           FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 ORDER BY calls DESC LIMIT $2`,
        [name, n],
      );
      return rows.rows.map((r) => ({ calls: Number(r.calls), meanMs: Number(r.mean_ms), query: r.query }));
    },
    async reset() {
      if (statements) await admin.query('SELECT pg_stat_statements_reset()');
    },
    async close() {
      await admin.end();
    },
  };
}

// ---- the replicas -------------------------------------------------------------------------------------------

function startReplica(dataDir, args, name, profileDir) {
  const nodeArgs = profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', join(profileDir, name)];
  const child = spawn(process.execPath, [...nodeArgs, cli, '--data-dir', dataDir, 'server', ...args], {
    env: { ...env, OPENMSI_LOG_LEVEL: 'warn', OPENMSI_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let errors = '';
  child.stderr.on('data', (c) => {
    if (errors.length < 100_000) errors += c;
  });
  child.name = name;
  child.stderrText = () => errors;
  return child;
}

function getStatus(port, path, ca) {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, servername: 'localhost', ca, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

// ---- the management API (seeding) ---------------------------------------------------------------------------

function managementClient(ports, publicHost, ca, token) {
  const agent = new Agent({ keepAlive: true, maxSockets: 32, ca });
  let turn = 0;
  return (method, path, body) =>
    new Promise((resolve, reject) => {
      const port = ports[turn++ % ports.length];
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          host: '127.0.0.1',
          port,
          servername: 'localhost',
          path,
          method,
          agent,
          headers: {
            host: publicHost,
            authorization: `Bearer ${token}`,
            ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () =>
            res.statusCode < 300
              ? resolve(text === '' ? undefined : JSON.parse(text))
              : reject(new Error(`${method} ${path}: HTTP ${res.statusCode} ${text.slice(0, 300)}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
}

async function adminToken(port, publicHost, ca, tenantId, admin) {
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: admin.clientId,
    client_secret: admin.clientSecret,
    scope: 'https://management.azure.com/.default',
  }).toString();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        path: `/${tenantId}/oauth2/v2.0/token`,
        method: 'POST',
        ca,
        agent: false,
        headers: { host: publicHost, 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(JSON.parse(text).access_token) : reject(new Error(`admin token: HTTP ${res.statusCode} ${text}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

// ---- measurement helpers ------------------------------------------------------------------------------------

/** Counts outcomes and keeps latencies of one phase. */
function tally() {
  return {
    grantMs: [],
    selfMs: [],
    grants: 0,
    selfs: 0,
    failures: {},
    fail(kind) {
      this.failures[kind] = (this.failures[kind] ?? 0) + 1;
    },
  };
}

/** One call with the outcome recorded: true on success. */
async function attempt(t, kind, call) {
  try {
    const res = await call();
    if (res.status === 200) {
      if (kind === 'grant') {
        t.grants++;
        t.grantMs.push(res.ms);
      } else {
        t.selfs++;
        t.selfMs.push(res.ms);
      }
      return true;
    }
    t.fail(`${kind} HTTP ${res.status}`);
    if (t.samples === undefined) t.samples = {};
    t.samples[`${kind} HTTP ${res.status}`] ??= res.body.slice(0, 300);
    return false;
  } catch (err) {
    t.fail(`${kind} ${err.code ?? err.message}`);
    return false;
  }
}

/** Retries `call` with the agent's backoff (exponential from 1 s to 60 s, full jitter) until it succeeds or `deadline`. */
async function withRetry(t, kind, call, deadline) {
  for (let n = 0; ; n++) {
    if (await attempt(t, kind, call)) return true;
    const delay = Math.random() * Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** n);
    if (Date.now() + delay > deadline) return false;
    await sleep(delay);
  }
}

function sample(replicas) {
  return Object.fromEntries(replicas.map((r) => [r.name, { ...memory(r.pid), cpuSeconds: cpuSeconds(r.pid) }]));
}

/** CPU seconds so far of the replicas, the PostgreSQL cluster (when it is ours) and this simulator. */
function cpuNow(replicas) {
  const { user, system } = process.cpuUsage();
  return {
    ...Object.fromEntries(replicas.map((r) => [r.name, cpuSeconds(r.pid)])),
    postgres: postgres?.dataDir === undefined ? undefined : clusterCpuSeconds(postgres.dataDir),
    simulator: (user + system) / 1e6,
  };
}

/**
 * Where a phase's CPU went: cores used on average by each process, and CPU milliseconds per request (grants and
 * `self` calls) for each: robust to a shared machine, where wall-clock rates follow the other load.
 */
function cpuUse(before, after, seconds, requests) {
  const out = { coresUsed: {}, cpuMsPerRequest: {} };
  for (const name of Object.keys(after)) {
    if (after[name] === undefined || before[name] === undefined) continue;
    const used = after[name] - before[name];
    out.coresUsed[name] = Number((used / seconds).toFixed(2));
    out.cpuMsPerRequest[name] = Number(((used * 1000) / Math.max(1, requests)).toFixed(2));
  }
  return out;
}

// ---- the run ------------------------------------------------------------------------------------------------

const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-fleet-'));
const profileDir = env.FLEET_CPU_PROF || undefined;
const replicas = [];
const agents = [];
let postgres;
let db;
try {
  const startedAt = Date.now();
  log(
    `settings ${JSON.stringify(settings)}; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  postgres = await startPostgres();
  db = await benchDatabase(postgres.url);
  log(`PostgreSQL database ${db.name}`);

  const [portA, portB] = [await freePort(), await freePort()];
  execFileSync(
    process.execPath,
    [cli, '--data-dir', dataDir, 'init', '--port', String(portA), '--store', db.url, '--token-lifetime', String(settings.tokenLifetimeSeconds)],
    {
      env: { ...env, OPENMSI_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const config = JSON.parse(readFileSync(join(dataDir, 'config.json'), 'utf8'));
  const publicUrl = `https://localhost:${portA}`;
  const publicHost = `localhost:${portA}`;
  const ca = readFileSync(join(dataDir, 'ca/ca.pem'));
  const admin = JSON.parse(readFileSync(join(dataDir, 'admin.json'), 'utf8'));
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
  // Both replicas on the same data dir (certificates, master key) and database, advertising one public URL.
  replicas.push(startReplica(dataDir, ['--port', String(portA), '--store', db.url], 'replicaA', profileDir));
  replicas.push(startReplica(dataDir, ['--port', String(portB), '--store', db.url, '--public-url', publicUrl], 'replicaB', profileDir));
  for (const [r, port] of [
    [replicas[0], portA],
    [replicas[1], portB],
  ]) {
    await waitFor(async () => {
      if (r.exitCode !== null) throw new Error(`${r.name} exited: ${r.stderrText()}`);
      return (await getStatus(port, '/readyz', ca)) === 200;
    }, r.name);
  }
  const ports = [portA, portB];
  log(`replicas ready on ${ports.join(', ')} (pids ${replicas.map((r) => r.pid).join(', ')})`);

  // 1. Seed through the management API as the bootstrap admin.
  const seedStarted = Date.now();
  const api = managementClient(ports, publicHost, ca, await adminToken(portA, publicHost, ca, config.tenantId, admin));
  const sub = `/subscriptions/${config.subscriptionId}`;
  await api('PUT', `${sub}/resourceGroups/fleet?${API_VERSION}`, { location: 'local' });
  const uaIds = [];
  const needUserAssigned = settings.identities > 1;
  if (needUserAssigned) {
    await pool(settings.userAssignedPool, settings.setupConcurrency, async (k) => {
      const identity = await api('PUT', `${sub}/resourceGroups/fleet/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ua-${k}?${API_VERSION}`, {
        location: 'local',
      });
      uaIds[k] = identity.id;
    });
  }
  const joinTokens = new Array(settings.agents);
  await pool(settings.agents, settings.setupConcurrency, async (i) => {
    const machine = `${sub}/resourceGroups/fleet/providers/Microsoft.HybridCompute/machines/host-${i}`;
    const attached = Array.from({ length: settings.identities - 1 }, (_, j) => uaIds[(i * (settings.identities - 1) + j) % uaIds.length]);
    await api('PUT', `${machine}?${API_VERSION}`, {
      location: 'local',
      properties: { vmId: randomUUID() },
      identity: needUserAssigned
        ? { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: Object.fromEntries(attached.map((id) => [id, {}])) }
        : { type: 'SystemAssigned' },
    });
    joinTokens[i] = (await api('POST', `${machine}/createJoinToken?${API_VERSION}`, { ttlSeconds: 24 * 3600 })).token;
    if (i % 1000 === 999) log(`seeded ${i + 1} hosts`);
  });
  const seedSeconds = (Date.now() - seedStarted) / 1000;
  log(`seeded ${settings.agents} hosts and ${needUserAssigned ? settings.userAssignedPool : 0} user-assigned identities in ${seedSeconds.toFixed(1)} s`);

  // 2. Enrol (the real host API; enrolment's rate limit counts failures only, and none fail here).
  const enrolStarted = Date.now();
  const enrolTally = { ms: [] };
  await pool(settings.agents, settings.setupConcurrency, async (i) => {
    const agent = new SimulatedAgent({ index: i, port: ports[i % 2], publicHost, ca, joinToken: joinTokens[i] });
    agents[i] = agent;
    enrolTally.ms.push((await agent.enrol()).ms);
  });
  const enrolSeconds = (Date.now() - enrolStarted) / 1000;
  log(`enrolled ${settings.agents} agents in ${enrolSeconds.toFixed(1)} s`);

  // 3. Start: every agent reads its host (`self`) and learns its identities. The simulator keeps no token
  // cache (the steady state's schedule stands for it), so the first tokens are not fetched here: the herd
  // below is that fetch, for every agent at once.
  const start = tally();
  await db.reset();
  const startBefore = await db.counters();
  const startStarted = Date.now();
  await pool(settings.agents, settings.setupConcurrency, async (i) => {
    const agent = agents[i];
    if (!(await withRetry(start, 'self', () => agent.self(), Date.now() + 300_000))) throw new Error(`agent ${i}: self failed`);
    if (agent.identities.length !== settings.identities)
      throw new Error(`agent ${i} has ${agent.identities.length} identities, expected ${settings.identities}`);
  });
  const startSeconds = (Date.now() - startStarted) / 1000;
  const startAfter = await db.counters();
  const statementsPerSelf = startAfter.statements === undefined ? undefined : (startAfter.statements - startBefore.statements) / start.selfs;
  log(`${settings.agents} agents read their host in ${startSeconds.toFixed(1)} s`);

  // 4. Steady state: refreshes at half-life, evenly spread, open loop; self re-reads; all at the real rate.
  const pairs = settings.agents * settings.identities;
  const grantRate = pairs / (settings.tokenLifetimeSeconds / 2);
  const selfRate = settings.selfPollSeconds > 0 ? settings.agents / settings.selfPollSeconds : 0;
  const order = Array.from({ length: pairs }, (_, n) => n);
  for (let n = order.length - 1; n > 0; n--) {
    const m = Math.floor(Math.random() * (n + 1));
    [order[n], order[m]] = [order[m], order[n]];
  }
  const steady = tally();
  await sleep(2000); // let the start's audit settle
  await db.reset();
  const steadyBefore = { db: await db.counters(), replicas: sample(replicas), cpu: cpuNow(replicas), at: performance.now(), us: monotonicUs() };
  const inFlight = new Set();
  const fire = (promise) => {
    inFlight.add(promise);
    void promise.finally(() => inFlight.delete(promise));
  };
  let grantsFired = 0;
  let selfsFired = 0;
  let maxInFlight = 0;
  log(`steady state: ${grantRate.toFixed(1)} grants/s + ${selfRate.toFixed(1)} self/s for ${settings.steadySeconds} s`);
  while (performance.now() - steadyBefore.at < settings.steadySeconds * 1000) {
    const elapsed = (performance.now() - steadyBefore.at) / 1000;
    for (; grantsFired < Math.floor(elapsed * grantRate); grantsFired++) {
      const pair = order[grantsFired % pairs];
      const agent = agents[Math.floor(pair / settings.identities)];
      fire(attempt(steady, 'grant', () => agent.grant(pair % settings.identities)));
    }
    for (; selfsFired < Math.floor(elapsed * selfRate); selfsFired++) {
      const agent = agents[selfsFired % settings.agents];
      fire(attempt(steady, 'self', () => agent.self()));
    }
    maxInFlight = Math.max(maxInFlight, inFlight.size);
    await sleep(20);
  }
  const steadySeconds = (performance.now() - steadyBefore.at) / 1000;
  await Promise.all([...inFlight]);
  const steadyAfter = { db: await db.counters(), replicas: sample(replicas), cpu: cpuNow(replicas), at: performance.now(), us: monotonicUs() };
  const topStatements = await db.top();
  const minutes = steadySeconds / 60;
  const perAgentMinute = (n) => Number((n / settings.agents / minutes).toFixed(3));
  log(`steady state done: ${steady.grants} grants, ${steady.selfs} self`);

  // 5. The herd: every agent restarts at once.
  await db.reset();
  const herd = tally();
  const herdBefore = { db: await db.counters(), replicas: sample(replicas), cpu: cpuNow(replicas), us: monotonicUs() };
  const herdStarted = Date.now();
  const herdDeadline = herdStarted + settings.herdDeadlineSeconds * 1000;
  const doneAt = new Array(settings.agents).fill(undefined);
  let peakRss = {};
  const watcher = setInterval(() => {
    for (const r of replicas) peakRss[r.name] = Math.max(peakRss[r.name] ?? 0, memory(r.pid).rssMiB ?? 0);
  }, 500);
  log(`herd: ${settings.agents} agents restart at once`);
  for (const agent of agents) agent.restart();
  await Promise.all(
    agents.map(async (agent, i) => {
      if (!(await withRetry(herd, 'self', () => agent.self(), herdDeadline))) return;
      for (let k = 0; k < settings.identities; k++) if (!(await withRetry(herd, 'grant', () => agent.grant(k), herdDeadline))) return;
      doneAt[i] = Date.now() - herdStarted;
    }),
  );
  clearInterval(watcher);
  const herdSeconds = (Date.now() - herdStarted) / 1000;
  const herdAfter = { db: await db.counters(), replicas: sample(replicas), cpu: cpuNow(replicas), us: monotonicUs() };
  const recovered = doneAt.filter((t) => t !== undefined);
  log(`herd done: ${recovered.length}/${settings.agents} agents recovered in ${herdSeconds.toFixed(1)} s`);

  const report = {
    machine: { cpus: cpus().length, node: process.version, loadAverageAtEnd: loadavg().map((l) => Number(l.toFixed(2))) },
    settings: {
      ...settings,
      replicas: 2,
      store: 'postgresql',
      pgPoolPerReplica: 10,
      identityModel: `system-assigned + ${settings.identities - 1} user-assigned from a pool of ${needUserAssigned ? settings.userAssignedPool : 0}`,
    },
    setup: {
      seedSeconds: Number(seedSeconds.toFixed(1)),
      enrolSeconds: Number(enrolSeconds.toFixed(1)),
      enrolmentsPerSecond: Math.round(settings.agents / enrolSeconds),
      enrolMs: { p50: percentile(enrolTally.ms, 50), p99: percentile(enrolTally.ms, 99) },
      selfSeconds: Number(startSeconds.toFixed(1)),
      selfPerSecond: Math.round(start.selfs / startSeconds),
      selfMs: summarise(start.selfMs),
      selfFailures: start.failures,
    },
    steadyState: {
      seconds: Number(steadySeconds.toFixed(1)),
      targetGrantsPerSecond: Number(grantRate.toFixed(2)),
      issuancePerSecond: Number((steady.grants / steadySeconds).toFixed(2)),
      grantMs: summarise(steady.grantMs),
      selfPerSecond: Number((steady.selfs / steadySeconds).toFixed(2)),
      selfMs: summarise(steady.selfMs),
      failures: steady.failures,
      failureSamples: steady.samples,
      maxInFlight,
      postgres: {
        statementsPerAgentPerMinute:
          steadyAfter.db.statements === undefined ? undefined : perAgentMinute(steadyAfter.db.statements - steadyBefore.db.statements),
        dataStatementsPerAgentPerMinute:
          steadyAfter.db.dataStatements === undefined ? undefined : perAgentMinute(steadyAfter.db.dataStatements - steadyBefore.db.dataStatements),
        transactionsPerAgentPerMinute: perAgentMinute(steadyAfter.db.transactions - steadyBefore.db.transactions),
        statementsPerRequest:
          steadyAfter.db.statements === undefined
            ? undefined
            : Number(((steadyAfter.db.statements - steadyBefore.db.statements) / Math.max(1, steady.grants + steady.selfs)).toFixed(2)),
        // Split by kind: a `self` costs what it cost in the start phase (self calls only); grants the rest.
        statementsPerSelf: statementsPerSelf === undefined ? undefined : Number(statementsPerSelf.toFixed(2)),
        statementsPerGrant:
          statementsPerSelf === undefined || steady.grants === 0
            ? undefined
            : Number(((steadyAfter.db.statements - steadyBefore.db.statements - statementsPerSelf * steady.selfs) / steady.grants).toFixed(2)),
        topStatements,
      },
      cpu: cpuUse(steadyBefore.cpu, steadyAfter.cpu, steadySeconds, steady.grants + steady.selfs),
      replicas: steadyAfter.replicas,
      loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
    },
    herd: {
      agentsRecovered: recovered.length,
      recoverySeconds: recovered.length === settings.agents ? Number((Math.max(...recovered) / 1000).toFixed(1)) : null,
      agentRecoveredSeconds: {
        p50: Number(((percentile(recovered, 50) ?? 0) / 1000).toFixed(1)),
        p99: Number(((percentile(recovered, 99) ?? 0) / 1000).toFixed(1)),
      },
      issuancePerSecond: Math.round(herd.grants / herdSeconds),
      grants: herd.grants,
      selfCalls: herd.selfs,
      grantMs: summarise(herd.grantMs),
      selfMs: summarise(herd.selfMs),
      failures: herd.failures,
      failureSamples: herd.samples,
      postgresStatementsPerRequest:
        herdAfter.db.statements === undefined
          ? undefined
          : Number(((herdAfter.db.statements - herdBefore.db.statements) / Math.max(1, herd.grants + herd.selfs)).toFixed(2)),
      cpu: cpuUse(herdBefore.cpu, herdAfter.cpu, herdSeconds, herd.grants + herd.selfs),
      replicaPeakRssMiB: peakRss,
      replicas: herdAfter.replicas,
      loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
    },
    goals: {
      steadyP99Under100ms: (steady.grantMs.length > 0 && percentile(steady.grantMs, 99) < 100) || false,
      herdRecoveredWithin120s: recovered.length === settings.agents && Math.max(...recovered) <= 120_000,
    },
    totalSeconds: Math.round((Date.now() - startedAt) / 1000),
    // For profile-summary.mjs --from/--to: each phase's bounds on the profiles' clock (monotonic µs).
    phasesMonotonicUs: { steady: [steadyBefore.us, steadyAfter.us], herd: [herdBefore.us, herdAfter.us] },
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  if (env.FLEET_REPORT) writeFileSync(env.FLEET_REPORT, JSON.stringify(report, null, 2) + '\n');
} finally {
  for (const agent of agents) agent?.close();
  for (const r of replicas) {
    if (r.exitCode === null) {
      r.kill('SIGTERM');
      await Promise.race([new Promise((resolve) => r.once('exit', resolve)), sleep(15_000)]);
      if (r.exitCode === null) r.kill('SIGKILL');
    }
  }
  await db?.close().catch(() => undefined);
  if (postgres?.started) stopPostgres();
  if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
  if (profileDir !== undefined) log(`CPU profiles in ${profileDir}: ${readdirSafe(profileDir)}`);
}

function readdirSafe(dir) {
  try {
    return readdirSync(dir, { recursive: true }).join(', ');
  } catch {
    return '(none)';
  }
}
