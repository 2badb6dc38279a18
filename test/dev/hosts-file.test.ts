import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyHostsEntries, HOSTS_BEGIN, HOSTS_END, planHostsEntries, removeHostsEntries } from '../../src/dev/hosts-file.js';

const SYSTEM = '127.0.0.1 localhost\n::1 localhost ip6-localhost\n# a comment the user wrote\n10.0.0.5 build-server\n';
const block = (...names: string[]) => [HOSTS_BEGIN, ...names.map((n) => `127.0.0.1 ${n}`), HOSTS_END].join('\n');

describe('planHostsEntries', () => {
  it('appends a marked block, one line per name, lowercased and deduplicated', () => {
    const plan = planHostsEntries(['KV1.vault.localhost', 'kv2.vault.localhost.', 'kv1.vault.localhost'], SYSTEM);
    assert.equal(plan.content, `${SYSTEM}${block('kv1.vault.localhost', 'kv2.vault.localhost')}\n`);
    assert.equal(plan.changed, true);
  });

  it('is idempotent and replaces an older block where it stood, leaving the rest byte for byte', () => {
    const once = planHostsEntries(['kv1.vault.localhost'], SYSTEM).content;
    assert.deepEqual(planHostsEntries(['kv1.vault.localhost'], once), { content: once, changed: false });
    const middle = `127.0.0.1 localhost\n${block('old.vault.localhost')}\n10.0.0.5 build-server\n`;
    assert.equal(planHostsEntries(['new.vault.localhost'], middle).content, `127.0.0.1 localhost\n${block('new.vault.localhost')}\n10.0.0.5 build-server\n`);
  });

  it('no names removes the block; no block and no names changes nothing (even without a final newline)', () => {
    const withBlock = `${SYSTEM}${block('kv1.vault.localhost')}\n`;
    assert.deepEqual(planHostsEntries([], withBlock), { content: SYSTEM, changed: true });
    assert.deepEqual(planHostsEntries([], '127.0.0.1 localhost'), { content: '127.0.0.1 localhost', changed: false });
  });

  it('keeps CRLF line endings and handles an empty file and a missing final newline', () => {
    assert.equal(
      planHostsEntries(['a.vault.localhost'], '127.0.0.1 localhost\r\n').content,
      `127.0.0.1 localhost\r\n${HOSTS_BEGIN}\r\n127.0.0.1 a.vault.localhost\r\n${HOSTS_END}\r\n`,
    );
    assert.equal(planHostsEntries(['a.vault.localhost'], '').content, `${block('a.vault.localhost')}\n`);
    assert.equal(planHostsEntries(['a.vault.localhost'], '127.0.0.1 localhost').content, `127.0.0.1 localhost\n${block('a.vault.localhost')}\n`);
  });

  it('refuses bad names and addresses, and damaged blocks naming the file and line', () => {
    for (const bad of ['', 'a b', 'evil\n0.0.0.0 bank.example', '-x.localhost', 'a..b', `${'a'.repeat(64)}.localhost`]) {
      assert.throws(() => planHostsEntries([bad], SYSTEM), /is not a host name/);
    }
    assert.throws(() => planHostsEntries(['a.localhost'], SYSTEM, { address: 'localhost' }), /not an IP address/);
    assert.throws(
      () => planHostsEntries(['a.localhost'], `x\n${HOSTS_BEGIN}\n127.0.0.1 a\n`, { file: '/etc/hosts' }),
      /\/etc\/hosts: line 2: "# openmsi dev begin" has no "# openmsi dev end"/,
    );
    assert.throws(() => planHostsEntries([], `${HOSTS_END}\n`, { file: '/etc/hosts' }), /line 1: "# openmsi dev end" without/);
    assert.throws(() => planHostsEntries([], `${HOSTS_BEGIN}\n${HOSTS_BEGIN}\n${HOSTS_END}\n`), /line 2: .* inside another openmsi block/);
  });

  it('takes out several blocks (say, from two older runs), keeping the first position', () => {
    const two = `a\n${block('x.localhost')}\nb\n${block('y.localhost')}\nc\n`;
    assert.equal(planHostsEntries(['z.localhost'], two).content, `a\n${block('z.localhost')}\nb\nc\n`);
  });
});

