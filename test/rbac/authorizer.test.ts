import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationRequest, RbacState, RbacStateSource, RoleAssignment } from '../../src/rbac/contracts.js';
import { createAuthorizer } from '../../src/rbac/authorizer.js';
import { BUILTIN_ROLE_IDS as R, BUILTIN_ROLES } from '../../src/rbac/builtin-roles.js';
import { ScopeError } from '../../src/rbac/scopes.js';
import { FakeClock } from '../../src/shared/clock.js';

const T = 'tenant-1';
const RG = '/subscriptions/0e2f8d1c-3b4a-4c5d-8e9f-a0b1c2d3e4f5/resourceGroups/rg-a';
const UAI = `${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1`;
const ALICE = 'a11ce000-0000-0000-0000-000000000001';
const WRITE: AuthorizationRequest = {
  tenantId: T,
  principalId: ALICE,
  action: 'Microsoft.ManagedIdentity/userAssignedIdentities/write',
  isDataAction: false,
  scope: UAI,
};

function assignment(id: string, roleDefinitionId: string): RoleAssignment {
  return {
    id,
    tenantId: T,
    scope: RG,
    roleDefinitionId,
    principalId: ALICE,
    principalType: 'ServicePrincipal',
    description: null,
    createdAt: 0,
    createdBy: 'test',
  };
}

/** A test double of the store: in-memory state per tenant, a version bumped by every write, in-process notifications. */
class MemorySource implements RbacStateSource {
  assignments: RoleAssignment[] = [];
  version_ = 1;
  loads = 0;
  /** When set, each load waits for `release()` before answering with the state as it was when the load began. */
  gate: { promise: Promise<void>; release: () => void } | undefined;
  readonly #listeners = new Set<(tenantId: string) => void>();

  snapshot(): RbacState {
    return {
      tenantId: T,
      roleDefinitions: BUILTIN_ROLES,
      roleAssignments: [...this.assignments],
      denyAssignments: [],
      groupMemberships: [],
      version: this.version_,
    };
  }

  async load(tenantId: string): Promise<RbacState> {
    assert.equal(tenantId, T);
    this.loads++;
    const state = this.snapshot();
    if (this.gate) await this.gate.promise;
    else await Promise.resolve();
    return state;
  }

  version(): Promise<number> {
    return Promise.resolve(this.version_);
  }

