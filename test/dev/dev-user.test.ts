/**
 * The dev user (`openmsi dev` makes one for the person at the keyboard): named after the OS account, Owner on
 * the dev subscription and Key Vault Administrator on the dev vault, its password only in a 0600 file; it signs
 * in with az's password grant and reads the dev vault; later starts make no second one, and a data dir from
 * before the dev user gets one on its next start. In process, on the embedded store.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/authority.js';
import { startDev, type DevStack } from '../../src/dev/dev.js';
import { currentOsAccount, devUserLocalPart, generateDevPassword, readDevUserFile } from '../../src/dev/dev-user.js';
import { passwdEntry } from '../../src/dev/passwd.js';
import { devLayout } from '../../src/dev/layout.js';
import { passwordPolicyViolation } from '../../src/directory/passwords.js';
import { deleteUser } from '../../src/directory/users.js';
import { BUILTIN_ROLE_IDS } from '../../src/rbac/builtin-roles.js';
import { systemClock } from '../../src/shared/clock.js';
import { createLogger } from '../../src/shared/logger.js';

const AZ_CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
const ACCOUNT = { username: 'ada.lovelace', fullName: 'Ada Lovelace' };

describe('devUserLocalPart and generateDevPassword', () => {
  it('an OS user name becomes a valid UPN local part', () => {
    assert.equal(devUserLocalPart('alice'), 'alice');
    assert.equal(devUserLocalPart('DOMAIN\\bob smith'), 'DOMAIN-bob-smith');
    assert.equal(devUserLocalPart('.a..b.'), 'a.b');
    assert.equal(devUserLocalPart('...'), 'developer');
    assert.equal(devUserLocalPart('x'.repeat(100)).length, 64);
  });
  it("the OS account: this process's user name, its passwd full name when it has one", () => {
    const account = currentOsAccount();
    assert.equal(account.username, userInfo().username);
    const gecos = passwdEntry(account.username)?.[4]?.split(',')[0];
    assert.equal(account.fullName, gecos === '' ? undefined : gecos);
    assert.equal(passwdEntry('no-such-user-openmsi'), undefined);
  });
  it('passwords meet the policy and differ', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const p = generateDevPassword();
      assert.equal(passwordPolicyViolation(p), undefined, p);
      assert.ok(p.length >= 24);
      seen.add(p);
    }
    assert.equal(seen.size, 50);
  });
});

describe('openmsi dev: the dev user', () => {
  let root: string;
  let dataDir: string;
  let ports: { port: number; agentPort: number; proxyPort: number };
  let stack: DevStack | undefined;
  const progress: string[] = [];
  const start = async () => {
    stack = await startDev({ dataDir, ...ports, logger: createLogger({ level: 'silent' }), account: ACCOUNT, progress: (m) => progress.push(m) });
    return stack;
  };

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'openmsi-dev-user-'));
    dataDir = join(root, 'data');
    ports = { port: await freePort(), agentPort: await freePort(), proxyPort: await freePort() };
    await start();
  });
  after(async () => {
    await stack?.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function signIn(s: DevStack, username: string, password: string, resource: string) {
    return s.authority.app.inject({
      method: 'POST',
      url: `/${s.tenantId}/oauth2/v2.0/token`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        grant_type: 'password',
        client_id: AZ_CLI,
        username,
        password,
        scope: `${resource}/.default offline_access openid profile`,
        client_info: '1',
      }).toString(),
    });
  }

  it('the first run makes the user, named after the OS account, with Owner on the subscription and Key Vault Administrator on vault dev', async () => {
    const s = stack!;
    const tenant = await s.authority.ctx.store.tenants.get(s.tenantId);
    assert.equal(s.user.userPrincipalName, `ada.lovelace@${tenant!.defaultDomain}`);
    assert.equal(s.user.displayName, 'Ada Lovelace');
    assert.equal(s.user.created, true);
    const store = s.authority.ctx.store;
    assert.ok(await store.roleAssignments.find(s.tenantId, `/subscriptions/${s.subscriptionId}`, BUILTIN_ROLE_IDS.Owner, s.user.objectId));
    assert.ok(await store.roleAssignments.find(s.tenantId, s.directory.vault.resourceId, BUILTIN_ROLE_IDS.KeyVaultAdministrator, s.user.objectId));
    assert.ok(progress.some((m) => m.includes(s.user.userPrincipalName)));
  });

  it('the password is only in dev/user.json (0600), never in progress messages', () => {
    const path = devLayout(dataDir).devUser;
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const file = readDevUserFile(dataDir)!;
    assert.equal(file.userPrincipalName, stack!.user.userPrincipalName);
    assert.equal(passwordPolicyViolation(file.password), undefined);
    assert.ok(!progress.join('\n').includes(file.password));
    assert.ok(!JSON.stringify(stack!.user).includes(file.password));
  });

  it("the password signs in with az's password grant, and the token reads the dev vault's sample-secret", async () => {
    const s = stack!;
    const file = readDevUserFile(dataDir)!;
    const vault = new URL(s.vaultUri);
    const resource = `https://${vault.host.slice(vault.host.indexOf('.') + 1)}`;
    const token = await signIn(s, file.userPrincipalName, file.password, resource);
    assert.equal(token.statusCode, 200, token.body);
    const accessToken = token.json<{ access_token: string }>().access_token;
    const read = await s.authority.vaultApp.inject({
      method: 'GET',
      url: '/secrets/sample-secret?api-version=7.4',
      headers: { host: vault.host, authorization: `Bearer ${accessToken}` },
    });
    assert.equal(read.statusCode, 200, read.body);
    assert.equal(read.json<{ value: string }>().value, 'Hello from the openmsi dev vault');
    const wrong = await signIn(s, file.userPrincipalName, `${file.password}x`, resource);
    assert.equal(wrong.statusCode, 400, 'and another password does not');
  });

  it('a second start finds the same user and makes no other', async () => {
    const before = readFileSync(devLayout(dataDir).devUser, 'utf8');
    const first = stack!.user;
    await stack!.close();
    stack = undefined;
    const s = await start();
    assert.equal(s.user.objectId, first.objectId);
    assert.equal(s.user.created, false);
    assert.equal(readFileSync(devLayout(dataDir).devUser, 'utf8'), before, 'the password is kept');
    assert.equal((await s.authority.ctx.store.users.list(s.tenantId)).length, 1);
  });

  it('a data dir from before the dev user (no user, no file) gets one on its next start', async () => {
    const s = stack!;
    await deleteUser(s.authority.ctx.store, s.tenantId, s.user.objectId, systemClock);
    rmSync(devLayout(dataDir).devUser);
    await s.close();
    stack = undefined;
    const again = await start();
    assert.equal(again.user.created, true);
    assert.equal((await again.authority.ctx.store.users.list(again.tenantId)).length, 1);
    const file = readDevUserFile(dataDir)!;
    const vault = new URL(again.vaultUri);
    const token = await signIn(again, file.userPrincipalName, file.password, `https://${vault.host.slice(vault.host.indexOf('.') + 1)}`);
    assert.equal(token.statusCode, 200, token.body);
  });
});
