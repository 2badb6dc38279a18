#!/usr/bin/env node
// Runs the test suite: every `*.test.ts` under test/ (sorted), in one `node --test` process, one file at a
// time. Node 20 does not expand test globs, so the file list is built here.
//
//   node scripts/run-tests.mjs                      all tests
//   node scripts/run-tests.mjs test/store           tests under a directory
//   node scripts/run-tests.mjs test/store/sqlite.test.ts
//   node scripts/run-tests.mjs durability           tests whose path contains a substring
//
// Exits with the test run's exit code.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
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

const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], { cwd: root, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => child.kill(signal));
}
child.on('error', (err) => {
  console.error(`run-tests: could not start node: ${err.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) {
    console.error(`run-tests: test run ended by ${signal}`);
    process.exit(1);
  }
  process.exit(code ?? 1);
});
