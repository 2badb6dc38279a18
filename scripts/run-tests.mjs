#!/usr/bin/env node
// Runs the test suite: every `*.test.ts` under test/ (sorted). Node 20 does not expand test globs, so the file
// list is built here.
//
//   node scripts/run-tests.mjs                      all tests
//   node scripts/run-tests.mjs test/store           tests under a directory
//   node scripts/run-tests.mjs test/store/sqlite.test.ts
//   node scripts/run-tests.mjs durability           tests whose path contains a substring
//
// Files run two at a time (OPENMSI_TEST_JOBS=<n> to change that; 1 runs them one at a time), then the few files
// in SERIAL below run alone. Each file runs in its own `node --import tsx <file>` process (with node:test's
// reporters), fed from a queue by this script, rather than in one `node --test --test-concurrency=2` process: with one process per file this
// script knows each file's wall time (start-up included, which node:test's events do not carry), prints each
// file's TAP whole rather than interleaved, and can run the serial pass after the parallel one and start the
// slowest files first, so the two lanes finish together.
//
// Prints each file's TAP as the file ends, then a short summary (passed, failed, skipped with each skip's
// reason, and the slowest files with their times) merged from what scripts/test-summary-reporter.mjs
// collected for each file. Exits 1 when any file failed.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const testRoot = join(root, 'test');

/**
 * Files that run alone, after the parallel pass, and why: they cannot share the machine's two cores with
 * another test file.
 */
const SERIAL = new Map([
  // Drives the real az CLI, Python and Node SDK clients against agents, each client a CPU-heavy process start
  // under its own timeout (the file alone keeps both cores busy), and its Azure Arc case uses the one
  // machine-wide challenge directory those clients read, /var/opt/azcmagent/tokens.
  ['test/clients/agent/real-clients.test.ts', 'real az/Python clients; the machine-wide Arc token directory'],
]);

/**
 * Files that start first in the parallel pass: the slowest ones, so that no lane ends with a long file started
 * last while the other lane is idle. Only an ordering hint (measured with this script's timings): a file
 * missing here still runs.
 */
const SLOW_FIRST = [
  'test/cli/keyvault-key.test.ts',
  'test/cli/keyvault.test.ts',
  'test/clients/az.test.ts',
  'test/clients/az-interactive.test.ts',
  'test/clients/sdk/outbound-federation.test.ts',
  'test/e2e/examples/examples.test.ts',
  'test/clients/vault/keys-sdk.test.ts',
  'test/e2e/dev.test.ts',
  'test/clients/vault/real-clients.test.ts',
  'test/e2e/docs/quickstart.test.ts',
  'test/authority/federation/federated-grant.test.ts',
  'test/cli/cli.test.ts',
  'test/clients/vault/keys-python.test.ts',
  'test/rbac/store/cli.test.ts',
  'test/clients/agent/operations.test.ts',
  'test/cli/start.test.ts',
  'test/authority/hosts/cli.test.ts',
  'test/server/health.test.ts',
  'test/cli/backup.test.ts',
  'test/server/replica-failover.test.ts',
  'test/server/replica-invariants.test.ts',
  'test/authority/audit-durability.test.ts',
];

/** Every `*.test.ts` under `dir`, as paths relative to the repository root with `/` separators. */
function findTests(dir) {
  const out = [];
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && entry.name.endsWith('.test.ts')) out.push(relative(root, path).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

const all = findTests(testRoot);
const filters = process.argv.slice(2);
let files;
if (filters.length === 0) {
  files = all;
} else {
  const chosen = new Set();
  for (const filter of filters) {
    const abs = resolve(process.cwd(), filter);
    let stat;
    try {
      stat = statSync(abs);
    } catch {
      stat = undefined;
    }
    let matched;
    if (stat?.isDirectory()) matched = findTests(abs);
    else if (stat?.isFile()) matched = [relative(root, abs).split(sep).join('/')];
    else matched = all.filter((f) => f.includes(filter));
    if (matched.length === 0) {
      console.error(`run-tests: no test files match ${JSON.stringify(filter)}`);
      process.exit(1);
    }
    for (const f of matched) chosen.add(f);
  }
  files = [...chosen].sort();
}

if (files.length === 0) {
  console.error('run-tests: no *.test.ts files under test/');
  process.exit(1);
}

const jobsText = process.env['OPENMSI_TEST_JOBS'] ?? '2';
const jobs = Number(jobsText);
if (!Number.isInteger(jobs) || jobs < 1 || jobs > 16) {
  console.error(`run-tests: OPENMSI_TEST_JOBS must be a whole number from 1 to 16 (got ${JSON.stringify(jobsText)})`);
  process.exit(1);
}

// The CLI helper (test/support/agent-process.ts) runs the built CLI, as `npm install` links it: bring dist/ up
// to date first (incremental: nothing to do when no source changed).
const build = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  console.error('run-tests: the build failed (tsc -b tsconfig.build.json)');
  process.exit(1);
}
// As `npm run build` leaves it: the bin is executable (test/cli checks it, as `npx openmsi` needs it).
chmodSync(join(root, 'dist', 'cli', 'main.js'), 0o755);

