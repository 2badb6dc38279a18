#!/usr/bin/env node
// Runs the test suite: every `*.test.ts` under test/ (sorted), in one `node --test` process, one file at a
// time. Node 20 does not expand test globs, so the file list is built here.
//
//   node scripts/run-tests.mjs                      all tests
//   node scripts/run-tests.mjs test/store           tests under a directory
//   node scripts/run-tests.mjs test/store/sqlite.test.ts
//   node scripts/run-tests.mjs durability           tests whose path contains a substring
//
// Prints the TAP stream, then a short summary (passed, failed, skipped with each skip's reason) that
// scripts/test-summary-reporter.mjs collects from the same run. Exits with the test run's exit code.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const testRoot = join(root, 'test');

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

// The CLI helper (test/helpers/agent-process.ts) runs the built CLI, as `npm install` links it: bring dist/ up
// to date first (incremental: nothing to do when no source changed).
const build = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  console.error('run-tests: the build failed (tsc -b tsconfig.build.json)');
  process.exit(1);
}

const summaryDir = mkdtempSync(join(tmpdir(), 'openmsi-test-summary-'));
const summaryFile = join(summaryDir, 'summary.txt');
const reporters = [
  '--test-reporter=tap',
  '--test-reporter-destination=stdout',
  `--test-reporter=${join(root, 'scripts', 'test-summary-reporter.mjs')}`,
  `--test-reporter-destination=${summaryFile}`,
];
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...reporters, ...files], { cwd: root, stdio: 'inherit' });

/** Prints the summary after the TAP (if the run got far enough to write one) and removes its file. */
function printSummary() {
  try {
    process.stdout.write(readFileSync(summaryFile, 'utf8'));
  } catch {
    // The run ended before the reporter finished; the TAP above says what happened.
  }
  rmSync(summaryDir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => child.kill(signal));
}
child.on('error', (err) => {
  rmSync(summaryDir, { recursive: true, force: true });
  console.error(`run-tests: could not start node: ${err.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  printSummary();
  if (signal) {
    console.error(`run-tests: test run ended by ${signal}`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});
