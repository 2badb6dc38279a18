import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { HOST_API_PATHS, type HostCredentialGrant, type HostDescription } from '../../../src/shared/host-protocol.js';
import { parseTtl } from '../../../src/cli/commands/host.js';
import { parseSinceOption } from '../../../src/cli/commands/audit.js';
import { admin, call, hostAssertion, hostKey, type HostKey } from './helpers.js';
import { REPO_ROOT as ROOT } from '../../support/paths.js';
import { BUILT_MAIN as MAIN } from '../../support/cli.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Run> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [MAIN, ...args], { cwd: ROOT, env: { ...process.env, OPENMSI_AUTHORITY_URL: '' }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolvePromise({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

void describe('host, vm identity and audit commands: argument parsing', () => {
  void it('parses --ttl durations within 1m..24h', () => {
    assert.equal(parseTtl('10m'), 600);
    assert.equal(parseTtl('90s'), 90);
    assert.equal(parseTtl('1d'), 86_400);
    assert.equal(parseTtl('3600'), 3600);
    for (const bad of ['59s', '2d', '25h', '10x', '', '-5m', '1.5h']) assert.throws(() => parseTtl(bad), /--ttl must be a duration from 1m to 24h/, bad);
  });

  void it('parses --since as a duration or an ISO time', () => {
    assert.equal(parseSinceOption('15m'), '15m');
    assert.equal(parseSinceOption('2026-11-30T12:00:00+01:00'), '2026-11-30T11:00:00.000Z');
    for (const bad of ['yesterday', '5x', '12']) assert.throws(() => parseSinceOption(bad), /--since must be/, bad);
  });
});