const rank = (f) => {
  const i = SLOW_FIRST.indexOf(f);
  return i === -1 ? SLOW_FIRST.length : i;
};
const parallel = files.filter((f) => !SERIAL.has(f)).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1));
const serial = files.filter((f) => SERIAL.has(f));

/**
 * The temp dir the test files get (`TMPDIR`): a folder on a RAM disk (`/dev/shm`) when there is one that can hold
 * executables, else the usual one. Every test authority's data dir, SQLite store and audit spool is made there,
 * and the store syncs each commit to disk (WAL, synchronous=FULL): on ext4 those waits were a third of a
 * store-heavy file's wall time, with both cores idle. Nothing a test checks depends on the disk: the kill -9
 * tests kill processes, not the machine, and a killed process's acknowledged writes are in the page cache either
 * way. `OPENMSI_TEST_TMPDIR` names another folder; `OPENMSI_TEST_TMPDIR=` (empty) keeps the usual one. The folder
 * is fixed, not per run, so runs side by side share the port reservations made under it and tsx's cache stays warm.
 */
function testTmpDir() {
  const chosen = process.env['OPENMSI_TEST_TMPDIR'];
  if (chosen !== undefined) return chosen === '' ? undefined : chosen;
  const dir = join('/dev/shm', `openmsi-tests-${String(process.getuid?.() ?? 0)}`);
  try {
    accessSync('/dev/shm', constants.W_OK);
    // Like /tmp (sticky, everyone may write): some tests run a child as another user (`nobody`), whose tsx
    // keeps its cache in TMPDIR too.
    mkdirSync(dir, { recursive: true });
    if (statSync(dir).uid === process.getuid?.()) chmodSync(dir, 0o1777);
    // Some systems mount /dev/shm noexec; tests put shims (an `openmsi` on PATH) in the temp dir.
    const probe = join(dir, `exec-probe-${String(process.pid)}`);
    writeFileSync(probe, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const ran = spawnSync(probe);
    rmSync(probe, { force: true });
    return ran.status === 0 ? dir : undefined;
  } catch {
    return undefined;
  }
}
const testTmp = testTmpDir();
const childEnv = {
  ...process.env,
  ...(testTmp === undefined ? {} : { TMPDIR: testTmp }),
  // Port reservations (test/support/authority.ts freePort) stay where files run without this script look too.
  OPENMSI_TEST_PORTS_DIR: process.env['OPENMSI_TEST_PORTS_DIR'] ?? join(tmpdir(), 'openmsi-test-ports'),
};

const summaryDir = mkdtempSync(join(tmpdir(), 'openmsi-test-summary-'));
/** @type {Set<import('node:child_process').ChildProcess>} */
const running = new Set();
let stopping = false;
/** @type {{ file: string, seconds: number, code: number | null, signal: string | null, summary: any, warnings: string[] }[]} */
const results = [];

/** Runs one test file in its own node process; prints its TAP (and anything it wrote to stderr) when it ends. */
function runFile(file, index) {
  const summaryFile = join(summaryDir, `${String(index)}.json`);
  // The file runs directly (no `--test`: that would put one more node process between this script and the
  // file, half a second each); node:test reports through the same reporters either way.
  const args = [
    // node:test's mock timers (test/shared/token-verifier.test.ts mocks jose's Date.now) are experimental in Node
    // 20 and used knowingly; every other warning (deprecations above all) stays on and is named in the summary.
    '--disable-warning=ExperimentalWarning',
    '--import',
    'tsx',
    '--test-reporter=tap',
    '--test-reporter-destination=stdout',
    `--test-reporter=${join(root, 'scripts', 'test-summary-reporter.mjs')}`,
    `--test-reporter-destination=${summaryFile}`,
    file,
  ];
  const started = performance.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, args, { cwd: root, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    const out = [];
    const err = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    const finish = (code, signal, spawnError) => {
      running.delete(child);
      const seconds = (performance.now() - started) / 1000;
      process.stdout.write(`# ---- ${file} (${seconds.toFixed(1)} s) ----\n`);
      process.stdout.write(Buffer.concat(out));
      const stderr = Buffer.concat(err).toString('utf8');
      if (stderr !== '') process.stderr.write(`# ---- ${file}: stderr ----\n${stderr}`);
      if (spawnError !== undefined) process.stderr.write(`run-tests: could not start node for ${file}: ${spawnError.message}\n`);
      let summary;
      try {
        summary = JSON.parse(readFileSync(summaryFile, 'utf8'));
      } catch {
        summary = undefined; // the file's run ended before the reporter finished; its TAP says what happened
      }
      // Node's process warnings (deprecations, experimental APIs): named in the summary, so none goes unseen.
      const warnings = [
        ...new Set(
          stderr
            .split('\n')
            .filter((l) => /^\(node:\d+\) (\[\w+\] )?\w*Warning: /.test(l))
            .map((l) => l.replace(/^\(node:\d+\) /, '')),
        ),
      ];
      results.push({ file, seconds, code, signal, summary, warnings });
      done();
    };
    child.once('error', (e) => finish(null, null, e));
    child.once('close', (code, signal) => finish(code, signal, undefined));
  });
}

