import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNode, type FixtureProcess } from '../../support/child-process.js';
import { cliArgs } from '../../support/cli.js';
import { writeRunningAgent } from '../../../src/shared/running-agent.js';
import { exitStatus } from '../../../src/cli/commands/run.js';
import { agentDataDir } from '../../../src/shared/config.js';
import { homedir, tmpdir } from 'node:os';
import { harnessHost, startHarness, until, type Harness } from './harness.js';

const CHILD = fileURLToPath(new URL('./fixtures/session-child.mjs', import.meta.url));

interface ChildReport {
  pid: number;
  endpoint: string;
  secret: string;
  msiEndpoint: string;
  msiSecret: string;
  imds: string | null;
  argv: string[];
}

function openmsiRun(dataDir: string, identities: string[], command: string[], env: NodeJS.ProcessEnv = process.env): FixtureProcess {
  return runNode(cliArgs('run', ...identities.flatMap((i) => ['--identity', i]), '--data-dir', dataDir, '--', ...command), env);
}

async function started(run: FixtureProcess): Promise<{ report: ChildReport; token: { status: number; body: string } }> {
  const report = JSON.parse(await run.waitForLine((l) => l.startsWith('{"pid"'), 30_000)) as ChildReport;
  const token = JSON.parse(await run.waitForLine((l) => l.startsWith('{"status"'), 10_000)) as { status: number; body: string };
  return { report, token };
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

describe('openmsi run', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ host: harnessHost() });
  });
  after(async () => {
    await h.close();
  });

  it('gives CMD a secret that works while it runs, is in no argv, and is refused once CMD has exited', async () => {
    const run = openmsiRun(h.dataDir, ['app-id', '[system]'], [process.execPath, CHILD, 'plain-arg'], { ...process.env, IMDS_ENDPOINT: 'http://127.0.0.1:1' });
    try {
      const { report, token } = await started(run);
      assert.equal(report.endpoint, `${h.url}/msi/token`);
      assert.equal(report.msiEndpoint, report.endpoint);
      assert.equal(report.msiSecret, report.secret);
      assert.equal(report.imds, null, 'IMDS_ENDPOINT (Azure Arc detection) is not passed on');
      assert.deepEqual(report.argv, ['plain-arg']);
      assert.equal(token.status, 200, token.body);
      assert.deepEqual(JSON.parse(token.body).identities, ['app-id', '[system]']);
      assert.equal((await h.token(report.secret)).status, 200);
      for (const pid of [report.pid, run.child.pid!]) {
        assert.ok(!readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8').includes(report.secret), `secret in the argv of ${String(pid)}`);
      }
      for (const file of readdirSync(h.dataDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())) {
        assert.ok(!readFileSync(join(file.parentPath, file.name), 'utf8').includes(report.secret), `secret in ${file.name}`);
      }
      run.child.stdin.write('exit 7\n');
      const exit = await run.waitForExit(10_000);
      assert.equal(exit.code, 7);
      assert.equal(h.sessions.size, 0);
      assert.equal((await h.token(report.secret)).status, 401);
      assert.ok(!JSON.stringify(h.events).includes(report.secret), 'no secret in the audit events');
      const session = JSON.parse(token.body).session as string;
      // Attribution: the session was opened by the openmsi run process (pid, uid and exe from /proc, filled in the background).
      const opened = h.events.find((e) => e.session === session)!;
      if (process.platform === 'linux') {
        assert.equal(opened.caller.pid, run.child.pid, `CMD is ${String(report.pid)}; ${JSON.stringify(opened.caller)}`);
        assert.equal(opened.caller.uid, process.getuid!());
        assert.equal(opened.caller.exe, realpathSync(process.execPath));
      }
      assert.deepEqual(
        h.events.filter((e) => e.session === session).map((e) => e.reason ?? 'started'),
        ['started', 'session_ended'],
      );
    } finally {
      await run.stop();
    }
  });

  it('forwards SIGTERM and exits 128 + signal when CMD dies of it', async () => {
    const run = openmsiRun(h.dataDir, ['app-id'], [process.execPath, CHILD]);
    try {
      const { report } = await started(run);
      run.child.kill('SIGTERM');
      const exit = await run.waitForExit(10_000);
      assert.equal(exit.code, 143);
      assert.equal((await h.token(report.secret)).status, 401);
    } finally {
      await run.stop();
    }
  });

  it('revokes the session when the openmsi run process is killed with -9', async () => {
    const run = openmsiRun(h.dataDir, ['app-id'], [process.execPath, CHILD]);
    let orphan: number | undefined;
    try {
      const { report } = await started(run);
      orphan = report.pid;
      assert.equal((await h.token(report.secret)).status, 200);
      process.kill(run.child.pid!, 'SIGKILL');
      await until(() => h.sessions.size === 0, 5000, 'the session to be revoked');
      assert.equal((await h.token(report.secret)).status, 401);
    } finally {
      // CMD outlives a killed openmsi run (it holds our pipes); end it so the run process can close.
      if (orphan !== undefined) killQuietly(orphan);
      await run.stop();
    }
  });

  it('says why when there is no agent, the control secret is wrong, or CMD does not exist', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'openmsi-agent-none-'));
    try {
      const none = openmsiRun(empty, ['app-id'], [process.execPath, CHILD]);
      assert.equal((await none.waitForExit(30_000)).code, 1);
      assert.match(none.stderr(), /no agent is running from/);

      writeRunningAgent(empty, h.port);
      writeFileSync(join(empty, 'control.secret'), 'x'.repeat(43) + '\n', { mode: 0o600 });
      const wrong = openmsiRun(empty, ['app-id'], [process.execPath, CHILD]);
      assert.equal((await wrong.waitForExit(30_000)).code, 1);
      assert.match(wrong.stderr(), /refused the session \(401\)/);

      const missing = openmsiRun(h.dataDir, ['app-id'], ['/nonexistent/openmsi-test-command']);
      assert.equal((await missing.waitForExit(30_000)).code, 127);
      await until(() => h.sessions.size === 0, 5000, 'the session to be revoked');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('refuses an identity the host does not have before starting CMD, naming the ones it has', async () => {
    const before = h.events.length;
    const run = openmsiRun(h.dataDir, ['app-id', 'no-such-id'], [process.execPath, CHILD]);
    const exit = await run.waitForExit(30_000);
    assert.equal(exit.code, 1, 'exit code and "error: " as the CLI’s other usage errors');
    assert.deepEqual(run.lines, [], 'CMD never ran (it prints its report first)');
    assert.equal(
      run.stderr(),
      "error: --identity: 'no-such-id' names no identity of host build-01; it has: [system] (system-assigned, object id 11111111-1111-1111-1111-111111111111), " +
        'app-id (user-assigned, client id 44444444-4444-4444-4444-444444444444)\n',
    );
    assert.equal(h.sessions.size, 0, 'no session was made');
    assert.deepEqual(
      h.events.slice(before).map((e) => [e.decision, e.status, e.reason]),
      [['refused', 400, 'identity_not_found']],
    );
  });

  it('finds the agent data dir from --data-dir, then OPENMSI_AGENT_DATA_DIR, then ~/.openmsi/agent', () => {
    assert.equal(agentDataDir('/x/agent', { OPENMSI_AGENT_DATA_DIR: '/y' }), '/x/agent');
    assert.equal(agentDataDir(undefined, { OPENMSI_AGENT_DATA_DIR: '/y' }), '/y');
    assert.equal(agentDataDir(undefined, { OPENMSI_AGENT_DATA_DIR: ' ' }), join(homedir(), '.openmsi', 'agent'));
    assert.equal(agentDataDir(undefined, {}), join(homedir(), '.openmsi', 'agent'));
  });

  it('computes a shell-style exit status', () => {
    assert.equal(exitStatus(0, null), 0);
    assert.equal(exitStatus(3, null), 3);
    assert.equal(exitStatus(null, 'SIGKILL'), 137);
    assert.equal(exitStatus(null, 'SIGINT'), 130);
  });
});
