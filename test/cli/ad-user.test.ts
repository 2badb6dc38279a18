/**
 * `openmsi ad user|domain|signed-in-user` against a running authority: Graph's shapes, a user as a role
 * assignee by UPN and as a group member, and the errors a person at the keyboard meets.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { REPO_ROOT as ROOT } from '../support/paths.js';
import { BUILT_MAIN as MAIN } from '../support/cli.js';

const PASSWORD = 'Cl1-Passw0rd!';

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, ...args], { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

void describe('openmsi ad user / ad domain / ad signed-in-user', { timeout: 240_000 }, () => {
  let t: TestAuthority;
  const args = (...rest: string[]) => ['--data-dir', t.dataDir, ...rest];
  async function ok(...rest: string[]): Promise<unknown> {
    const r = await run(args(...rest));
    assert.equal(r.code, 0, `${rest.join(' ')}: ${r.stderr}`);
    return r.stdout.trim() === '' ? undefined : (JSON.parse(r.stdout) as unknown);
  }

  before(async () => {
    t = await startTestAuthority();
  });
  after(async () => {
    await t.close();
  });

  it('domain list, user create/list/show/update/revoke-sessions/delete; a user as assignee (by UPN) and group member', async () => {
    const domains = (await ok('ad', 'domain', 'list')) as Array<{ id: string; isDefault: boolean; isVerified: boolean }>;
    assert.equal(domains.length, 1);
    assert.equal(domains[0]!.isDefault, true);
    const domain = domains[0]!.id;
    const upn = `grace@${domain}`;

    const created = (await ok('ad', 'user', 'create', '--display-name', 'Grace Hopper', '--user-principal-name', upn, `--password=${PASSWORD}`)) as Record<
      string,
      unknown
    >;
    assert.equal(created['userPrincipalName'], upn);
    assert.equal(created['displayName'], 'Grace Hopper');
    assert.equal(created['accountEnabled'], true);
    assert.ok(!JSON.stringify(created).includes(PASSWORD));
    const id = created['id'] as string;

    assert.deepEqual(
      ((await ok('ad', 'user', 'list', '--upn', upn.toUpperCase())) as Array<{ id: string }>).map((u) => u.id),
      [id],
    );
    assert.deepEqual(
      ((await ok('ad', 'user', 'list', '--display-name', 'grace')) as Array<{ id: string }>).map((u) => u.id),
      [id],
    );
    const table = await run(args('ad', 'user', 'list', '-o', 'table'));
    assert.match(table.stdout, new RegExp(`Grace Hopper\\s+${upn.replace(/\./g, '\\.')}\\s+${id}`));
    assert.equal(((await ok('ad', 'user', 'show', '--id', id)) as { userPrincipalName: string }).userPrincipalName, upn);

    await ok('ad', 'user', 'update', '--id', upn, '--display-name', 'Rear Admiral Hopper', '--account-enabled', 'false');
    const shown = (await ok('ad', 'user', 'show', '--id', upn)) as { displayName: string; accountEnabled: boolean };
    assert.deepEqual({ displayName: shown.displayName, accountEnabled: shown.accountEnabled }, { displayName: 'Rear Admiral Hopper', accountEnabled: false });
    assert.deepEqual(await ok('ad', 'user', 'revoke-sessions', '--id', upn), {
      '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean',
      value: true,
    });

    const assignment = (await ok(
      'role',
      'assignment',
      'create',
      '--assignee',
      upn,
      '--role',
      'Reader',
      '--scope',
      `/subscriptions/${t.subscriptionId}`,
    )) as Record<string, unknown>;
    assert.equal(assignment['principalId'], id);
    assert.equal(assignment['principalType'], 'User');
    const listed = (await ok('role', 'assignment', 'list', '--assignee', upn, '--scope', `/subscriptions/${t.subscriptionId}`)) as Array<{
      principalName: string;
    }>;
    assert.deepEqual(
      listed.map((a) => a.principalName),
      [upn],
    );

    await ok('ad', 'group', 'create', '--display-name', 'admirals', '--mail-nickname', 'admirals');
    await ok('ad', 'group', 'member', 'add', '--group', 'admirals', '--member-id', id);
    const members = (await ok('ad', 'group', 'member', 'list', '--group', 'admirals')) as Array<Record<string, unknown>>;
    assert.deepEqual(
      members.map((m) => [m['@odata.type'], m['id'], m['userPrincipalName']]),
      [['#microsoft.graph.user', id, upn]],
    );
    assert.deepEqual(await ok('ad', 'group', 'member', 'check', '--group', 'admirals', '--member-id', id), { value: true });

    await ok('ad', 'user', 'delete', '--id', upn);
    assert.deepEqual(await ok('ad', 'group', 'member', 'list', '--group', 'admirals'), []);
    const all = (await ok('role', 'assignment', 'list', '--all')) as Array<{ principalId: string }>;
    assert.ok(!all.some((a) => a.principalId === id), 'the deleted user keeps no role assignment');
    const gone = await run(args('ad', 'user', 'show', '--id', upn));
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /does not exist|not found/i);
  });

  it("refuses a foreign domain, a weak password and a taken name with Graph's messages; signed-in-user show needs a user token", async () => {
    const domain = ((await ok('ad', 'domain', 'list')) as Array<{ id: string }>)[0]!.id;
    const bad = await run(args('ad', 'user', 'create', '--display-name', 'X', '--user-principal-name', 'x@example.com', `--password=${PASSWORD}`));
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /verified domain names/);
    const weak = await run(args('ad', 'user', 'create', '--display-name', 'X', '--user-principal-name', `x@${domain}`, '--password=password'));
    assert.notEqual(weak.code, 0);
    assert.match(weak.stderr, /complexity/);
    assert.ok(!weak.stderr.includes('password=password'));
    await ok('ad', 'user', 'create', '--display-name', 'X', '--user-principal-name', `x@${domain}`, `--password=${PASSWORD}`);
    const taken = await run(args('ad', 'user', 'create', '--display-name', 'X', '--user-principal-name', `X@${domain}`, `--password=${PASSWORD}`));
    assert.match(taken.stderr, /already exists/);
    const me = await run(args('ad', 'signed-in-user', 'show'));
    assert.notEqual(me.code, 0);
    assert.match(me.stderr, /delegated authentication flow/);
  });
});
