import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/paths.js';

describe('stryker.config.mjs', () => {
  it('names only modules and test files that exist (a moved test file would otherwise leave its group untested)', async () => {
    const { GROUPS } = (await import(join(REPO_ROOT, 'stryker.config.mjs'))) as { GROUPS: Record<string, { mutate: string[]; testFiles: string[] }> };
    const named = Object.entries(GROUPS).flatMap(([group, { mutate, testFiles }]) => [...mutate, ...testFiles].map((file) => ({ group, file })));
    assert.ok(named.length > 20, `expected the security groups, got ${String(named.length)} files`);
    assert.deepEqual(
      named.filter(({ file }) => !existsSync(join(REPO_ROOT, file))),
      [],
    );
  });
});