/** Runs `queue` with `lanes` files at a time. */
async function runQueue(queue, lanes, offset) {
  let next = 0;
  const lane = async () => {
    while (!stopping && next < queue.length) {
      const i = next++;
      await runFile(queue[i], offset + i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(lanes, queue.length) }, lane));
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stopping = true;
    for (const child of running) child.kill(signal);
  });
}

const tmpNote = process.env['OPENMSI_TEST_TMPDIR'] === '' ? 'OPENMSI_TEST_TMPDIR is empty' : 'no usable RAM disk';
process.stdout.write(`# temp dir for the test files: ${testTmp ?? `${tmpdir()} (${tmpNote})`}\n`);
const startedAll = performance.now();
await runQueue(parallel, jobs, 0);
await runQueue(serial, 1, parallel.length);
const wall = (performance.now() - startedAll) / 1000;
rmSync(summaryDir, { recursive: true, force: true });

// ---- the summary, merged over the files ----
const totals = { tests: 0, suites: 0, pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
const failed = [];
const skipped = [];
for (const r of results.sort((a, b) => (a.file < b.file ? -1 : 1))) {
  for (const key of Object.keys(totals)) totals[key] += r.summary?.totals?.[key] ?? 0;
  failed.push(...(r.summary?.failed ?? []));
  skipped.push(...(r.summary?.skipped ?? []));
  // A file can fail without a failing test: it crashed, was killed, or its reporter never finished.
  const ok = r.code === 0 && r.signal === null;
  if (!ok && (r.summary?.failed ?? []).length === 0) {
    failed.push(`${r.file} (the file's run ${r.signal === null ? `exited with code ${String(r.code)}` : `was ended by ${r.signal}`} without a failing test)`);
    totals.fail += 1;
  }
}
let out = '\n# ---- summary ----\n';
out += `# passed ${String(totals.pass)}, failed ${String(totals.fail)}, skipped ${String(totals.skipped)}`;
// node:test counts a skipped suite among the suites, not the skipped tests; count it too, so every skip listed
// below is counted above.
const skippedSuites = skipped.filter((s) => s.startsWith('suite ')).length;
if (skippedSuites > 0) out += ` and ${skippedSuites === 1 ? '1 suite' : `${String(skippedSuites)} suites`}`;
if (totals.cancelled) out += `, cancelled ${String(totals.cancelled)}`;
if (totals.todo) out += `, todo ${String(totals.todo)}`;
out += ` (${String(totals.tests)} tests in ${String(totals.suites)} suites, ${wall.toFixed(1)} s)\n`;
if (failed.length > 0) out += `# failed:\n${failed.map((f) => `#   ${f}\n`).join('')}`;
if (skipped.length > 0) out += `# skipped:\n${skipped.map((s) => `#   ${s}\n`).join('')}`;
const warned = results.filter((r) => r.warnings.length > 0);
if (warned.length > 0) out += `# warnings (on stderr):\n${warned.flatMap((r) => r.warnings.map((w) => `#   ${r.file}: ${w}\n`)).join('')}`;
const slowest = [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 15);
const lanes = Math.min(jobs, parallel.length);
const count = (n, what) => `${String(n)} ${what}${n === 1 ? '' : 's'}`;
out += `# ${count(results.length, 'file')}: ${String(parallel.length)} ${lanes === 1 ? 'one at a time' : lanes === 2 ? 'two at a time' : `${String(lanes)} at a time`}, then ${String(serial.length)} alone`;
out += slowest.length < results.length ? `; the ${String(slowest.length)} slowest:\n` : '; slowest first:\n';
out += slowest.map((r) => `#   ${r.seconds.toFixed(1).padStart(6)} s  ${r.file}${SERIAL.has(r.file) ? ' (alone)' : ''}\n`).join('');
process.stdout.write(out);
if (stopping) {
  console.error('run-tests: stopped by a signal');
  process.exit(1);
}
process.exit(results.every((r) => r.code === 0 && r.signal === null) && totals.fail === 0 ? 0 : 1);
