#!/usr/bin/env node
// RBAC authorisation decisions per second, in process (no HTTP), on a realistic tenant: 4,000 role assignments
// over 10 subscriptions × 20 resource groups × resources, the shipped built-in roles plus 50 custom roles with
// wildcards and notActions, 600 principals, 120 groups nested three deep (every principal in 1–3 groups),
// 20 deny assignments. 10,000 distinct requests (a mix of control-plane and data actions; granted, not
// granted and denied; see `outcomes`). Three measurements over the same requests:
//   - baseline: the bare, pure `evaluate(index, request)` on a pre-built index;
//   - warm:     `authorizer.check` with every decision cached (the hot path);
//   - after invalidation: a change notification, then the next 1,000 distinct checks (the first waits for
//     the reload + index build; the rest evaluate on the fresh state and fill the cache). Also the time from
//     the notification to the first decision.
// The state source is in memory, so the store's own load time (rbac-store's) is not included.
//
//   npm run bench:rbac               # builds, then runs this
//   BENCH_ROUNDS=5 node bench/rbac-decisions.mjs
import { fileURLToPath } from 'node:url';

const root = new URL('..', import.meta.url);
const dist = (p) => fileURLToPath(new URL(`dist/rbac/${p}`, root));
const { createAuthorizer } = await import(dist('authorizer.js'));
const { evaluate, indexState } = await import(dist('evaluate.js'));
const { BUILTIN_ROLES, BUILTIN_ROLE_IDS } = await import(dist('builtin-roles.js'));

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const T = '7c1f3a52-55d1-4c55-9fb0-2b3a4c5d6e7f';

