import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../support/authority.js';
import { repoRoot } from '../support/child-process.js';
import { within } from '../support/poll.js';

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
    // Stop the whole group, as Ctrl-C in the terminal does (whatever is left of it, should a test have failed).
    if (npmStart?.pid !== undefined) {
      const exited = npmStart.exitCode === null ? new Promise((r) => npmStart.once('exit', r)) : Promise.resolve();
      try {
        process.kill(-npmStart.pid, 'SIGINT');
      } catch {
        // the group is gone
      }
      await within(exited, 15_000);
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

  it('says what it is doing while it builds', () => {
    assert.match(output, /^npm start: (building|checking) dist\//m);
  });

  it('stopping npm start by its pid (as CI steps, IDE stop buttons and systemd do) stops the server too', async () => {
    const record = JSON.parse(readFileSync(join(dataDir, 'run/dev.json'), 'utf8')) as { pid: number };
    const exited = new Promise<number | null>((r) => npmStart.once('exit', (code) => r(code)));
    process.kill(npmStart.pid!, 'SIGTERM'); // npm's pid only, not its process group
    if ((await within(exited, 20_000)) === 'timeout') throw new Error(`npm start did not exit within 20 s:\n${output}`);
    const deadline = Date.now() + 20_000;
    while (alive(record.pid)) {
      if (Date.now() > deadline)
        throw new Error(`openmsi dev (pid ${String(record.pid)}) still runs after npm start (pid ${String(npmStart.pid)}) stopped:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(!existsSync(join(dataDir, 'run/dev.json')), 'it stopped cleanly (its running record is removed)');
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
