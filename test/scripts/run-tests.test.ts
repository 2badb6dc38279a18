import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT as ROOT } from '../support/paths.js';

void describe('scripts/run-tests.mjs', () => {
  void it('ends the TAP with a summary: counts, each failure, and each skip with its reason', async () => {
    // Without this, the nested `node --test` would report to this run instead of printing its own TAP.
    const { NODE_TEST_CONTEXT: _context, ...env } = process.env;
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      execFile(
        process.execPath,
        [join(ROOT, 'scripts', 'run-tests.mjs'), 'test/support/summary-probe.ts'],
        { cwd: ROOT, env, timeout: 120_000 },
        (error, out, err) => {
          done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout: out, stderr: err });
        },
      );
    });
    assert.equal(code, 1, 'a failing test fails the run');
    const at = stdout.indexOf('# ---- summary ----');
    assert.ok(at > stdout.indexOf('# tests '), 'the summary comes after the TAP');
    const summary = stdout.slice(at);
    assert.match(summary, /^# passed 1, failed 1, skipped 2 and 1 suite \(4 tests in 2 suites, [\d.]+ s\)$/m);
    assert.match(summary, /^# failed:\n# {3}test\/support\/summary-probe\.ts: fails \(Expected values to be strictly equal:\)$/m);
    assert.match(summary, /^# {3}test\/support\/summary-probe\.ts: skips \(no PostgreSQL: OPENMSI_TEST_POSTGRES_URL is not set\)$/m);
    assert.match(summary, /^# {3}test\/support\/summary-probe\.ts: skips bare \(no reason given\)$/m);
    assert.match(summary, /^# {3}suite test\/support\/summary-probe\.ts: skipped suite \(whole suite off\)$/m);
    assert.match(
      summary,
      /^# 1 file: 1 one at a time, then 0 alone; slowest first:\n# +[\d.]+ s {2}test\/support\/summary-probe\.ts$/m,
      'each file with its time',
    );
    assert.doesNotMatch(stdout + stderr, /Warning/, 'no warnings');
  });
});
