#!/usr/bin/env node
// Summarises V8 CPU profiles (`node --cpu-prof`, e.g. the replicas of `FLEET_CPU_PROF=DIR npm run bench:fleet`):
// self time by area (openmsi's own modules by folder, each dependency, Node internals, native/GC/idle) and the
// functions with the most self time.
//
//   node bench/fleet/profile-summary.mjs DIR/replicaA/*.cpuprofile [--top 25] [--from US --to US]
//
// --from/--to keep only the samples in that window of the profile's clock (CLOCK_MONOTONIC, µs): the run's report
// gives each phase's bounds (`phasesMonotonicUs`).
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  if (i === -1) return fallback;
  const value = Number(args[i + 1]);
  args.splice(i, 2);
  return value;
};
const top = option('--top', 25);
const from = option('--from', -Infinity);
const to = option('--to', Infinity);
const files = args;
if (files.length === 0) {
  process.stderr.write('usage: profile-summary.mjs FILE.cpuprofile... [--top N]\n');
  process.exit(2);
}

/** Where a frame's code lives: `openmsi/<folder>`, a package name, `node:<module>`, or a V8 pseudo-frame. */
function area(frame) {
  const url = frame.url;
  if (url === '') return `(${frame.functionName || 'native'})`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const own = /\/dist\/([^/]+)\//.exec(url);
  if (own) return `openmsi/${own[1]}`;
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:').split('/')[0];
  return url;
}

const byArea = new Map();
const byFunction = new Map();
let total = 0;
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  // timeDeltas[i] is the time before samples[i]; attribute it to that sample's node.
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at >= from && at <= to) selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  });
  for (const [id, us] of selfUs) {
    const frame = nodes.get(id).callFrame;
    total += us;
    const a = area(frame);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
    const where = frame.url === '' ? '' : ` ${frame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${frame.lineNumber + 1}`;
    const name = `${frame.functionName || '(anonymous)'}${where}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  }
}

const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
const busy = total - (byArea.get('(idle)') ?? 0);
process.stdout.write(`${files.length} profile(s), ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s not idle\n\nSelf time by area:\n`);
for (const [a, us] of [...byArea].sort((x, y) => y[1] - x[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${a}\n`);
process.stdout.write('\nFunctions with the most self time:\n');
for (const [f, us] of [...byFunction].sort((x, y) => y[1] - x[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${f}\n`);
