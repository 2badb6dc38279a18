/**
 * `openmsi role ...` and `openmsi ad group ...` against a running authority, on both backends: az's output
 * shapes, assignee by object id, app id and name, deletion by filters and by --ids, and errors.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backendSuiteOptions, registerTestApplication, startTestAuthority, type TestAuthority, acrossBackends } from '../../support/authority.js';
import { REPO_ROOT as ROOT } from '../../support/paths.js';
import { BUILT_MAIN as MAIN } from '../../support/cli.js';

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, ...args], { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

acrossBackends('openmsi role / ad group', (backend) => {
  void describe(`openmsi role / ad group (${backend})`, { ...backendSuiteOptions(backend), timeout: 240_000 }, () => {
    let t: TestAuthority;
    let work: string;
    let args: (...rest: string[]) => string[];

    before(async () => {
      t = await startTestAuthority({ backend });
      work = mkdtempSync(join(tmpdir(), 'openmsi-role-cli-'));
      args = (...rest) => ['--data-dir', t.dataDir, ...rest];
    });
    after(async () => {
      await t.close();
      rmSync(work, { recursive: true, force: true });
    });

    async function ok(...rest: string[]): Promise<unknown> {
      const r = await run(args(...rest));
      assert.equal(r.code, 0, `${rest.join(' ')}: ${r.stderr}`);
      return r.stdout.trim() === '' ? undefined : JSON.parse(r.stdout);
    }

    void it('manages custom roles and assignments like az role', async () => {
      const sub = `/subscriptions/${t.subscriptionId}`;
      const app = await registerTestApplication(t, 'cli-role-app', { certificate: false });
      const readers = (await ok('role', 'definition', 'list', '--name', 'Reader')) as Array<{ roleName: string; roleType: string; name: string }>;
      assert.deepEqual(
        readers.map((r) => [r.roleName, r.roleType, r.name]),
        [['Reader', 'BuiltInRole', 'acdd72a7-3385-48ef-bd42-f606fba81ae7']],
      );

      const file = join(work, 'role.json');
      writeFileSync(file, JSON.stringify({ Name: 'CLI Operator', Description: 'ops', Actions: ['Microsoft.Compute/*/read'], AssignableScopes: [sub] }));
      const created = (await ok('role', 'definition', 'create', '--role-definition', `@${file}`)) as {
        roleName: string;
        roleType: string;
        permissions: Array<{ actions: string[] }>;
      };
      assert.equal(created.roleName, 'CLI Operator');
      assert.equal(created.roleType, 'CustomRole');
      assert.deepEqual(created.permissions[0]?.actions, ['Microsoft.Compute/*/read']);
      const updated = (await ok('role', 'definition', 'update', '--role-definition', JSON.stringify({ Name: 'CLI Operator', Description: 'changed' }))) as {
        description: string;
      };
      assert.equal(updated.description, 'changed');
      const custom = (await ok('role', 'definition', 'list', '--custom-role-only')) as unknown[];
      assert.equal(custom.length, 1);
      const table = await run(args('role', 'definition', 'list', '--custom-role-only', '-o', 'table'));
      assert.match(table.stdout, /^Name\s+Type\s+Description\n/);
      assert.match(table.stdout, /CLI Operator\s+CustomRole\s+changed/);

      // Assignee by app id, then by name.
      const assigned = (await ok('role', 'assignment', 'create', '--assignee', app.appId, '--role', 'CLI Operator', '--scope', sub)) as Record<string, unknown>;
      assert.equal(assigned['principalId'], app.objectId);
      assert.equal(assigned['principalType'], 'ServicePrincipal');
      assert.equal(assigned['scope'], sub);
      assert.equal(assigned['type'], 'Microsoft.Authorization/roleAssignments');
      const rg = `${sub}/resourceGroups/cli-rg`;
      await ok('role', 'assignment', 'create', '--assignee', 'cli-role-app', '--role', 'Reader', '--scope', rg);
      const listed = (await ok('role', 'assignment', 'list', '--assignee', app.objectId, '--all')) as Array<Record<string, unknown>>;
      assert.deepEqual(listed.map((a) => a['roleDefinitionName']).sort(), ['CLI Operator', 'Reader']);
      assert.ok(listed.every((a) => a['principalName'] === app.appId));
      const atSub = (await ok('role', 'assignment', 'list')) as unknown[];
      assert.equal(atSub.length, 1, 'by default only the subscription scope');
      const dup = await run(args('role', 'assignment', 'create', '--assignee', app.appId, '--role', 'Reader', '--scope', rg));
      assert.notEqual(dup.code, 0);
      assert.match(dup.stderr, /RoleAssignmentExists|already exists/);
      const cond = await run(args('role', 'assignment', 'create', '--assignee', app.appId, '--role', 'Reader', '--scope', sub, '--condition', 'x'));
      assert.notEqual(cond.code, 0);
      assert.match(cond.stderr, /not supported/);
      const missing = await run(args('role', 'assignment', 'create', '--assignee', 'no-such-principal', '--role', 'Reader', '--scope', sub));
      assert.notEqual(missing.code, 0);

      const inUse = await run(args('role', 'definition', 'delete', '--name', 'CLI Operator'));
      assert.notEqual(inUse.code, 0);
      assert.match(inUse.stderr, /RoleDefinitionHasAssignments|existing role assignment/);
      await ok('role', 'assignment', 'delete', '--assignee', app.appId, '--role', 'CLI Operator', '--scope', sub);
      const rest = (await ok('role', 'assignment', 'list', '--all')) as Array<{ id: string; principalId: string }>;
      const mine = rest.filter((a) => a.principalId === app.objectId);
      assert.equal(mine.length, 1);
      await ok('role', 'assignment', 'delete', '--ids', mine[0]?.id ?? '');
      assert.deepEqual(await t.ctx.store.roleAssignments.list({ tenantId: t.tenantId, principalIds: [app.objectId] }), []);
      await ok('role', 'definition', 'delete', '--name', 'CLI Operator');
      assert.deepEqual(await ok('role', 'definition', 'list', '--custom-role-only'), []);
    });

    void it('manages groups and members like az ad group', async () => {
      const app = await registerTestApplication(t, 'cli-group-app', { certificate: false });
      const g = (await ok('ad', 'group', 'create', '--display-name', 'cli-ops', '--mail-nickname', 'cliops')) as { id: string; displayName: string };
      assert.equal(g.displayName, 'cli-ops');
      await ok('ad', 'group', 'member', 'add', '--group', 'cli-ops', '--member-id', app.objectId);
      const members = (await ok('ad', 'group', 'member', 'list', '--group', g.id)) as Array<{ id: string }>;
      assert.deepEqual(
        members.map((m) => m.id),
        [app.objectId],
      );
      assert.deepEqual(await ok('ad', 'group', 'member', 'check', '--group', 'cli-ops', '--member-id', app.objectId), { value: true });
      await ok('ad', 'group', 'member', 'remove', '--group', 'cli-ops', '--member-id', app.objectId);
      assert.deepEqual(await ok('ad', 'group', 'member', 'check', '--group', 'cli-ops', '--member-id', app.objectId), { value: false });
      assert.equal(((await ok('ad', 'group', 'list')) as unknown[]).length, 1);
      assert.equal(((await ok('ad', 'group', 'show', '--group', g.id)) as { id: string }).id, g.id);
      await ok('ad', 'group', 'delete', '--group', 'cli-ops');
      assert.deepEqual(await ok('ad', 'group', 'list'), []);
    });
  });
});
