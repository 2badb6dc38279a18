/**
 * The federation commands (src/cli/commands/federation.ts) against a real authority: az's output shapes for
 * `identity federated-credential`, the Graph bodies for `ad app federated-credential`, `federation issuer`,
 * and the API's refusals surfacing as CLI errors.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { openmsi, openmsiJson } from '../support/agent-process.js';

const ISSUER = 'https://oidc.example/cluster-1';
const SUBJECT = 'system:serviceaccount:apps:web';

describe('openmsi identity|ad app federated-credential, federation issuer', { timeout: 180_000 }, () => {
  let t: TestAuthority;
  const fic = (...args: string[]) => ['identity', 'federated-credential', ...args, '--identity-name', 'web', '-g', 'apps'];

  before(async () => {
    t = await startTestAuthority();
    await openmsiJson(t, ['group', 'create', '-n', 'apps', '-l', 'local']);
    await openmsiJson(t, ['identity', 'create', '-n', 'web', '-g', 'apps']);
  });
  after(async () => t.close());

  it('identity federated-credential: create (az shape, default audience), show, list, update, delete', async () => {
    const created = await openmsiJson<Record<string, unknown>>(t, [...fic('create'), '-n', 'cluster-1', '--issuer', ISSUER, '--subject', SUBJECT]);
    assert.deepEqual(Object.keys(created).sort(), ['audiences', 'id', 'issuer', 'name', 'resourceGroup', 'subject', 'systemData', 'type']);
    assert.deepEqual(
      { ...created, id: undefined, systemData: undefined },
      {
        audiences: ['api://AzureADTokenExchange'],
        id: undefined,
        issuer: ISSUER,
        name: 'cluster-1',
        resourceGroup: 'apps',
        subject: SUBJECT,
        systemData: undefined,
        type: 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials',
      },
    );
    assert.match(
      String(created['id']),
      /\/resourceGroups\/apps\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/web\/federatedIdentityCredentials\/cluster-1$/,
    );
    const updated = await openmsiJson<Record<string, unknown>>(t, [...fic('update'), '-n', 'cluster-1', '--subject', `${SUBJECT}-v2`]);
    assert.equal(updated['subject'], `${SUBJECT}-v2`);
    assert.equal(updated['issuer'], ISSUER, 'what is not given is kept');
    assert.equal((await openmsiJson<Record<string, unknown>>(t, [...fic('show'), '-n', 'cluster-1']))['subject'], `${SUBJECT}-v2`);
    const table = await openmsi(t, [...fic('list'), '-o', 'table']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^Issuer\s+Name\s+ResourceGroup\s+Subject/);
    const refused = await openmsi(t, [...fic('create'), '-n', 'two', '--issuer', ISSUER, '--subject', 's', '--audiences', 'a', 'b']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /exactly one audience/);
    assert.equal((await openmsi(t, [...fic('delete'), '-n', 'cluster-1', '--yes'])).code, 0);
    assert.deepEqual(await openmsiJson(t, fic('list')), []);
    const missing = await openmsi(t, [...fic('show'), '-n', 'cluster-1']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /ResourceNotFound|could not be found/);
  });

  it('ad app federated-credential: --parameters inline, @file and a path; show by id or name; update; delete', async () => {
    const { appId } = await openmsiJson<{ appId: string }>(t, ['ad', 'sp', 'create-for-rbac', '--name', 'ci']);
    const body = {
      name: 'main',
      issuer: 'https://token.actions.githubusercontent.com',
      subject: 'repo:org/app:ref:refs/heads/main',
      audiences: ['api://AzureADTokenExchange'],
    };
    const created = await openmsiJson<Record<string, unknown>>(t, [
      'ad',
      'app',
      'federated-credential',
      'create',
      '--id',
      appId,
      '--parameters',
      JSON.stringify(body),
    ]);
    assert.equal(created['name'], 'main');
    assert.match(String(created['id']), /^[0-9a-f-]{36}$/);
    const file = join(t.dataDir, 'env.json');
    writeFileSync(file, JSON.stringify({ ...body, name: 'env', subject: 'repo:org/app:environment:prod' }));
    await openmsiJson(t, ['ad', 'app', 'federated-credential', 'create', '--id', appId, '--parameters', `@${file}`]);
    writeFileSync(file, JSON.stringify({ ...body, name: 'pull-requests', subject: 'repo:org/app:pull_request' }));
    await openmsiJson(t, ['ad', 'app', 'federated-credential', 'create', '--id', appId, '--parameters', file]);
    const list = await openmsiJson<{ name: string }[]>(t, ['ad', 'app', 'federated-credential', 'list', '--id', appId]);
    assert.deepEqual(list.map((c) => c.name).sort(), ['env', 'main', 'pull-requests']);
    const byId = await openmsiJson<Record<string, unknown>>(t, [
      'ad',
      'app',
      'federated-credential',
      'show',
      '--id',
      appId,
      '--federated-credential-id',
      String(created['id']),
    ]);
    assert.equal(byId['name'], 'main');
    const update = await openmsi(t, [
      'ad',
      'app',
      'federated-credential',
      'update',
      '--id',
      appId,
      '--federated-credential-id',
      'main',
      '--parameters',
      '{"description":"main branch"}',
    ]);
    assert.equal(update.code, 0, update.stderr);
    assert.equal(
      (await openmsiJson<Record<string, unknown>>(t, ['ad', 'app', 'federated-credential', 'show', '--id', appId, '--federated-credential-id', 'main']))[
        'description'
      ],
      'main branch',
    );
    assert.equal((await openmsi(t, ['ad', 'app', 'federated-credential', 'delete', '--id', appId, '--federated-credential-id', 'main'])).code, 0);
    assert.equal((await openmsiJson<unknown[]>(t, ['ad', 'app', 'federated-credential', 'list', '--id', appId])).length, 2);
    const bad = await openmsi(t, ['ad', 'app', 'federated-credential', 'create', '--id', appId, '--parameters', '{not json']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--parameters must be JSON/);
  });

  it('federation issuer: set (static JWKS from a file), show, list, delete', async () => {
    const jwks = join(t.dataDir, 'cluster.jwks');
    writeFileSync(
      jwks,
      JSON.stringify({
        keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'k1' }],
      }),
    );
    const set = await openmsiJson<Record<string, unknown>>(t, [
      'federation',
      'issuer',
      'set',
      '--issuer',
      ISSUER,
      '--jwks',
      `@${jwks}`,
      '--algorithms',
      'ES256',
    ]);
    assert.equal(set['keySource'], 'jwks');
    assert.deepEqual(set['algorithms'], ['ES256']);
    assert.equal((await openmsiJson<Record<string, unknown>>(t, ['federation', 'issuer', 'show', '--issuer', ISSUER]))['issuer'], ISSUER);
    assert.equal((await openmsiJson<unknown[]>(t, ['federation', 'issuer', 'list'])).length, 1);
    assert.equal((await openmsi(t, ['federation', 'issuer', 'delete', '--issuer', ISSUER])).code, 0);
    assert.deepEqual(await openmsiJson(t, ['federation', 'issuer', 'list']), []);
  });
});
