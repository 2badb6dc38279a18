import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/authority.js';
import { initDataDir } from '../../src/authority/init.js';
import { dataDirLayout } from '../../src/shared/data-dir.js';
import { BUILT_MAIN } from '../support/cli.js';
import { REPO_ROOT as ROOT } from '../support/paths.js';

const ENV = { OPENMSI_MASTER_KEY: '', OPENMSI_STORE: '', OPENMSI_DATA_DIR: '', OPENMSI_LOG_LEVEL: '', OPENMSI_LOG_FORMAT: '' };

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [BUILT_MAIN, ...args], { cwd: ROOT, env: { ...process.env, ...ENV, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolvePromise({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

function occupy(port: number): Promise<Server> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolvePromise(server));
  });
}

/** Runs `openmsi authority ...` until it logs that it is ready, then stops it with SIGTERM; resolves to its exit code. */
function startAndStop(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BUILT_MAIN, 'authority', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let stopping = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the authority did not start: ${stderr}`));
    }, 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      if (!stopping && stdout.includes('openmsi server ready')) {
        stopping = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout });
    });
  });
}

void describe('starting the authority', { timeout: 180_000 }, () => {
  void it('on a taken port says which address and how to pick another; --init leaves nothing, and the retry starts', async () => {
    const root = mkdtempSync(join(tmpdir(), 'openmsi-start-'));
    const dataDir = join(root, 'data');
    const port = await freePort();
    let blocker = await occupy(port);
    try {
      const failed = await run(['authority', '--init', '--data-dir', dataDir, '--port', String(port)]);
      assert.equal(failed.code, 1);
      assert.match(failed.stderr, new RegExp(`^error: cannot listen on 127\\.0\\.0\\.1:${String(port)}: the address is already in use`));
      assert.match(failed.stderr, /openmsi authority --port <port>/);
      assert.match(failed.stderr, /edit "port" in the data dir's config\.json \(and the port in "publicUrl", if one is set\)/);
      assert.doesNotMatch(failed.stderr, /EADDRINUSE|\n\s+at /);
      assert.equal(existsSync(dataDir), false, '--init left a data dir behind');

      await new Promise((r) => blocker.close(r));
      const started = await startAndStop(['--init', '--data-dir', dataDir, '--port', String(port), '--log-format', 'json']);
      assert.equal(started.code, 0, started.stdout);
      assert.ok(existsSync(dataDirLayout(dataDir).config));
      // JSON lines, as --log-format asked.
      for (const line of started.stdout.trim().split('\n')) assert.equal(typeof (JSON.parse(line) as { msg: string }).msg, 'string');

      // An initialised data dir: the message names its config.json, and the data dir stays.
      blocker = await occupy(port);
      const again = await run(['authority', '--data-dir', dataDir]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${String(port)}: the address is already in use`));
      assert.ok(again.stderr.includes(`in ${dataDirLayout(dataDir).config}`), again.stderr);
      assert.ok(existsSync(dataDirLayout(dataDir).config));
    } finally {
      blocker.close();
      rmSync(root, { recursive: true, force: true });
    }
  });

  void it('names the data-dir file at fault and says what to do', async () => {
    const root = mkdtempSync(join(tmpdir(), 'openmsi-start-'));
    try {
      const pristine = join(root, 'pristine');
      await initDataDir({ dataDir: pristine, port: await freePort(), env: { ...process.env, ...ENV } });
      const broken = (name: string, breakIt: (layout: ReturnType<typeof dataDirLayout>) => void): string => {
        const dir = join(root, name);
        cpSync(pristine, dir, { recursive: true });
        breakIt(dataDirLayout(dir));
        return dir;
      };
      const expectError = async (args: string[], path: string, todo: RegExp, env: NodeJS.ProcessEnv = {}) => {
        const result = await run(args, env);
        assert.equal(result.code, 1, result.stdout);
        assert.ok(result.stderr.startsWith('error: '), result.stderr);
        assert.ok(result.stderr.includes(path), `${result.stderr} does not name ${path}`);
        assert.match(result.stderr, todo);
        assert.doesNotMatch(result.stderr, /\n\s+at /);
      };

      const badConfig = broken('config', (l) => writeFileSync(l.config, '{ version: 1 }'));
      for (const args of [['authority'], ['group', 'list']]) {
        await expectError(
          [...args, '--data-dir', badConfig],
          dataDirLayout(badConfig).config,
          /is not valid JSON .*Fix it by hand .*or restore it from a backup/,
        );
      }
      const badStore = broken('store', (l) => writeFileSync(l.sqlite, 'this is not a database, it is only text and more text '.repeat(4)));
      await expectError(
        ['authority', '--data-dir', badStore],
        dataDirLayout(badStore).sqlite,
        /file is not a database\): stop every openmsi process using it and restore it from a backup/,
      );
      const otherKey = Buffer.alloc(32, 7).toString('base64');
      await expectError(
        ['authority', '--data-dir', pristine],
        dataDirLayout(pristine).serverKey,
        /cannot be decrypted with this master key.*Use the data dir's own master\.key/,
        { OPENMSI_MASTER_KEY: otherKey },
      );
      const openKey = broken('key', (l) => chmodSync(l.masterKey, 0o644));
      await expectError(['authority', '--data-dir', openKey], dataDirLayout(openKey).masterKey, /chmod 600/);
      const cutKey = broken('cut-key', (l) => writeFileSync(l.masterKey, 'AAAA\n'));
      await expectError(
        ['authority', '--data-dir', cutKey],
        dataDirLayout(cutKey).masterKey,
        /must decode to exactly 32 bytes \(got 3\); it was changed or truncated: restore .* from a backup/,
      );
      const noCa = broken('ca', (l) => rmSync(l.caCert));
      await expectError(['authority', '--data-dir', noCa], dataDirLayout(noCa).caCert, /is missing .*restore it from a backup/);
      const badAdmin = broken('admin', (l) => writeFileSync(l.adminCredential, 'nope'));
      await expectError(['group', 'list', '--data-dir', badAdmin], dataDirLayout(badAdmin).adminCredential, /is not valid JSON; restore it from a backup/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
