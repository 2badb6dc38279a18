import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startTestAuthority, type TestAuthority } from '../support/authority.js';
import { createTestHost, rawRequest, type TestHost } from '../support/world.js';
import { agentEnvironment } from '../../src/agent/environment.js';
import { formatEnvironment } from '../../src/dev/env.js';
import { REPO_ROOT as ROOT } from '../support/paths.js';
import { BUILT_MAIN as MAIN } from '../support/cli.js';

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

describe('openmsi agent env', () => {
  const dirs: string[] = [];
  const dir = (secret: string, port?: number) => {
    const d = mkdtempSync(join(tmpdir(), 'openmsi-agent-env-'));
    dirs.push(d);
    writeFileSync(join(d, 'identity-header.secret'), `${secret}\n`, { mode: 0o600 });
    if (port !== undefined) {
      mkdirSync(join(d, 'run'));
      writeFileSync(join(d, 'run', 'agent.json'), JSON.stringify({ url: `http://127.0.0.1:${String(port)}`, port, pid: 1, startedAt: '' }));
    }
    return d;
  };
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('--data-dir after `agent env` (or after `agent`, or before it) names the agent data dir; OPENMSI_DATA_DIR is not consulted', async () => {
    const mine = dir('secret-mine', 41111);
    const other = dir('secret-env', 42222);
    const env = { OPENMSI_DATA_DIR: other, OPENMSI_AGENT_DATA_DIR: other };
    for (const argv of [
      ['agent', 'env', '--data-dir', mine],
      ['agent', '--data-dir', mine, 'env'],
      ['--data-dir', mine, 'agent', 'env'],
    ]) {
      const r = await run(argv, env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stdout,
        "export IDENTITY_ENDPOINT='http://127.0.0.1:41111/msi/token'\nexport IDENTITY_HEADER='secret-mine'\nexport MSI_ENDPOINT='http://127.0.0.1:41111/oauth2/token'\nexport MSI_SECRET='secret-mine'\n",
        argv.join(' '),
      );
    }
    const fromEnv = await run(['agent', 'env', '--shell', 'dotenv'], { OPENMSI_AGENT_DATA_DIR: other, OPENMSI_DATA_DIR: mine });
    assert.equal(
      fromEnv.stdout,
      'IDENTITY_ENDPOINT=http://127.0.0.1:42222/msi/token\nIDENTITY_HEADER=secret-env\nMSI_ENDPOINT=http://127.0.0.1:42222/oauth2/token\nMSI_SECRET=secret-env\n',
    );
  });

  it('prints bash, fish, powershell and dotenv syntax, quoting safely; default port 50342', async () => {
    const vars = agentEnvironment(50342, "it's");
    assert.equal(formatEnvironment(vars, 'bash').split('\n')[1], `export IDENTITY_HEADER='it'\\''s'`);
    assert.equal(formatEnvironment(vars, 'fish').split('\n')[1], `set -gx IDENTITY_HEADER 'it\\'s';`);
    assert.equal(formatEnvironment(vars, 'powershell').split('\n')[1], `$env:IDENTITY_HEADER = 'it''s'`);
    const noRuntime = dir('abc');
    const r = await run(['agent', 'env', '--data-dir', noRuntime, '--shell', 'powershell']);
    assert.equal(r.stdout.split('\n')[0], "$env:IDENTITY_ENDPOINT = 'http://127.0.0.1:50342/msi/token'");
    const missing = await run(['agent', 'env', '--data-dir', join(noRuntime, 'nope')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /holds no agent secret yet/);
  });
});

describe('openmsi agent --authority', () => {
  it('refuses what is not an http(s) URL, naming it, before anything starts', async () => {
    for (const bad of ['authority.internal:8443', 'ftp://authority.internal/']) {
      const r = await run(['agent', '--authority', 'https://ok.internal:8443', '--authority', bad, '--data-dir', join(tmpdir(), 'openmsi-never-made')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /--authority/);
      assert.ok(r.stderr.includes(bad), r.stderr);
    }
  });
});

describe('openmsi agent (process)', () => {
  let t: TestAuthority;
  let host: TestHost;
  before(async () => {
    t = await startTestAuthority();
    host = await createTestHost(t);
  });
  after(async () => {
    await t.close();
    host.cleanup();
  });

  it('starts from a saved credential in --data-dir, listens on --port, writes a 0600 secret, refuses as documented, stops on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN, 'agent', '--data-dir', host.dataDir, '--port', String(port), '--log-format', 'json'], {
      cwd: ROOT,
      env: { ...process.env, OPENMSI_DATA_DIR: join(host.dataDir, 'not-this') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    try {
      const started = Date.now();
      while (!output.includes('agent listening') && Date.now() - started < 30_000 && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
      assert.match(output, /agent listening/, output);
      const secretFile = join(host.dataDir, 'identity-header.secret');
      assert.equal(statSync(secretFile).mode & 0o777, 0o600);
      const running = JSON.parse(readFileSync(join(host.dataDir, 'run', 'agent.json'), 'utf8'));
      assert.equal(running.port, port);
      assert.equal(running.url, `http://127.0.0.1:${String(port)}`);
      assert.ok(!existsSync(join(host.dataDir, 'not-this')));
      const r = await rawRequest(port, 'GET', '/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net', {});
      assert.equal(r.status, 400);
      assert.deepEqual(r.json(), { error: 'invalid_request', error_description: 'Required metadata header not specified' });
      const secret = readFileSync(secretFile, 'utf8').trim();
      assert.ok(!output.includes(secret), 'the secret is never logged');
    } finally {
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
  });
});