void describe('host, vm identity and audit commands against a running authority', { timeout: 240_000 }, () => {
  let t: TestAuthority;
  let args: (...rest: string[]) => string[];

  before(async () => {
    t = await startTestAuthority();
    args = (...rest) => ['--data-dir', t.dataDir, ...rest];
    const group = await run(args('group', 'create', '-n', 'hosts-rg', '-l', 'local'));
    assert.equal(group.code, 0, group.stderr);
  });
  after(async () => {
    await t.close();
  });

  async function ok(...rest: string[]): Promise<string> {
    const result = await run(args(...rest));
    assert.equal(result.code, 0, `${rest.join(' ')}: ${result.stderr}`);
    return result.stdout;
  }

  async function enrol(token: string): Promise<{ key: HostKey; grant: HostCredentialGrant }> {
    const key = await hostKey();
    const response = await call(t, 'POST', HOST_API_PATHS.enrol, { body: { joinToken: token, publicJwk: key.publicJwk } });
    assert.equal(response.status, 201, response.body);
    return { key, grant: response.json<HostCredentialGrant>() };
  }

  const self = async (key: HostKey, host: string) => call(t, 'GET', HOST_API_PATHS.self, { bearer: await hostAssertion(t, key, host) });

  void it('join-token create, vm identity assign/show/remove, credential list/revoke, audit list, host show/list/delete', async () => {
    // join-token create prints the token and its expiry (and where to enrol).
    const created = JSON.parse(await ok('host', 'join-token', 'create', '-g', 'hosts-rg', '-n', 'build-01', '--ttl', '15m')) as Record<string, string>;
    assert.deepEqual(Object.keys(created), ['authority', 'expiresOn', 'hostResourceId', 'token']);
    assert.match(created['token']!, /^omj_/);
    assert.ok(Math.abs(Date.parse(created['expiresOn']!) - (Date.now() + 15 * 60_000)) < 60_000);
    assert.equal(created['authority'], t.url);
    const hostId = created['hostResourceId']!;
    const badTtl = await run(args('host', 'join-token', 'create', '-g', 'hosts-rg', '-n', 'build-01', '--ttl', '2d'));
    assert.equal(badTtl.code, 1);
    assert.match(badTtl.stderr, /--ttl must be a duration from 1m to 24h/);

    const { key, grant } = await enrol(created['token']!);

    // vm identity: [system] by default; a user-assigned identity by name; show in az's shape; remove.
    const identity = JSON.parse(await ok('identity', 'create', '-n', 'app-id', '-g', 'hosts-rg')) as Record<string, string>;
    const assigned = JSON.parse(await ok('vm', 'identity', 'assign', '-g', 'hosts-rg', '-n', 'build-01', '--identities', 'app-id')) as Record<string, unknown>;
    const machine = (await t.ctx.store.resources.get(hostId))!;
    assert.deepEqual(assigned, {
      systemAssignedIdentity: machine.systemPrincipalId,
      userAssignedIdentities: { [identity['id']!]: { clientId: identity['clientId'], principalId: identity['principalId'] } },
    });
    const shown = JSON.parse(await ok('vm', 'identity', 'show', '-g', 'hosts-rg', '-n', 'build-01')) as Record<string, unknown>;
    assert.deepEqual(shown, {
      principalId: machine.systemPrincipalId,
      tenantId: t.tenantId,
      type: 'SystemAssigned, UserAssigned',
      userAssignedIdentities: { [identity['id']!]: { clientId: identity['clientId'], principalId: identity['principalId'] } },
    });
    const described = (await self(key, hostId)).json<HostDescription>();
    assert.deepEqual(
      described.identities.map((i) => [i.type, i.objectId]),
      [
        ['SystemAssigned', machine.systemPrincipalId],
        ['UserAssigned', identity['principalId']],
      ],
    );
    const removed = JSON.parse(await ok('vm', 'identity', 'remove', '-g', 'hosts-rg', '-n', 'build-01', '--identities', identity['id']!)) as Record<
      string,
      unknown
    >;
    assert.deepEqual(removed, { principalId: machine.systemPrincipalId, tenantId: t.tenantId, type: 'SystemAssigned', userAssignedIdentities: null });
    assert.deepEqual(
      (await self(key, hostId)).json<HostDescription>().identities.map((i) => i.type),
      ['SystemAssigned'],
    );
    const notAssigned = await run(args('vm', 'identity', 'remove', '-g', 'hosts-rg', '-n', 'build-01', '--identities', 'app-id'));
    assert.equal(notAssigned.code, 1);
    assert.match(notAssigned.stderr, /is not assigned to 'build-01'/);
    // A Compute VM is found when no host has the name; removing [system] from it leaves nothing to show.
    const vmPut = await admin(t, 'PUT', `/subscriptions/${t.subscriptionId}/resourceGroups/hosts-rg/providers/Microsoft.Compute/virtualMachines/vm-1`, {});
    assert.equal(vmPut.status, 201, vmPut.body);
    const vmAssigned = JSON.parse(await ok('vm', 'identity', 'assign', '-g', 'hosts-rg', '-n', 'vm-1')) as {
      systemAssignedIdentity: string;
      userAssignedIdentities: object;
    };
    assert.match(vmAssigned.systemAssignedIdentity, /^[0-9a-f-]{36}$/);
    assert.deepEqual(vmAssigned.userAssignedIdentities, {});
    assert.equal(await ok('vm', 'identity', 'remove', '-g', 'hosts-rg', '-n', 'vm-1', '--type', 'vm'), '');
    assert.equal(await ok('vm', 'identity', 'show', '-g', 'hosts-rg', '-n', 'vm-1'), '');
    const missing = await run(args('vm', 'identity', 'show', '-g', 'hosts-rg', '-n', 'nosuch'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /ResourceNotFound/);

    // An agent's audit records, then audit list by host and identity, as JSON and as a table.
    const record = {
      id: randomUUID(),
      at: Date.now() - 2000,
      lastAt: Date.now() - 1000,
      count: 7,
      decision: 'served',
      source: 'cache',
      surface: 'imds',
      identity: identity['principalId'],
      audience: 'https://vault.azure.net',
      caller: { address: '127.0.0.1', pid: 4242 },
      status: 200,
    };
    const upload = await call(t, 'POST', HOST_API_PATHS.audit, { bearer: await hostAssertion(t, key, hostId), body: { records: [record] } });
    assert.equal(upload.status, 200, upload.body);
    const byIdentity = JSON.parse(await ok('audit', 'list', '--identity', 'app-id', '--action', 'agent.token.served')) as { id: string; target: string }[];
    assert.deepEqual(
      byIdentity.map((e) => [e.id, e.target]),
      [[record.id, hostId]],
    );
    const table = await ok('audit', 'list', '--host', 'build-01', '--since', '1h', '-o', 'table');
    const [header, rule, ...rows] = table.trimEnd().split('\n');
    assert.match(header!, /^Time\s+Action\s+Outcome\s+Identity\s+Host\s+Audience\s+Surface\s+Caller\s+Count$/);
    assert.match(rule!, /^-+(\s+-+){8}$/);
    assert.ok(
      rows.some((r) => /agent\.token\.served\s+success\s+\S+\s+build-01\s+https:\/\/vault\.azure\.net\s+imds\s+127\.0\.0\.1 pid 4242\s+7$/.test(r)),
      table,
    );
    assert.ok(
      rows.some((r) => /host\.enrolled\s+success\s+build-01/.test(r)),
      table,
    );
    const badSince = await run(args('audit', 'list', '--since', 'yesterday'));
    assert.equal(badSince.code, 1);

    // Credentials: list, revoke (refused at once), show and list hosts, delete.
    const credentials = JSON.parse(await ok('host', 'credential', 'list', '-g', 'hosts-rg', '-n', 'build-01')) as { keyId: string; state: string }[];
    assert.deepEqual(
      credentials.map((c) => [c.keyId, c.state]),
      [[grant.keyId, 'Active']],
    );
    assert.equal((await self(key, hostId)).status, 200);
    const revoked = JSON.parse(await ok('host', 'credential', 'revoke', '--key-id', grant.keyId)) as { state: string };
    assert.equal(revoked.state, 'Revoked');
    assert.equal((await self(key, hostId)).status, 401);
    const unknown = await run(args('host', 'credential', 'revoke', '--key-id', 'nope'));
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /HostCredentialNotFound/);

    const second = await enrol((JSON.parse(await ok('host', 'join-token', 'create', '-g', 'hosts-rg', '-n', 'build-01')) as { token: string }).token);
    assert.equal((await self(second.key, hostId)).status, 200);
    const hostView = JSON.parse(await ok('host', 'show', '-g', 'hosts-rg', '-n', 'build-01')) as {
      id: string;
      resourceGroup: string;
      properties: { vmId: string };
    };
    assert.equal(hostView.id, hostId);
    assert.equal(hostView.resourceGroup, 'hosts-rg');
    assert.match(await ok('host', 'list', '-o', 'table'), new RegExp(`build-01\\s+hosts-rg\\s+local\\s+${hostView.properties.vmId}`));
    await ok('host', 'delete', '-g', 'hosts-rg', '-n', 'build-01', '--yes');
    assert.equal((await self(second.key, hostId)).status, 401, 'a deleted host is refused at once');
  });
});
