// Run by test/scripts/run-tests.test.ts (not collected by the runner itself): one pass, three skips, one failure.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
void describe('probe', () => {
  void it('passes', () => assert.ok(true));
  void it('skips', { skip: 'no PostgreSQL: OPENMSI_TEST_POSTGRES_URL is not set' }, () => undefined);
  void it('skips bare', { skip: true }, () => undefined);
  void it('fails', () => assert.equal(1, 2));
});
void describe('skipped suite', { skip: 'whole suite off' }, () => {
  void it('x', () => undefined);
});
