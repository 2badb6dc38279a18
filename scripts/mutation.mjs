#!/usr/bin/env node
// `npm run mutation [group ...]`: runs Stryker once per group of stryker.config.mjs (all groups when none is
// named), each with its own focused test list, then prints one line per group: mutants killed, survived, timed
// out and not covered, and the score. Reports: reports/mutation/{group}.html and .json.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { GROUPS } from '../stryker.config.mjs';

const asked = process.argv.slice(2);
for (const name of asked) {
  if (!(name in GROUPS)) {
    console.error(`mutation: unknown group ${JSON.stringify(name)}; groups: ${Object.keys(GROUPS).join(', ')}`);
    process.exit(2);
  }
}
const names = asked.length > 0 ? asked : Object.keys(GROUPS);
const rows = [];
let failed = false;
for (const name of names) {
  console.log(`\n==> mutation group ${name}: ${GROUPS[name].mutate.join(', ')}`);
  const run = spawnSync('npx', ['stryker', 'run'], { stdio: 'inherit', env: { ...process.env, OPENMSI_MUTATION_GROUP: name } });
  if (run.status !== 0) {
    failed = true;
    rows.push(`${name}: stryker exited ${run.status ?? run.signal}`);
    continue;
  }
  const report = JSON.parse(readFileSync(`reports/mutation/${name}.json`, 'utf8'));
  const count = {};
  for (const file of Object.values(report.files)) for (const m of file.mutants) count[m.status] = (count[m.status] ?? 0) + 1;
  const killed = (count.Killed ?? 0) + (count.Timeout ?? 0);
  const valid = killed + (count.Survived ?? 0) + (count.NoCoverage ?? 0);
  const score = valid === 0 ? 100 : (100 * killed) / valid;
  rows.push(
    `${name}: killed ${count.Killed ?? 0}, timed out ${count.Timeout ?? 0}, survived ${count.Survived ?? 0}, ` +
      `no coverage ${count.NoCoverage ?? 0}, score ${score.toFixed(1)}%`,
  );
}
console.log('\nmutation summary');
for (const row of rows) console.log(`  ${row}`);
process.exit(failed ? 1 : 0);
