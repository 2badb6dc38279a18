/**
 * Generic ARM resources (src/management/resources.ts) as a caller with a limited role sees them: read, write and
 * delete are checked as `{namespace}/{type}/{verb}` at the resource's id; lists show only readable items and an
 * empty list is refused unless the caller may read at its scope; attaching a user-assigned identity needs
 * `…/assign/action` on each identity the body attaches (at its canonical id), detaching needs none. And
 * `canonicalIdentity`, the parse of `identity.userAssignedIdentities` at the edge.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_BACKENDS, backendSuiteOptions, startTestAuthority, type TestAuthority } from '../support/authority.js';
import { assignRole, call, expectAuthorizationFailed, ROLE, testPrincipal, V, type TestPrincipal } from '../rbac/authz/helpers.js';
import { ASSIGN_IDENTITY_ACTION, canonicalIdentity } from '../../src/management/resources.js';
import { ApiError } from '../../src/shared/api-error.js';
import { DirectoryError } from '../../src/directory/errors.js';

const UAMI = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const VM = 'Microsoft.Compute/virtualMachines';
const SITE = 'Microsoft.Web/sites';

describe('canonicalIdentity', () => {
  const S = '33333333-3333-4333-8333-333333333333';
  const id = (g: string, name: string) => `/subscriptions/${S}/resourceGroups/${g}/providers/${UAMI}/${name}`;

  it('invariant: every attached identity is named by its canonical id, whatever the spelling; a null value detaches and is not attached', () => {
    const spelled = `/SUBSCRIPTIONS/${S}/RESOURCEGROUPS/rg/PROVIDERS/Microsoft.ManagedIdentity/userAssignedIdentities/id-a/`;
    const out = canonicalIdentity({ type: 'UserAssigned', userAssignedIdentities: { [spelled]: {}, [id('rg', 'id-b')]: null, [id('rg', 'id-c')]: { x: 1 } } });
    assert.deepEqual(out, {
      identity: { type: 'UserAssigned', userAssignedIdentities: { [id('rg', 'id-a')]: {}, [id('rg', 'id-b')]: null, [id('rg', 'id-c')]: { x: 1 } } },
      attached: [id('rg', 'id-a'), id('rg', 'id-c')],
    });
  });

  it('invariant: a key that is not a user-assigned identity id is 400 LinkedInvalidPropertyId; two keys for one identity are 400 InvalidIdentity', () => {
    for (const bad of [
      `/subscriptions/${S}/resourceGroups/rg/providers/${VM}/vm`,
      `/subscriptions/${S}/resourceGroups/rg`,
      `${id('rg', 'a')}%2F..`,
      ` ${id('rg', 'a')}`,
      'id-a',
    ]) {
      assert.throws(
        () => canonicalIdentity({ type: 'UserAssigned', userAssignedIdentities: { [bad]: {} } }),
        (err: unknown) => err instanceof ApiError && err.status === 400 && err.code === 'LinkedInvalidPropertyId',
        bad,
      );
    }
    assert.throws(
      () => canonicalIdentity({ type: 'UserAssigned', userAssignedIdentities: { [id('rg', 'id-a')]: {}, [id('RG', 'ID-A')]: null } }),
      (err: unknown) => err instanceof DirectoryError && err.code === 'InvalidIdentity',
    );
  });

  it('what is not an object of identities passes unchanged, attaching nothing, for the directory to validate', () => {
    for (const identity of [
      undefined,
      null,
      'UserAssigned',
      ['x'],
      { type: 'SystemAssigned' },
      { userAssignedIdentities: null },
      { userAssignedIdentities: [id('rg', 'a')] },
      { userAssignedIdentities: id('rg', 'a') },
    ]) {
      assert.deepEqual(canonicalIdentity(identity), { identity, attached: [] }, JSON.stringify(identity));
    }
  });
});

for (const backend of STORE_BACKENDS) {
  describe(`generic resources as a caller with a limited role sees them (${backend})`, backendSuiteOptions(backend), () => {
    let t: TestAuthority;
    let admin: string;
    /** Contributor at rg-a. */
    let contributor: TestPrincipal;
    /** Reader of vm-a only. */
    let vmReader: TestPrincipal;
    const rg = (g: string) => `/subscriptions/${t.subscriptionId}/resourceGroups/${g}`;
    const vm = (g: string, name: string) => `${rg(g)}/providers/${VM}/${name}`;
    const identity = (g: string, name: string) => `${rg(g)}/providers/${UAMI}/${name}`;
    const ids = (r: { json<T>(): T }) =>
      r
        .json<{ value: { id: string }[] }>()
        .value.map((i) => i.id)
        .sort();
    const attachedOf = (r: { json<T>(): T }) =>
      Object.keys(r.json<{ identity?: { userAssignedIdentities?: Record<string, unknown> } }>().identity?.userAssignedIdentities ?? {}).map((k) =>
        k.toLowerCase(),
      );

    before(async () => {
      t = await startTestAuthority({ backend });
      admin = await t.adminToken('https://management.azure.com/');
      for (const g of ['rg-a', 'rg-b']) {
        assert.equal((await call(t, 'PUT', `${rg(g)}?${V}`, admin, { location: 'westeurope' })).status, 201);
        assert.equal((await call(t, 'PUT', `${identity(g, 'uami')}?${V}`, admin, { location: 'westeurope' })).status, 201);
        assert.equal((await call(t, 'PUT', `${vm(g, 'vm')}?${V}`, admin, { location: 'westeurope' })).status, 201);
      }
      assert.equal((await call(t, 'PUT', `${rg('rg-a')}/providers/${SITE}/site?${V}`, admin, { location: 'westeurope' })).status, 201);
      contributor = await testPrincipal(t, 'rg-a-contributor');
      await assignRole(t, admin, rg('rg-a'), ROLE.Contributor, contributor.objectId);
      vmReader = await testPrincipal(t, 'vm-reader');
      await assignRole(t, admin, vm('rg-a', 'vm'), ROLE.Reader, vmReader.objectId);
    });
    after(async () => t.close());

    it('invariant: read, write and delete of a resource are checked as {namespace}/{type}/{verb} at its id', async () => {
      const c = contributor;
      assert.equal((await call(t, 'GET', `${vm('rg-a', 'vm')}?${V}`, c.token)).status, 200);
      assert.equal((await call(t, 'PUT', `${vm('rg-a', 'vm2')}?${V}`, c.token, { location: 'westeurope' })).status, 201);
      assert.equal((await call(t, 'DELETE', `${vm('rg-a', 'vm2')}?${V}`, c.token)).status, 200);
      expectAuthorizationFailed(await call(t, 'GET', `${vm('rg-b', 'vm')}?${V}`, c.token), c.appId, c.objectId, `${VM}/read`, vm('rg-b', 'vm'));
      expectAuthorizationFailed(
        await call(t, 'PUT', `${vm('rg-b', 'vm')}?${V}`, c.token, { location: 'westeurope' }),
        c.appId,
        c.objectId,
        `${VM}/write`,
        vm('rg-b', 'vm'),
      );
      expectAuthorizationFailed(await call(t, 'DELETE', `${vm('rg-b', 'vm')}?${V}`, c.token), c.appId, c.objectId, `${VM}/delete`, vm('rg-b', 'vm'));
      assert.equal((await call(t, 'GET', `${vm('rg-b', 'vm')}?${V}`, admin)).status, 200, 'still there');
      // A Reader of one resource reads it and nothing beside it, and changes nothing.
      const r = vmReader;
      assert.equal((await call(t, 'GET', `${vm('rg-a', 'vm')}?${V}`, r.token)).status, 200);
      expectAuthorizationFailed(
        await call(t, 'GET', `${rg('rg-a')}/providers/${SITE}/site?${V}`, r.token),
        r.appId,
        r.objectId,
        `${SITE}/read`,
        `${rg('rg-a')}/providers/${SITE}/site`,
      );
      expectAuthorizationFailed(
        await call(t, 'PUT', `${vm('rg-a', 'vm')}?${V}`, r.token, { location: 'westeurope' }),
        r.appId,
        r.objectId,
        `${VM}/write`,
        vm('rg-a', 'vm'),
      );
      expectAuthorizationFailed(await call(t, 'DELETE', `${vm('rg-a', 'vm')}?${V}`, r.token), r.appId, r.objectId, `${VM}/delete`, vm('rg-a', 'vm'));
    });

    it('invariant: lists show only the items the caller may read; an empty one is refused unless the caller may read at its scope', async () => {
      const sub = `/subscriptions/${t.subscriptionId}`;
      const r = vmReader;
      const mine = [vm('rg-a', 'vm')];
      for (const path of [`${sub}/resources`, `${rg('rg-a')}/resources`, `${sub}/providers/${VM}`, `${rg('rg-a')}/providers/${VM}`]) {
        const listed = await call(t, 'GET', `${path}?${V}`, r.token);
        assert.equal(listed.status, 200, `${path}: ${listed.body}`);
        assert.deepEqual(ids(listed), mine, path);
      }
      expectAuthorizationFailed(
        await call(t, 'GET', `${rg('rg-b')}/resources?${V}`, r.token),
        r.appId,
        r.objectId,
        'Microsoft.Resources/subscriptions/resources/read',
        rg('rg-b'),
      );
      expectAuthorizationFailed(await call(t, 'GET', `${rg('rg-b')}/providers/${VM}?${V}`, r.token), r.appId, r.objectId, `${VM}/read`, rg('rg-b'));
      expectAuthorizationFailed(await call(t, 'GET', `${sub}/providers/${SITE}?${V}`, r.token), r.appId, r.objectId, `${SITE}/read`, sub);
      // Contributor of rg-a: all of rg-a, and an empty list where it may read.
      const c = contributor;
      const all = await call(t, 'GET', `${sub}/resources?${V}`, c.token);
      assert.deepEqual(ids(all), [identity('rg-a', 'uami'), `${rg('rg-a')}/providers/${SITE}/site`, vm('rg-a', 'vm')].sort());
      assert.deepEqual(ids(await call(t, 'GET', `${rg('rg-a')}/providers/${VM}?${V}`, c.token)), [vm('rg-a', 'vm')]);
      const empty = await call(t, 'GET', `${rg('rg-a')}/providers/Microsoft.Storage/storageAccounts?${V}`, c.token);
      assert.equal(empty.status, 200, empty.body);
      assert.deepEqual(ids(empty), []);
    });

    it('invariant: attaching needs assign/action on every identity attached, checked before anything is written; detaching needs none', async () => {
      const c = contributor;
      const target = vm('rg-a', 'with-ids');
      const put = (uai: Record<string, unknown>) =>
        call(t, 'PUT', `${target}?${V}`, c.token, { location: 'westeurope', identity: { type: 'UserAssigned', userAssignedIdentities: uai } });
      const own = await put({ [identity('rg-a', 'uami')]: {} });
      assert.equal(own.status, 201, own.body);
      // The second identity is another group's: refused at it, whatever comes first, and nothing changes.
      for (const uai of [
        { [identity('rg-a', 'uami')]: {}, [identity('rg-b', 'uami')]: {} },
        { [identity('rg-b', 'uami')]: {}, [identity('rg-a', 'uami')]: {} },
      ]) {
        expectAuthorizationFailed(await put(uai), c.appId, c.objectId, ASSIGN_IDENTITY_ACTION, identity('rg-b', 'uami'));
      }
      assert.deepEqual(attachedOf(await call(t, 'GET', `${target}?${V}`, admin)), [identity('rg-a', 'uami').toLowerCase()]);
      // The admin attaches rg-b's identity; the Contributor may detach it (null) without any right on it, not keep it.
      const both = await call(t, 'PUT', `${target}?${V}`, admin, {
        location: 'westeurope',
        identity: { type: 'UserAssigned', userAssignedIdentities: { [identity('rg-a', 'uami')]: {}, [identity('rg-b', 'uami')]: {} } },
      });
      assert.equal(both.status, 200, both.body);
      expectAuthorizationFailed(
        await put({ [identity('rg-a', 'uami')]: {}, [identity('rg-b', 'uami')]: {} }),
        c.appId,
        c.objectId,
        ASSIGN_IDENTITY_ACTION,
        identity('rg-b', 'uami'),
      );
      const detached = await put({ [identity('rg-a', 'uami')]: {}, [identity('rg-b', 'uami')]: null });
      assert.equal(detached.status, 200, detached.body);
      assert.deepEqual(attachedOf(detached), [identity('rg-a', 'uami').toLowerCase()]);
    });
  });
}
