import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, closeSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { runFixture } from '../support/child-process.js';
import { openPrivateFile, writePrivateFile, writePrivateFileAtomic } from '../../src/shared/private-files.js';
import { openStore } from '../../src/store/open.js';

/** Every file and folder under `root` (root excluded), with its permission bits. */
function modes(root: string): Array<[string, 'file' | 'dir', number]> {
  const out: Array<[string, 'file' | 'dir', number]> = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      out.push([relative(root, path), entry.isDirectory() ? 'dir' : 'file', statSync(path).mode & 0o777]);
      if (entry.isDirectory()) walk(path);
    }
  };
  walk(root);
  return out;
}

/** Issue 15, finding 8: every file openmsi writes is 0600 and every folder it creates 0700, whatever the umask. */
void describe('files at rest', () => {
  const roots: string[] = [];
  const freshRoot = (): string => {
    const root = mkdtempSync(join(tmpdir(), 'openmsi-modes-'));
    roots.push(root);
    return root;
  };
  after(() => {
    for (const root of roots) rmSync(root, { recursive: true, force: true });
  });

  void it('invariant: under umask 000 every file openmsi writes is 0600 and every folder 0700, the SQLite store outside the data dir and its -wal included', async () => {
    const root = freshRoot();
    const child = runFixture('umask-writers.ts', [root]);
    try {
      await child
        .waitForLine((line) => line.startsWith('{'), 60_000)
        .catch((err: unknown) => {
          throw new Error(`${(err as Error).message}\n${child.stderr()}`);
        });
      const found = modes(root);
      const names = found.map(([path]) => path);
      for (const expected of [
        'data/master.key',
        'data/config.json',
        'data/run/authority.json',
        'elsewhere/nested/store.db',
        'elsewhere/nested/store.db-wal',
        'agent/control.secret',
        'agent/host.json',
      ]) {
        assert.ok(
          names.some((n) => n === expected || n.endsWith(expected.split('/').pop()!)),
          `${expected} was written (${names.join(', ')})`,
        );
      }
      assert.ok(
        names.some((n) => n.startsWith('agent/audit-spool/') && n.endsWith('.jsonl')),
        'a spool segment was written',
      );
      assert.ok(
        names.some((n) => n.startsWith('arc/tokens/') && n.endsWith('.key')),
        'an Arc challenge was written',
      );
      const wrong = found.filter(([, kind, mode]) => mode !== (kind === 'dir' ? 0o700 : 0o600));
      assert.deepEqual(
        wrong.map(([p, k, m]) => `${p} (${k}) ${m.toString(8)}`),
        [],
      );
    } finally {
      child.child.stdin.end();
      await child.waitForExit(10_000).catch(() => child.stop());
    }
  });

  void it('invariant: a file that already existed with a wider mode is 0600 after openmsi writes it', () => {
    const root = freshRoot();
    for (const write of [
      (p: string) => writePrivateFile(p, 'x'),
      (p: string) => writePrivateFileAtomic(p, 'x'),
      (p: string) => closeSync(openPrivateFile(p, 'a')),
    ]) {
      const path = join(root, `f-${String(Math.random()).slice(2)}`);
      writeFileSync(path, 'old');
      chmodSync(path, 0o666);
      write(path);
      assert.equal(statSync(path).mode & 0o777, 0o600);
    }
  });

  void it('invariant: a SQLite store created 0644 before is 0600 once opened, with its -wal', async () => {
    const root = freshRoot();
    const path = join(root, 'old.db');
    const store = await openStore(path);
    await store.close();
    for (const companion of [path, `${path}-wal`]) {
      try {
        chmodSync(companion, 0o644);
      } catch {
        // no -wal after a clean close
      }
    }
    const reopened = await openStore(path);
    try {
      await reopened.authFailures.increment('k', 0, 1);
      for (const [name, , mode] of modes(root)) assert.equal(mode, 0o600, name);
    } finally {
      await reopened.close();
    }
  });
});