  onChange(listener: (tenantId: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A committed write: bump the version and, unless told otherwise (a missed notification), notify. */
  write(change: () => void, notify = true): void {
    change();
    this.version_++;
    if (notify) for (const l of this.#listeners) l(T);
  }

  hold(): void {
    let release!: () => void;
    const promise = new Promise<void>((r) => (release = r));
    this.gate = { promise, release };
  }
}

function setup(reconcileMs = 5000) {
  const source = new MemorySource();
  source.assignments = [assignment('ra-1', R.ManagedIdentityContributor)];
  const clock = new FakeClock();
  const authorizer = createAuthorizer({ source, clock, reconcileMs, timer: false });
  return { source, clock, authorizer };
}

describe('authorizer', () => {
  it('decides like evaluate, and a cache hit does not call load', async () => {
    const { source, authorizer } = setup();
    assert.deepEqual(await authorizer.check(WRITE), { allowed: true, reason: 'granted', assignmentId: 'ra-1' });
    assert.equal(source.loads, 1);
    for (let i = 0; i < 100; i++) assert.equal((await authorizer.check({ ...WRITE })).allowed, true);
    assert.equal(source.loads, 1);
    const s = authorizer.stats();
    assert.equal(s.hits, 100);
    assert.equal(s.misses, 1);
    // A case variant is evaluated (case-insensitively) on the loaded state: same decision, no load.
    assert.equal((await authorizer.check({ ...WRITE, scope: UAI.toUpperCase() + '/', action: WRITE.action.toUpperCase() })).allowed, true);
    // A different request is a miss evaluated on the loaded state, still without a load.
    assert.equal((await authorizer.check({ ...WRITE, action: 'Microsoft.ManagedIdentity/userAssignedIdentities/delete' })).allowed, true);
    assert.equal((await authorizer.check({ ...WRITE, isDataAction: true })).reason, 'not-granted', 'the data plane is cached apart');
    assert.equal(source.loads, 1);
    authorizer.close();
  });

  it('a change notification makes the very next check see the change (revocation refused at once)', async () => {
    const { source, authorizer } = setup();
    assert.equal((await authorizer.check(WRITE)).allowed, true);
    source.write(() => (source.assignments = []));
    assert.deepEqual(await authorizer.check(WRITE), { allowed: false, reason: 'not-granted' });
    source.write(() => (source.assignments = [assignment('ra-2', R.Owner)]));
    assert.deepEqual(await authorizer.check(WRITE), { allowed: true, reason: 'granted', assignmentId: 'ra-2' });
    authorizer.close();
  });

  it('a load in flight when a change is notified is discarded, never served', async () => {
    const { source, authorizer } = setup();
    source.hold();
    const pending = authorizer.check(WRITE); // loads the state with ra-1, held
    await new Promise((r) => setImmediate(r));
    source.write(() => (source.assignments = []));
    const gate = source.gate!;
    source.gate = undefined;
    gate.release();
    assert.deepEqual(await pending, { allowed: false, reason: 'not-granted' });
    assert.equal(source.loads, 2);
    authorizer.close();
  });

  it('reconciliation picks up a change made without a notification within reconcileMs', async () => {
    const { source, clock, authorizer } = setup(5000);
    assert.equal((await authorizer.check(WRITE)).allowed, true);
    source.write(() => (source.assignments = []), false); // another replica's write whose NOTIFY was missed
    clock.advance(4999);
    await authorizer.reconcile();
    assert.equal((await authorizer.check(WRITE)).allowed, true, 'not yet due: still the cached decision');
    assert.equal(source.loads, 1);
    clock.advance(1);
    await authorizer.reconcile();
    assert.deepEqual(await authorizer.check(WRITE), { allowed: false, reason: 'not-granted' });
    assert.equal(source.loads, 2);
    // Unchanged version: reconciliation compares and keeps the state.
    clock.advance(5000);
    await authorizer.reconcile();
    await authorizer.check(WRITE);
    assert.equal(source.loads, 2);
    assert.equal(authorizer.stats().reconciliations, 2);
    authorizer.close();
  });

  it('the real timer reconciles too', async () => {
    const source = new MemorySource();
    source.assignments = [assignment('ra-1', R.ManagedIdentityContributor)];
    const authorizer = createAuthorizer({ source, reconcileMs: 50 });
    assert.equal((await authorizer.check(WRITE)).allowed, true);
    source.write(() => (source.assignments = []), false);
    const deadline = Date.now() + 2000;
    while ((await authorizer.check(WRITE)).allowed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal((await authorizer.check(WRITE)).allowed, false);
    authorizer.close();
  });

  it('concurrent misses share one load', async () => {
    const { source, authorizer } = setup();
    source.hold();
    const all = Promise.all(
      Array.from({ length: 50 }, (_, i) => authorizer.check({ ...WRITE, action: `Microsoft.ManagedIdentity/userAssignedIdentities/op${i}/read` })),
    );
    await new Promise((r) => setImmediate(r));
    source.gate!.release();
    await all;
    assert.equal(source.loads, 1);
    authorizer.close();
  });

  it('refuses a malformed scope with InvalidScope, and fails closed when state cannot be loaded', async () => {
    const { source, authorizer } = setup();
    await assert.rejects(authorizer.check({ ...WRITE, scope: '/subscriptions//x' }), (e: unknown) => e instanceof ScopeError);
    source.load = () => Promise.reject(new Error('store down'));
    await assert.rejects(authorizer.check(WRITE), /store down/);
    authorizer.close();
  });

  it('permissionsAt returns the effective permissions from the loaded state', async () => {
    const { source, authorizer } = setup();
    const perms = await authorizer.permissionsAt(T, ALICE, UAI);
    assert.equal(perms.length, 1);
    assert.ok(perms[0]!.actions.includes('Microsoft.ManagedIdentity/userAssignedIdentities/write'));
    assert.deepEqual(await authorizer.permissionsAt(T, ALICE, RG.replace('rg-a', 'rg-b')), []);
    assert.equal(source.loads, 1);
    authorizer.close();
  });

  it('the decision cache is bounded', async () => {
    const source = new MemorySource();
    const authorizer = createAuthorizer({ source, clock: new FakeClock(), decisionCacheSize: 10, timer: false });
    for (let i = 0; i < 50; i++) await authorizer.check({ ...WRITE, action: `a/${i}/read` });
    assert.equal(authorizer.stats().cachedDecisions, 10);
    authorizer.close();
  });

  it('close unsubscribes from change notifications', async () => {
    const { source, authorizer } = setup();
    await authorizer.check(WRITE);
    authorizer.close();
    source.write(() => (source.assignments = []));
    assert.equal(authorizer.stats().invalidations, 0);
  });
});

describe('authorizer: mutation-found edges (bounds, generations, fail-closed loads)', () => {
  it('invariant: a non-positive reconcile interval or decision-cache size is refused at construction', () => {
    const source = new MemorySource();
    for (const reconcileMs of [0, -1, Number.NaN]) {
      assert.throws(
        () => createAuthorizer({ source, reconcileMs, timer: false }),
        (e: unknown) => e instanceof RangeError && /reconcileMs must be positive/.test(e.message),
        String(reconcileMs),
      );
    }
    for (const decisionCacheSize of [0, -1, Number.NaN]) {
      assert.throws(
        () => createAuthorizer({ source, decisionCacheSize, timer: false }),
        (e: unknown) => e instanceof RangeError && /decisionCacheSize must be positive/.test(e.message),
        String(decisionCacheSize),
      );
    }
    createAuthorizer({ source, reconcileMs: 1, decisionCacheSize: 1, timer: false }).close();
  });

  it('invariant: a state the source returns for another tenant is never used (fail closed)', async () => {
    const { source, authorizer } = setup();
    const snapshot = source.snapshot.bind(source);
    source.snapshot = () => ({ ...snapshot(), tenantId: 'tenant-2' });
    await assert.rejects(authorizer.check(WRITE), /returned tenant tenant-2 for tenant-1/);
    authorizer.close();
  });

  it('a failed load does not stick: the next check loads again', async () => {
    const { source, authorizer } = setup();
    const load = source.load.bind(source);
    source.load = () => Promise.reject(new Error('store down'));
    await assert.rejects(authorizer.check(WRITE), /store down/);
    source.load = load;
    assert.equal((await authorizer.check(WRITE)).allowed, true);
    authorizer.close();
  });

  it('a notification for a tenant never loaded is a no-op, never a throw', () => {
    const { authorizer } = setup();
    assert.doesNotThrow(() => authorizer.invalidate('tenant-never-seen'));
    assert.equal(authorizer.stats().invalidations, 0);
    authorizer.close();
  });

  it('stats count loads, invalidations and loaded tenants; an unchanged version does not reload; a closed authorizer does not reload', async () => {
    const { source, clock, authorizer } = setup(1000);
    await authorizer.check(WRITE);
    assert.deepEqual([authorizer.stats().loads, authorizer.stats().loadedTenants, authorizer.stats().invalidations], [1, 1, 0]);
    clock.advance(1000);
    await authorizer.reconcile();
    assert.deepEqual([source.loads, authorizer.stats().reconciliations, authorizer.stats().invalidations], [1, 1, 0], 'same version: kept');
    authorizer.invalidate(T); // open: reloads eagerly, before any check
    assert.equal(authorizer.stats().invalidations, 1);
    assert.equal(authorizer.stats().loadedTenants, 0);
    await new Promise((r) => setImmediate(r));
    assert.equal(source.loads, 2);
    assert.equal(authorizer.stats().loadedTenants, 1);
    authorizer.close();
    authorizer.close();
    authorizer.invalidate(T);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual([source.loads, authorizer.stats().loadedTenants], [2, 0], 'closed: dropped, not reloaded');
  });

  it('invariant: the real timer ticks at a fifth of reconcileMs, so a missed notification is refused within reconcileMs plus one tick', async () => {
    const source = new MemorySource();
    source.assignments = [assignment('ra-1', R.ManagedIdentityContributor)];
    const authorizer = createAuthorizer({ source, reconcileMs: 200 });
    try {
      assert.equal((await authorizer.check(WRITE)).allowed, true);
      const start = Date.now();
      source.write(() => (source.assignments = []), false);
      const deadline = start + 2000;
      while ((await authorizer.check(WRITE)).allowed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const elapsed = Date.now() - start;
      assert.equal((await authorizer.check(WRITE)).allowed, false);
      assert.ok(elapsed < 700, `refused after ${elapsed} ms (bound 200 ms + a 40 ms tick)`);
    } finally {
      authorizer.close();
    }
  });
});
