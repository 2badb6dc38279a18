import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../helpers/authority.js';
import { repoRoot } from '../fixtures/child-process.js';

const run = promisify(execFile);

/**
 * The acceptance, with child processes: `npm start` (here with ports that are free on the test machine,
 * passed after `--`, and a temp data dir through OPENMSI_DATA_DIR), then in a second shell exactly
 * `eval "$(openmsi dev env)" && node examples/node/read-secret.js`, which prints the sample secret. The
 * second shell's environment is built from scratch (PATH with an `openmsi` on it, HOME), so only the eval line
 * configures the app; `*.localhost` does not resolve here, so the vault is reached through the dev proxy.
 */
describe('npm start, then eval "$(openmsi dev env)" in a second shell', () => {
  let root: string;
  let dataDir: string;
  let bin: string;
  let npmStart: ChildProcess;
  let output = '';

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'openmsi-npm-start-'));
    dataDir = join(root, 'data');
    bin = join(root, 'bin');
    mkdirSync(bin);
    // `openmsi` as `npm install` links it (node_modules/.bin/openmsi → dist/cli/main.js).
    writeFileSync(join(bin, 'openmsi'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(repoRoot, 'dist/cli/main.js'))} "$@"\n`);
    chmodSync(join(bin, 'openmsi'), 0o755);
    const ports = ['--port', String(await freePort()), '--agent-port', String(await freePort()), '--proxy-port', String(await freePort())];
    npmStart = spawn('npm', ['start', '--', ...ports], {
      cwd: repoRoot,
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', OPENMSI_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    npmStart.stdout?.on('data', (c: Buffer) => (output += c.toString('utf8')));
    npmStart.stderr?.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const deadline = Date.now() + 120_000;
    while (!output.includes('openmsi dev ready')) {
      if (npmStart.exitCode !== null) throw new Error(`npm start exited ${String(npmStart.exitCode)}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`npm start was not ready within 120 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  after(async () => {
    // npm runs node as a child: stop the whole group, as Ctrl-C in the terminal does.
    if (npmStart?.pid !== undefined && npmStart.exitCode === null) {
      const exited = new Promise((r) => npmStart.once('exit', r));
      process.kill(-npmStart.pid, 'SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('prints the sample secret', async () => {
    const { stdout } = await run('bash', ['-c', 'eval "$(openmsi dev env)" && node examples/node/read-secret.js'], {
      cwd: repoRoot,
      env: { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, HOME: process.env['HOME'] ?? '/tmp', OPENMSI_DATA_DIR: dataDir },
      timeout: 60_000,
    });
    assert.equal(stdout, 'Hello from the openmsi dev vault\n');
  });
});