// Deterministic pseudo-random numbers (mulberry32), so every run measures the same state and requests.
let seed = 0x5eed;
const rand = () => {
  seed |= 0;
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = (a) => a[Math.floor(rand() * a.length)];
const guid = (prefix, i) => `${prefix}${i.toString(16).padStart(7, '0')}-0000-4000-8000-000000000000`;

const subs = Array.from({ length: 10 }, (_, i) => `/subscriptions/${guid('5', i)}`);
const rgs = subs.flatMap((s) => Array.from({ length: 20 }, (_, j) => `${s}/resourceGroups/rg-${j}`));
const types = [
  ['Microsoft.ManagedIdentity', 'userAssignedIdentities'],
  ['Microsoft.KeyVault', 'vaults'],
  ['Microsoft.Storage', 'storageAccounts'],
  ['Microsoft.Compute', 'virtualMachines'],
  ['Microsoft.Network', 'virtualNetworks'],
];
const resources = rgs.flatMap((rg) =>
  Array.from({ length: 5 }, (_, k) => {
    const [ns, t] = types[k];
    return `${rg}/providers/${ns}/${t}/r${k}`;
  }),
);
const principals = Array.from({ length: 600 }, (_, i) => guid('a', i));
const groups = Array.from({ length: 120 }, (_, i) => guid('9', i));

const customRoles = Array.from({ length: 50 }, (_, i) => ({
  id: guid('c', i),
  roleName: `Custom ${i}`,
  roleType: 'CustomRole',
  description: 'bench',
  permissions: [
    {
      actions: [`${types[i % 5][0]}/*`, '*/read', `Microsoft.Support/*`, `Microsoft.Custom${i}/things/*/action`],
      notActions: [`${types[i % 5][0]}/*/delete`, 'Microsoft.Authorization/*/write'],
      dataActions: i % 3 === 0 ? ['Microsoft.KeyVault/vaults/secrets/*'] : [],
      notDataActions: i % 6 === 0 ? ['Microsoft.KeyVault/vaults/secrets/delete'] : [],
    },
  ],
  assignableScopes: [subs[i % subs.length]],
  tenantId: T,
}));
const builtinIds = Object.values(BUILTIN_ROLE_IDS);

const roleAssignments = Array.from({ length: 4000 }, (_, i) => {
  const custom = rand() < 0.3;
  const role = custom ? pick(customRoles) : { id: pick(builtinIds), assignableScopes: ['/'] };
  const base = custom ? role.assignableScopes[0] : pick(subs);
  const r = rand();
  const scope = r < 0.1 ? base : r < 0.6 ? pick(rgs.filter((g) => g.startsWith(base + '/'))) : pick(resources.filter((x) => x.startsWith(base + '/')));
  return {
    id: guid('e', i),
    tenantId: T,
    scope,
    roleDefinitionId: role.id,
    principalId: rand() < 0.25 ? pick(groups) : pick(principals),
    principalType: 'User',
    description: null,
    createdAt: 0,
    createdBy: 'bench',
  };
});
const groupMemberships = [
  // Nested three deep: groups 0–39 are members of 40–79, which are members of 80–119.
  ...groups.slice(0, 80).map((g, i) => ({ groupId: groups[40 + (i % 40) + (i >= 40 ? 40 : 0)] ?? groups[119], memberId: g })),
  ...principals.flatMap((p) => Array.from({ length: 1 + Math.floor(rand() * 3) }, () => ({ groupId: pick(groups.slice(0, 80)), memberId: p }))),
];
const denyAssignments = Array.from({ length: 20 }, (_, i) => ({
  id: guid('d', i),
  tenantId: T,
  denyAssignmentName: `deny-${i}`,
  description: 'bench',
  scope: pick(rgs),
  permissions: [{ actions: ['*/delete'], notActions: [], dataActions: ['Microsoft.KeyVault/vaults/secrets/delete'], notDataActions: [] }],
  principals: [{ id: i % 4 === 0 ? '00000000-0000-0000-0000-000000000000' : pick(groups), type: 'Group' }],
  excludePrincipals: i % 4 === 0 ? [{ id: pick(groups), type: 'Group' }] : [],
  doNotApplyToChildScopes: i % 5 === 0,
  isSystemProtected: false,
}));

let version = 1;
const makeState = () => ({
  tenantId: T,
  roleDefinitions: [...BUILTIN_ROLES, ...customRoles],
  roleAssignments: [...roleAssignments],
  denyAssignments: [...denyAssignments],
  groupMemberships: [...groupMemberships],
  version,
});
const listeners = new Set();
const source = {
  load: async () => makeState(),
  version: async () => version,
  onChange(l) {
    listeners.add(l);
    return () => listeners.delete(l);
  },
};
const notify = () => {
  version++;
  for (const l of listeners) l(T);
};

const actions = [
  ['Microsoft.ManagedIdentity/userAssignedIdentities/write', false],
  ['Microsoft.ManagedIdentity/userAssignedIdentities/read', false],
  ['Microsoft.Compute/virtualMachines/delete', false],
  ['Microsoft.Network/virtualNetworks/subnets/read', false],
  ['Microsoft.Authorization/roleAssignments/write', false],
  ['Microsoft.KeyVault/vaults/secrets/getSecret/action', true],
  ['Microsoft.KeyVault/vaults/secrets/delete', true],
  ['Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read', true],
];
// Two thirds of the requests come from someone who holds an assignment, at or below its scope (as real
// traffic does); the rest are random principals and resources (mostly refused).
const direct = roleAssignments.filter((a) => principals.includes(a.principalId));
const requests = Array.from({ length: 10_000 }, () => {
  const [action, isDataAction] = pick(actions);
  if (rand() < 2 / 3) {
    const a = pick(direct);
    const below = resources.filter((x) => x === a.scope || x.startsWith(a.scope + '/'));
    return { tenantId: T, principalId: a.principalId, action, isDataAction, scope: pick(below) };
  }
  return { tenantId: T, principalId: pick(principals), action, isDataAction, scope: pick(resources) };
});

const now = () => performance.now();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Outcome mix (so the numbers are about a realistic blend, not all refusals).
const index = indexState(makeState());
const mix = { granted: 0, 'not-granted': 0, denied: 0 };
for (const r of requests) mix[evaluate(index, r).reason]++;

function baseline() {
  const t0 = now();
  let n = 0;
  while (now() - t0 < 1000)
    for (const r of requests) {
      evaluate(index, r);
      n++;
    }
  return (n / (now() - t0)) * 1000;
}

async function warm(authz) {
  for (const r of requests) await authz.check(r);
  const t0 = now();
  let n = 0;
  while (now() - t0 < 1000)
    for (const r of requests) {
      await authz.check(r);
      n++;
    }
  return (n / (now() - t0)) * 1000;
}

async function afterInvalidation(authz) {
  const firsts = [];
  const rates = [];
  for (let i = 0; i < 20; i++) {
    const batch = requests.slice((i * 1000) % requests.length, ((i * 1000) % requests.length) + 1000);
    const t0 = now();
    notify();
    await authz.check(batch[0]);
    firsts.push(now() - t0);
    for (let j = 1; j < batch.length; j++) await authz.check(batch[j]);
    rates.push((batch.length / (now() - t0)) * 1000);
  }
  return { firstDecisionMs: median(firsts), decisionsPerSecond: median(rates) };
}

const runs = [];
for (let round = 0; round < rounds; round++) {
  const authz = createAuthorizer({ source, timer: false });
  const b = baseline();
  const w = await warm(authz);
  const inv = await afterInvalidation(authz);
  runs.push({
    baselineEvaluatePerSecond: Math.round(b),
    warmCheckPerSecond: Math.round(w),
    afterInvalidation: { firstDecisionMs: +inv.firstDecisionMs.toFixed(2), first1000DecisionsPerSecond: Math.round(inv.decisionsPerSecond) },
    stats: authz.stats(),
  });
  authz.close();
}

// Index build time, measured after the rounds (warm JIT).
const indexBuild = (() => {
  const times = [];
  for (let i = 0; i < 10; i++) {
    const s = makeState();
    const t0 = now();
    indexState(s);
    times.push(now() - t0);
  }
  return median(times);
})();

const med = (f) => median(runs.map(f));
console.log(
  JSON.stringify(
    {
      node: process.version,
      state: {
        roleAssignments: roleAssignments.length,
        customRoles: customRoles.length,
        builtinRoles: BUILTIN_ROLES.length,
        principals: principals.length,
        groups: groups.length,
        memberships: groupMemberships.length,
        denyAssignments: denyAssignments.length,
      },
      requests: requests.length,
      outcomes: mix,
      indexBuildMs: +indexBuild.toFixed(2),
      median: {
        baselineEvaluatePerSecond: med((r) => r.baselineEvaluatePerSecond),
        warmCheckPerSecond: med((r) => r.warmCheckPerSecond),
        afterInvalidationFirstDecisionMs: med((r) => r.afterInvalidation.firstDecisionMs),
        afterInvalidationFirst1000PerSecond: med((r) => r.afterInvalidation.first1000DecisionsPerSecond),
      },
      ratio: {
        warmOverBaseline: +(med((r) => r.warmCheckPerSecond) / med((r) => r.baselineEvaluatePerSecond)).toFixed(2),
        afterInvalidationOverBaseline: +(med((r) => r.afterInvalidation.first1000DecisionsPerSecond) / med((r) => r.baselineEvaluatePerSecond)).toFixed(3),
      },
      runs,
    },
    null,
    2,
  ),
);
