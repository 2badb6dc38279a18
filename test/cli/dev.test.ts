/**
 * `openmsi dev` helpers that need no running stack: `dev reset` (what it deletes), the data dir under sudo
 * (`sudo openmsi dev trust|hosts`), and `openmsi --help` leading with `dev`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/child-process.js';
import { dataDirUnderSudo } from '../../src/cli/commands/dev.js';
import { BUILT_MAIN } from '../support/cli.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI with only PATH, HOME and `env`: no OPENMSI_* or SUDO_* from the runner; stdin is not a terminal. */
function openmsi(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BUILT_MAIN, ...args],
      { cwd: repoRoot, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
    );
  });
}

describe('openmsi dev reset', () => {
  let root: string;
  let dataDir: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'openmsi-reset-'));
    dataDir = join(root, 'data');
    for (const dir of ['ca', 'store', 'agent']) mkdirSync(join(dataDir, dir), { recursive: true });
    writeFileSync(join(dataDir, 'config.json'), '{}');
    writeFileSync(join(dataDir, 'notes.txt'), 'mine');
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const listing = (dir: string): RegExp =>
    new RegExp(
      `${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} and everything in it:\\n` +
        "  agent +this machine's agent: host credential and agent secrets\\n" +
        '  ca +the dev CA .*\\n' +
        '  config.json +the installation settings .*\\n' +
        '  notes.txt +not made by openmsi\\n' +
        '  store +the store: tenant, identities, role assignments, vault dev and every secret in it, signing keys, audit trail\\n',
    );

  it('names the directory and what each entry holds before asking, and without a terminal deletes nothing without --yes', async () => {
    const out = await openmsi(['--data-dir', dataDir, 'dev', 'reset'], { HOME: root });
    assert.equal(out.code, 1);
    assert.match(out.stderr, /^openmsi dev reset deletes /);
    assert.match(out.stderr, listing(dataDir));
    assert.match(out.stderr, /error: refusing to delete .* without confirmation: pass --yes/);
    assert.ok(existsSync(join(dataDir, 'notes.txt')), 'nothing deleted');
  });

  it('with --yes, deletes it and says what it deleted', async () => {
    const out = await openmsi(['--data-dir', dataDir, 'dev', 'reset', '--yes'], { HOME: root });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, new RegExp(`^deleted ${listing(dataDir).source}`));
    assert.ok(!existsSync(dataDir));
  });
});

describe('the data dir under sudo (dev trust, dev hosts)', () => {
  const home = (user: string): string | undefined => (user === 'alice' ? '/home/alice' : undefined);

  it("is the invoking user's ~/.openmsi when SUDO_USER is set and nothing names one, with a note saying so", () => {
    assert.deepEqual(dataDirUnderSudo(undefined, { SUDO_USER: 'alice', HOME: '/root' }, home, 'root'), {
      dataDir: '/home/alice/.openmsi',
      note: 'using /home/alice/.openmsi, the data dir of alice (who ran sudo); pass --data-dir for another',
    });
  });

  it('is the usual one with --data-dir, OPENMSI_DATA_DIR, without sudo, or when sudo ran as the same user', () => {
    assert.deepEqual(dataDirUnderSudo('/srv/o', { SUDO_USER: 'alice' }, home, 'root'), { dataDir: '/srv/o' });
    assert.deepEqual(dataDirUnderSudo(undefined, { SUDO_USER: 'alice', OPENMSI_DATA_DIR: '/srv/env' }, home, 'root'), { dataDir: '/srv/env' });
    assert.equal(dataDirUnderSudo(undefined, { HOME: '/root' }, home, 'root').note, undefined);
    assert.equal(dataDirUnderSudo(undefined, { SUDO_USER: 'root' }, home, 'root').note, undefined);
  });

  it("refuses, naming the flag, when the invoking user's home cannot be found", () => {
    assert.throws(
      () => dataDirUnderSudo(undefined, { SUDO_USER: 'ghost' }, home, 'root'),
      /run with sudo by ghost, .*pass the data dir, e\.g\. --data-dir ~ghost\/\.openmsi/,
    );
  });

  it('the commands use it: from the passwd database, with the note on stderr', async () => {
    const root = mkdtempSync(join(tmpdir(), 'openmsi-sudo-'));
    try {
      // nobody's home is /nonexistent on Debian and most distributions: whatever it is, the command looks there.
      const sudoUser = userInfo().username === 'nobody' ? 'root' : 'nobody';
      const trust = await openmsi(['dev', 'trust', '--dry-run'], { HOME: root, SUDO_USER: sudoUser });
      assert.equal(trust.code, 1);
      const dir = /^using (\S+), the data dir of (\S+) \(who ran sudo\)/.exec(trust.stderr);
      assert.ok(dir !== null, trust.stderr);
      assert.equal(dir[2], sudoUser);
      assert.ok(!dir[1]!.startsWith(root), "not the HOME sudo gave (root's)");
      assert.ok(trust.stderr.includes(`error: no dev CA at ${join(dir[1]!, 'ca', 'ca.pem')}`), trust.stderr);

      const ghost = await openmsi(['dev', 'hosts'], { HOME: root, SUDO_USER: 'openmsi-no-such-user' });
      assert.equal(ghost.code, 1);
      assert.match(ghost.stderr, /^error: run with sudo by openmsi-no-such-user, .*--data-dir ~openmsi-no-such-user\/\.openmsi\n$/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('openmsi --help', () => {
  it('lists dev first', async () => {
    const out = await openmsi(['--help'], { HOME: tmpdir() });
    assert.equal(out.code, 0);
    const commands = out.stdout.slice(out.stdout.indexOf('Commands:\n') + 'Commands:\n'.length);
    assert.match(commands, /^ {2}dev \[options\] /);
    assert.match(out.stdout, /Examples:\n {2}openmsi dev /);
  });
});