describe('applyHostsEntries / removeHostsEntries on temp files', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'openmsi-dev-hosts-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the block atomically keeping the mode, writes nothing when already there, removes it again', () => {
    const path = join(dir, 'hosts');
    writeFileSync(path, SYSTEM);
    chmodSync(path, 0o640);
    assert.equal(applyHostsEntries(path, ['kv1.vault.localhost', 'kv2.vault.localhost']).changed, true);
    assert.equal(readFileSync(path, 'utf8'), `${SYSTEM}${block('kv1.vault.localhost', 'kv2.vault.localhost')}\n`);
    assert.equal(statSync(path).mode & 0o777, 0o640);
    const inode = statSync(path).ino;
    assert.equal(applyHostsEntries(path, ['kv2.vault.localhost', 'kv1.vault.localhost']).changed, true, 'order is part of the content');
    const settled = statSync(path).ino;
    assert.notEqual(settled, inode, 'replaced by rename, not rewritten in place');
    assert.equal(applyHostsEntries(path, ['kv2.vault.localhost', 'kv1.vault.localhost']).changed, false);
    assert.equal(statSync(path).ino, settled, 'untouched when nothing changes');
    assert.deepEqual(removeHostsEntries(path), { content: SYSTEM, changed: true });
    assert.equal(readFileSync(path, 'utf8'), SYSTEM);
    assert.equal(removeHostsEntries(path).changed, false);
    assert.deepEqual(readdirSync(dir), ['hosts'], 'no temp file left');
  });

  it('names the file when it cannot be read', () => {
    assert.throws(() => applyHostsEntries(join(dir, 'missing'), ['a.localhost']), /cannot read .*missing/);
  });

  it('a damaged block leaves the file untouched', () => {
    const path = join(dir, 'damaged');
    writeFileSync(path, `${HOSTS_BEGIN}\n127.0.0.1 a.localhost\n`);
    assert.throws(() => applyHostsEntries(path, ['b.localhost']), /damaged: line 1/);
    assert.equal(readFileSync(path, 'utf8'), `${HOSTS_BEGIN}\n127.0.0.1 a.localhost\n`);
  });

  it('without permission: a clear error telling to rerun with sudo, file unchanged', () => {
    // Root ignores file modes, so when the tests run as root the write runs in a child as `nobody`.
    const locked = join(dir, 'locked');
    mkdirSync(locked, { mode: 0o755 });
    const path = join(locked, 'hosts');
    writeFileSync(path, SYSTEM, { mode: 0o644 });
    chmodSync(dir, 0o755);
    const moduleUrl = new URL('../../src/dev/hosts-file.ts', import.meta.url).href;
    const script = `import(${JSON.stringify(moduleUrl)}).then((m) => { try { m.applyHostsEntries(${JSON.stringify(path)}, ['a.vault.localhost']); console.log('written'); } catch (e) { console.log(e.message); } });`;
    const asRoot = process.getuid?.() === 0;
    if (!asRoot) chmodSync(locked, 0o555);
    const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: process.cwd(),
      encoding: 'utf8',
      env: { ...process.env, TSX_TSCONFIG_PATH: join(process.cwd(), 'tsconfig.json'), HOME: dir },
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    if (!asRoot) chmodSync(locked, 0o755);
    assert.match(
      child.stdout,
      new RegExp(`cannot write ${path.replace(/[/.]/g, '\\$&')}: EACCES; rerun with sudo \\(sudo openmsi dev hosts --apply\\)`),
      child.stderr,
    );
    assert.equal(readFileSync(path, 'utf8'), SYSTEM);
  });
});
