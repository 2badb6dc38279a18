import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createOpenmsiServer, type OpenmsiServer } from '../../../src/server/server.js';
import { captureLogs, startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { agentRequest, openmsi, openmsiJson, removeDir, startAgentProcess, until, type AgentProcess } from '../../support/agent-process.js';
import { BUILT_MAIN } from '../../support/cli.js';
import { REPO_ROOT as ROOT } from '../../support/paths.js';

const CHILD = fileURLToPath(new URL('./run-child.mjs', import.meta.url));
const IMDS = '/metadata/identity/oauth2/token?api-version=2018-02-01&resource=';

interface Identity {
  id: string;
  clientId: string;
  principalId: string;
}

/** `openmsi run` as a user types it, against the agent's data dir; resolves with the workload's JSON line. */
function openmsiRun(dataDir: string, identities: string[], args: string[]): Promise<{ code: number; line: Record<string, unknown>; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [BUILT_MAIN, 'run', ...identities.flatMap((i) => ['--identity', i]), '--data-dir', dataDir, '--', process.execPath, CHILD, ...args],
      { cwd: ROOT, env: { ...process.env, IDENTITY_ENDPOINT: '', IDENTITY_HEADER: '', MSI_ENDPOINT: '', MSI_SECRET: '' }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        const line = stdout.split('\n').find((l) => l.startsWith('{')) ?? '{}';
        resolvePromise({ code, line: JSON.parse(line) as Record<string, unknown>, stderr });
      },
    );
  });
}

