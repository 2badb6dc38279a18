/**
 * Cross-replica invalidation on PostgreSQL: a second authority PROCESS on the same database refuses a revoked
 * permission within the stated bound — at once through LISTEN/NOTIFY, at worst after the authoriser's
 * reconciliation interval (a missed notice). The measured time is printed, and asserted only against the
 * bound the docs state (reconcileMs + 2 s).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort, registerTestApplication, startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { httpsRequest } from '../../support/https.js';
import { RBAC_DEFAULTS } from '../../../src/shared/config.js';
import { deleteApplicationPrincipal } from '../../../src/directory/principals.js';
import { assignRoleInStore, clientToken, deleteAssignmentInStore, ROLE, timeUntil, V } from './helpers.js';
import { BUILT_MAIN } from '../../support/cli.js';
import { REPO_ROOT as ROOT } from '../../support/paths.js';

const postgresUrl = process.env['OPENMSI_TEST_POSTGRES_URL'];

describe(
  'RBAC changes reach another authority process on PostgreSQL',
  { skip: postgresUrl ? false : 'OPENMSI_TEST_POSTGRES_URL not set', timeout: 120_000 },
  () => {
    let a: TestAuthority;
    let b: ChildProcess | undefined;
    let bUrl: string;

    before(async () => {
      a = await startTestAuthority({ backend: 'postgres' });
      const port = await freePort();
      bUrl = `https://127.0.0.1:${String(port)}`;
      const child = spawn(
        process.execPath,
        [
          BUILT_MAIN,
          'authority',
          '--data-dir',
          a.dataDir,
          '--store',
          a.storeLocation,
          '--host',
          '127.0.0.1',
          '--port',
          String(port),
          '--public-url',
          a.url,
          '--log-format',
          'json',
        ],
        {
          cwd: ROOT,
          env: { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: '', OPENMSI_DATA_DIR: '', OPENMSI_LOG_LEVEL: '' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      b = child;
      await new Promise<void>((ready, fail) => {
        let out = '';
        let err = '';
        const timer = setTimeout(() => fail(new Error(`replica B did not start: ${err}`)), 60_000);
        child.stdout?.on('data', (c: Buffer) => {
          out += c.toString('utf8');
          if (out.includes('openmsi server ready')) {
            clearTimeout(timer);
            ready();
          }
        });
        child.stderr?.on('data', (c: Buffer) => (err += c.toString('utf8')));
        child.once('exit', (code) => fail(new Error(`replica B exited (${String(code)}): ${err}`)));
      });
    });
    after(async () => {
      if (b !== undefined && b.exitCode === null) {
        const exited = new Promise((r) => b?.once('exit', r));
        b.kill('SIGTERM');
        await exited;
      }
      await a.close();
    });

    it('an assignment deleted through replica A is refused on replica B within the bound (timed)', async (ctx) => {
      const sp = await registerTestApplication(a, 'cross-replica', { certificate: false });
      const token = await clientToken(a, sp.appId, sp.secret);
      const group = `/subscriptions/${a.subscriptionId}/resourceGroups/rg-replicas`;
      const admin = await a.adminToken('https://management.azure.com/');
      const put = (base: string, bearer: string, path: string, body: unknown) =>
        httpsRequest(`${base}${path}?${V}`, {
          method: 'PUT',
          ca: a.caPem,
          headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      assert.equal((await put(a.url, admin, group, { location: 'westeurope' })).status, 201);
      const identity = `${group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/from-b`;

      const assignment = await assignRoleInStore(a, group, ROLE.ManagedIdentityContributor, sp.objectId);
      // B hears of the grant through LISTEN/NOTIFY (its cache was never loaded for this principal, so this also loads it).
      const grantMs = await timeUntil(
        async () => [200, 201].includes((await put(bUrl, token, identity, { location: 'westeurope' })).status),
        RBAC_DEFAULTS.reconcileMs + 2000,
      );
      assert.ok(grantMs !== undefined, 'the grant reached replica B');
      // B's decision is now cached; the deletion happens through A's store connection.
      assert.equal((await put(bUrl, token, identity, { location: 'westeurope' })).status, 200);
      await deleteAssignmentInStore(a, assignment);
      const bound = RBAC_DEFAULTS.reconcileMs + 2000;
      const revokeMs = await timeUntil(async () => (await put(bUrl, token, identity, { location: 'westeurope' })).status === 403, bound, 2);
      ctx.diagnostic(
        `cross-replica: replica B refused ${String(revokeMs)} ms after replica A committed the deletion (bound: reconcile ${String(RBAC_DEFAULTS.reconcileMs)} ms + 2 s)`,
      );
      assert.ok(revokeMs !== undefined, `refused on replica B within ${String(bound)} ms`);
    });

    it('invariant: a principal deleted through replica A is refused by replica B within 1 s', async () => {
      const sp = await registerTestApplication(a, 'deleted-on-a', { certificate: false });
      await assignRoleInStore(a, `/subscriptions/${a.subscriptionId}`, ROLE.Reader, sp.objectId);
      const token = await clientToken(a, sp.appId, sp.secret);
      const list = () => httpsRequest(`${bUrl}/subscriptions?${V}`, { ca: a.caPem, headers: { authorization: `Bearer ${token}` } });
      assert.ok((await timeUntil(async () => (await list()).status === 200, RBAC_DEFAULTS.reconcileMs + 2000)) !== undefined, 'served by B before');
      await deleteApplicationPrincipal(a.ctx.store, sp.objectId);
      const took = await timeUntil(async () => (await list()).status === 401, 1500, 10);
      assert.ok(took !== undefined && took <= 1000, `replica B refused the deleted principal after ${String(took)} ms (bound 1000 ms)`);
    });

    // Last: it revokes the key every earlier token was signed with.
    it('invariant: a signing key revoked through replica A is refused by replica B within 1 s', async () => {
      const admin = await a.adminToken('https://management.azure.com/');
      const list = () => httpsRequest(`${bUrl}/subscriptions?${V}`, { ca: a.caPem, headers: { authorization: `Bearer ${admin}` } });
      assert.equal((await list()).status, 200, 'B accepts the token before');
      const rotated = await httpsRequest(`${a.url}/openmsi/keys/rotate`, {
        method: 'POST',
        ca: a.caPem,
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ revokePrevious: true }),
      });
      assert.equal(rotated.status, 200, rotated.body);
      const took = await timeUntil(async () => (await list()).status === 401, 1500, 10);
      assert.ok(took !== undefined && took <= 1000, `replica B refused the revoked key's token after ${String(took)} ms (bound 1000 ms)`);
      // B verifies the new key's tokens (it learnt of the new key with the revocation).
      const fresh = await a.adminToken('https://management.azure.com/');
      assert.equal((await httpsRequest(`${bUrl}/subscriptions?${V}`, { ca: a.caPem, headers: { authorization: `Bearer ${fresh}` } })).status, 200);
    });
  },
);
