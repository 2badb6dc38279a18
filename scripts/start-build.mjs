#!/usr/bin/env node
// `npm start`'s build step, then the package.json script `exec`s `openmsi dev` (so npm start's pid is the
// server's parent and stopping npm start stops it). Says what it is doing, because the first build takes a
// while: `tsc -b` compiles src/ into dist/ (about 20–30 s the first time on a laptop), later runs recompile only
// what changed (a few seconds).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const first = !existsSync(new URL('../dist/cli/main.js', import.meta.url));
process.stderr.write(
  first
    ? 'npm start: building dist/ from the TypeScript sources (first run: about 20–30 s; later runs rebuild only what changed)…\n'
    : 'npm start: checking dist/ is up to date with the sources (tsc -b rebuilds only what changed)…\n',
);
const started = Date.now();
const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
if (build.error !== undefined) {
  process.stderr.write(`npm start: cannot run \`npm run build\`: ${build.error.message}\n`);
  process.exit(1);
}
if (build.status !== 0) {
  process.stderr.write(`npm start: the build failed (exit ${String(build.status ?? build.signal)}); see the compiler's messages above\n`);
  process.exit(build.status ?? 1);
}
process.stderr.write(`npm start: dist/ is ready (${((Date.now() - started) / 1000).toFixed(1)} s); starting openmsi dev\n`);