/** The agent as operators run it (a separate `openmsi agent` process) with the real authority. */
describe('openmsi agent in operation: per-process identity, refusals, outage and audit spool', () => {
  let t: TestAuthority;
  let agent: AgentProcess;
  let app: Identity;
  let other: Identity;
  let restarted: OpenmsiServer | undefined;

  before(async () => {
    t = await startTestAuthority();
    await openmsiJson(t, ['group', 'create', '-n', 'ops-rg', '-l', 'local']);
    app = await openmsiJson<Identity>(t, ['identity', 'create', '-n', 'app-id', '-g', 'ops-rg']);
    other = await openmsiJson<Identity>(t, ['identity', 'create', '-n', 'other-id', '-g', 'ops-rg']);
    const join = await openmsiJson<{ token: string }>(t, ['host', 'join-token', 'create', '-g', 'ops-rg', '-n', 'ops-01']);
    await openmsiJson(t, ['vm', 'identity', 'assign', '-g', 'ops-rg', '-n', 'ops-01', '--identities', 'app-id']);
    agent = await startAgentProcess(t, { joinToken: join.token, extra: ['--poll-interval', '0.5'] });
  });
  after(async () => {
    await agent?.stop();
    if (agent !== undefined) removeDir(agent.dataDir);
    if (restarted !== undefined) {
      await restarted.close();
      removeDir(t.dataDir);
    } else await t?.close();
  });

  it('openmsi run gives the workload its own secret for the named identity, refused once the workload has exited', async () => {
    const result = await openmsiRun(agent.dataDir, ['app-id'], [`client:${app.clientId}`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.line['ok'], true, JSON.stringify(result.line));
    assert.equal(result.line['oid'], app.principalId);
    const secret = String(result.line['secret']);
    const after = await agentRequest(agent.port, `/msi/token?api-version=2019-08-01&resource=https://vault.azure.net&client_id=${app.clientId}`, {
      headers: { 'X-IDENTITY-HEADER': secret },
    });
    assert.equal(after.status, 401, after.body);
    assert.deepEqual(JSON.parse(after.body), { error: 'unauthorized_client', error_description: 'The X-IDENTITY-HEADER header is missing or does not match' });
  });

  it("a run secret names only its identities: the host's other identity is refused to it", async () => {
    // With no selector the session's first identity is used; asking it for the host's system-assigned identity is refused.
    const byDefault = await openmsiRun(agent.dataDir, ['app-id'], []);
    assert.equal(byDefault.line['oid'], app.principalId, JSON.stringify(byDefault.line));
    const shown = await openmsiJson<{ principalId: string }>(t, ['vm', 'identity', 'show', '-g', 'ops-rg', '-n', 'ops-01']);
    const system = await openmsiRun(agent.dataDir, ['app-id'], [`object:${shown.principalId}`]);
    assert.equal(system.line['ok'], false, JSON.stringify(system.line));
    const both = await openmsiRun(agent.dataDir, ['app-id', '[system]'], [`object:${shown.principalId}`]);
    assert.equal(both.line['oid'], shown.principalId, JSON.stringify(both.line));
  });

  it("an identity not assigned to the host is refused with IMDS's body, and the agent keeps serving", async () => {
    const refused = await agentRequest(agent.port, `${IMDS}https://vault.azure.net&client_id=${other.clientId}`, { headers: { Metadata: 'true' } });
    assert.equal(refused.status, 400);
    assert.deepEqual(JSON.parse(refused.body), { error: 'invalid_request', error_description: 'Identity not found' });
    // openmsi run refuses it before starting the command, naming what the host has.
    const run = await openmsiRun(agent.dataDir, ['other-id'], [`client:${other.clientId}`]);
    assert.equal(run.code, 1, run.stderr);
    assert.deepEqual(run.line, {}, 'the command never started');
    assert.match(
      run.stderr,
      new RegExp(
        `^error: --identity: 'other-id' names no identity of host ops-01; it has: \\[system\\] \\(system-assigned, object id [0-9a-f-]{36}\\), app-id \\(user-assigned, client id ${app.clientId}\\)\n$`,
      ),
    );
    assert.equal((await agentRequest(agent.port, `${IMDS}https://vault.azure.net&client_id=${app.clientId}`, { headers: { Metadata: 'true' } })).status, 200);
  });

  it('authority outage: cached tokens flow, a new audience gets a retryable 503, audit spools; after a restart every spooled record arrives', async () => {
    const cached = `${IMDS}https://vault.azure.net&client_id=${app.clientId}`;
    assert.equal((await agentRequest(agent.port, cached, { headers: { Metadata: 'true' } })).status, 200);
    const port = Number(new URL(t.url).port);
    await t.authority.close();

    for (let i = 0; i < 5; i++) assert.equal((await agentRequest(agent.port, cached, { headers: { Metadata: 'true' } })).status, 200);
    const miss = await agentRequest(agent.port, `${IMDS}https://outage.example&client_id=${app.clientId}`, { headers: { Metadata: 'true' } });
    assert.equal(miss.status, 503, miss.body);
    assert.ok(Number(miss.headers['retry-after']) > 0);
    assert.equal(JSON.parse(miss.body).error, 'temporarily_unavailable');

    // The outage's records are on disk in the agent's spool (fsynced JSONL), waiting for the authority.
    const spoolDir = join(agent.dataDir, 'audit-spool');
    const spooled = await until('the outage records in the spool', () => {
      if (!existsSync(spoolDir)) return Promise.resolve(undefined);
      const records = readdirSync(spoolDir)
        .filter((f) => f.endsWith('.jsonl'))
        .flatMap((f) =>
          readFileSync(join(spoolDir, f), 'utf8')
            .split('\n')
            .filter((l) => l.trim() !== ''),
        )
        .map((l) => JSON.parse(l) as { id: string; audience?: string; status: number });
      return Promise.resolve(records.some((r) => r.audience === 'https://outage.example' && r.status === 503) ? records : undefined);
    });

    const { logger } = captureLogs();
    restarted = await createOpenmsiServer({
      dataDir: t.dataDir,
      logger,
      env: { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: '' },
      host: '127.0.0.1',
      port,
      autoRotate: false,
    });
    await restarted.listen();

    // Without restarting the agent: new audiences work again, and every spooled record reaches the audit store.
    await until('the agent to recover', async () => {
      const r = await agentRequest(agent.port, `${IMDS}https://outage.example&client_id=${app.clientId}`, { headers: { Metadata: 'true' } });
      return r.status === 200 ? true : undefined;
    });
    const ids = new Set(spooled.map((r) => r.id));
    await until(
      'every spooled record in the authority',
      async () => {
        const stored = await restarted!.ctx.store.audit.list({ limit: 10_000 });
        const storedIds = new Set(stored.map((e) => e.id));
        return [...ids].every((id) => storedIds.has(id)) ? true : undefined;
      },
      30_000,
    );
    const listed = await openmsi(t, ['audit', 'list', '--host', 'ops-01', '--since', '10m', '--action', 'agent.token.refused']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(
      (JSON.parse(listed.stdout) as { detail: { audience?: string; status?: number } }[]).some(
        (e) => e.detail.audience === 'https://outage.example' && e.detail.status === 503,
      ),
    );
  });
});
