/** `openmsi ad sp create-for-rbac [--role R --scopes S ...]`, as az: no role without --role. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { call, clientToken, ROLE, V } from './helpers.js';
import { REPO_ROOT as ROOT } from '../../support/paths.js';
import { BUILT_MAIN as MAIN } from '../../support/cli.js';

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { cwd: ROOT, env: { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: '' }, timeout: 60_000 },
      (error, stdout, stderr) => {
        done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
      },
    );
  });
}

describe('openmsi ad sp create-for-rbac and roles', { timeout: 120_000 }, () => {
  let t: TestAuthority;
  const args = (...rest: string[]) => ['--data-dir', t.dataDir, ...rest];

  before(async () => {
    t = await startTestAuthority();
  });
  after(async () => {
    await t.close();
  });

  it('--role without --scopes (and the reverse) is a usage error, as in az', async () => {
    for (const extra of [
      ['--role', 'Reader'],
      ['--scopes', '/subscriptions/x'],
    ]) {
      const r = await run(args('ad', 'sp', 'create-for-rbac', '--name', 'half', ...extra));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /usage error: To create role assignments, specify both --role and --scopes\./);
    }
  });

  it('without --role the principal has no role', async () => {
    const r = await run(args('ad', 'sp', 'create-for-rbac', '--name', 'no-role-cli'));
    assert.equal(r.code, 0, r.stderr);
    const created = JSON.parse(r.stdout) as { appId: string; password: string };
    const principal = await t.ctx.store.servicePrincipals.getByAppId(created.appId);
    assert.deepEqual(await t.ctx.store.roleAssignments.list({ tenantId: t.tenantId, principalIds: [principal!.objectId] }), []);
    const token = await clientToken(t, created.appId, created.password);
    assert.equal((await call(t, 'GET', `/subscriptions/${t.subscriptionId}?${V}`, token)).status, 403);
  });

  it("with --role R --scopes S1 S2 it assigns R at each scope (az's warning on stderr, the same JSON on stdout)", async () => {
    const admin = await t.adminToken('https://management.azure.com/');
    const group = (g: string) => `/subscriptions/${t.subscriptionId}/resourceGroups/${g}`;
    for (const g of ['ci-a', 'ci-b', 'ci-c']) assert.equal((await call(t, 'PUT', `${group(g)}?${V}`, admin, { location: 'westeurope' })).status, 201);
    const r = await run(
      args('ad', 'sp', 'create-for-rbac', '--name', 'ci-cli', '--role', 'Managed Identity Contributor', '--scopes', group('ci-a'), group('ci-b')),
    );
    assert.equal(r.code, 0, r.stderr);
    const created = JSON.parse(r.stdout) as Record<string, string>;
    assert.deepEqual(Object.keys(created).sort(), ['appId', 'displayName', 'password', 'tenant']);
    assert.match(r.stderr, new RegExp(`WARNING: Creating 'Managed Identity Contributor' role assignment under scope '${group('ci-a')}'`));
    assert.match(r.stderr, new RegExp(`WARNING: Creating 'Managed Identity Contributor' role assignment under scope '${group('ci-b')}'`));
    const principal = await t.ctx.store.servicePrincipals.getByAppId(created['appId']!);
    const assignments = await t.ctx.store.roleAssignments.list({ tenantId: t.tenantId, principalIds: [principal!.objectId] });
    assert.deepEqual(assignments.map((a) => [a.scope.toLowerCase(), a.roleDefinitionId.split('/').pop()!.toLowerCase()]).sort(), [
      [group('ci-a').toLowerCase(), ROLE.ManagedIdentityContributor],
      [group('ci-b').toLowerCase(), ROLE.ManagedIdentityContributor],
    ]);
    const token = await clientToken(t, created['appId']!, created['password']!);
    const uami = (g: string) => `${group(g)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ci-identity?${V}`;
    assert.equal((await call(t, 'PUT', uami('ci-a'), token, { location: 'westeurope' })).status, 201);
    assert.equal((await call(t, 'PUT', uami('ci-b'), token, { location: 'westeurope' })).status, 201);
    assert.equal((await call(t, 'PUT', uami('ci-c'), token, { location: 'westeurope' })).status, 403);
  });

  it('--scopes / assigns at the tenant root (by role GUID too)', async () => {
    const r = await run(args('ad', 'sp', 'create-for-rbac', '--name', 'root-reader', '--role', ROLE.Reader, '--scopes', '/'));
    assert.equal(r.code, 0, r.stderr);
    const created = JSON.parse(r.stdout) as Record<string, string>;
    const token = await clientToken(t, created['appId']!, created['password']!);
    assert.equal((await call(t, 'GET', `/subscriptions/${t.subscriptionId}?${V}`, token)).status, 200);
    assert.equal((await call(t, 'GET', '/openmsi/rbac/version', token)).status, 200);
  });
});
