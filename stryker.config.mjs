// Mutation testing of the security-critical modules: `npm run mutation` (not part of `npm test` or CI's
// default run). See docs/testing.md. The modules are split into groups, each with its own short list of the
// test files that exercise it, so Stryker's initial run and each mutant's re-run stay fast:
//
//   npm run mutation                    every group, one after the other (scripts/mutation.mjs)
//   npm run mutation -- vault rbac      some groups
//   OPENMSI_MUTATION_GROUP=vault npx stryker run --mutate src/vault/authorize.ts   one module of a group
//
// The tap runner runs each test file as `node --import tsx <file>` with node:test's TAP reporter, and with
// coverageAnalysis 'perTest' it only re-runs, for each mutant, the test files that executed its code.

// The end-to-end suites run on SQLite only here (their PostgreSQL variants report a skip): the PostgreSQL runs
// would double the time and add nothing to what a mutant of these modules can change. Stryker's workers, and
// the test processes they start, inherit this process's environment.
delete process.env.OPENMSI_TEST_POSTGRES_URL;

/**
 * The security decisions, by group: each group names the modules mutated and the test files that decide
 * whether a mutant of them survives.
 * @type {Record<string, { mutate: string[]; testFiles: string[] }>}
 */
export const GROUPS = {
  verifier: {
    mutate: ['src/shared/token-verifier.ts'],
    testFiles: ['test/shared/token-verifier.test.ts', 'test/authority/key-revocation.test.ts'],
  },
  keys: {
    mutate: ['src/authority/keys/key-ring.ts', 'src/authority/keys/rotation.ts'],
    // The unit tests of the ring and the rotator only: the end-to-end revocation file (an HTTPS authority per
    // run) re-checked what they check, at three times the cost per mutant, and Stryker did not finish with it.
    testFiles: ['test/authority/keys/rotation.test.ts'],
  },
  // The token endpoint's grants: which identity a host may get a token for, and an application's token, against a
  // store-less unit file (a fake context, real host keys and the real assertion check). The end-to-end files
  // (client-auth-throttle, token-endpoint, managed-identity-grant, urls, host-api) took minutes a mutant and never
  // finished; client authentication, assertions, host authentication, the resource rule and the throttle are
  // their own groups.
  authority: {
    mutate: ['src/authority/grants/client-credentials.ts', 'src/authority/grants/managed-identity.ts'],
    testFiles: ['test/authority/grants/grants.test.ts'],
  },
  // Host API authentication (a host assertion of a live credential of an existing host), split out of `authority`
  // with a store-less unit file.
  'host-auth': {
    mutate: ['src/authority/hosts/authenticate.ts'],
    testFiles: ['test/authority/hosts/authenticate.test.ts'],
  },
  // Client authentication at the token endpoint (which method, which client, which credential, whose failure is
  // counted), split out of `authority` with a store-less unit file (a fake context, the real master key and
  // assertion check).
  'client-auth': {
    mutate: ['src/authority/token/client-auth.ts'],
    testFiles: ['test/authority/token/client-auth.test.ts'],
  },
  // The one JWT-bearer assertion check (applications' certificates, hosts' keys), split out of `authority` with a
  // store-less unit file: real signatures, a fake clock, an in-memory replay store.
  assertion: {
    mutate: ['src/authority/token/assertion.ts'],
    testFiles: ['test/authority/token/assertion.test.ts'],
  },
  // What a token request may name as its audience (the token endpoint's rule, and the syntax the agent shares).
  resource: {
    mutate: ['src/authority/token/resource.ts', 'src/shared/resource.ts'],
    testFiles: ['test/authority/token/resource.test.ts'],
  },
  // Failed-client-authentication throttling: its store-less unit tests decide (the HTTPS file adds minutes a mutant).
  throttle: {
    mutate: ['src/authority/token/throttle.ts'],
    testFiles: ['test/authority/token/throttle.test.ts'],
  },
  // Log redaction, the audit writer, refusal aggregation and the agents' audit ingestion, against store-less unit
  // files (milliseconds each); the route's own file (an authority per run, 4 s) last, for its handler. The
  // end-to-end redaction, refusal-flood and token-endpoint files took minutes a mutant and never finished.
  audit: {
    mutate: ['src/shared/logger.ts', 'src/store/audit-writer.ts', 'src/authority/refusal-audit.ts', 'src/authority/hosts/audit.ts'],
    testFiles: [
      'test/shared/logger.test.ts',
      'test/store/audit-writer.test.ts',
      'test/authority/refusal-audit-unit.test.ts',
      'test/authority/hosts/audit-records.test.ts',
      'test/authority/hosts/audit.test.ts',
    ],
  },
  // The management API's edge for resource ids (the canonical-id rule of issue 15's first finding), split out of
  // `management` with its store-less unit file; the end-to-end spellings file stays in `npm test`.
  // The management API's bearer authentication (who is admitted, each refusal, the challenge's tenant), split out
  // of `management` with its store-less unit files (a fake verifier and store).
  'management-authn': {
    mutate: ['src/management/authenticate.ts'],
    testFiles: ['test/management/authenticate.test.ts', 'test/management/authenticate-hook.test.ts'],
  },
  'management-ids': {
    mutate: ['src/management/resource-ids.ts'],
    testFiles: ['test/management/resource-ids-unit.test.ts'],
  },
  // Who may change a custom role (a tenant object: write or delete at every existing and requested assignable
  // scope, rechecked in the write's transaction), split out of `management` with a store-less unit file (the
  // real routes over the management harness and in-memory repositories).
  'management-roles': {
    mutate: ['src/management/role-definitions.ts'],
    testFiles: ['test/management/role-definitions-unit.test.ts'],
  },
  // Who may create or delete a deny assignment (write or delete at the tenant root, wherever it is placed), split
  // out of `management` with a store-less unit file (the real routes over the management harness and in-memory
  // repositories; the bootstrap admin's break-glass is authorize.ts's, exercised through them).
  'management-deny': {
    mutate: ['src/management/deny-assignments.ts'],
    testFiles: ['test/management/deny-assignments-unit.test.ts'],
  },
  // Who may create a join token (machines/write, and assign/action on each identity already on the machine, rechecked
  // in the token's transaction), list and revoke host credentials, split out of `management` with a unit file
  // over the management harness and an in-memory SQLite store.
  'management-hosts': {
    mutate: ['src/management/hosts.ts'],
    testFiles: ['test/management/hosts-unit.test.ts'],
  },
  // Outbound federation links (which identity is linked, by whom: a write on the identity; every field checked;
  // the export's source), against a unit file over the management harness and an in-memory SQLite store.
  'management-federation': {
    mutate: ['src/management/federation-links.ts'],
    testFiles: ['test/management/federation-links-unit.test.ts'],
  },
  management: {
    mutate: ['src/management/authorize.ts', 'src/management/authorization-common.ts', 'src/management/resources.ts'],
    testFiles: [
      // Fast, store-less unit tests of the authorisation hooks first: most mutants of authorize.ts and
      // authorization-common.ts die there in seconds, before the end-to-end files run.
      'test/management/authorize.test.ts',
      'test/management/authorization-common.test.ts',
      'test/management/resources.test.ts',
      'test/management/resource-ids.test.ts',
      'test/management/role-definitions.test.ts',
      'test/management/deny-assignments.test.ts',
      'test/management/role-assignments.test.ts',
      'test/management/hosts.test.ts',
      'test/management/management.test.ts',
      'test/management/vaults.test.ts',
      'test/rbac/authz/control-plane.test.ts',
    ],
  },
  rbac: {
    mutate: ['src/rbac/evaluate.ts', 'src/rbac/scopes.ts', 'src/rbac/authorizer.ts'],
    testFiles: ['test/rbac/evaluate.test.ts', 'test/rbac/scopes.test.ts', 'test/rbac/authorizer.test.ts', 'test/rbac/actions.test.ts'],
  },
  vault: {
    mutate: ['src/vault/authenticate.ts', 'src/vault/authorize.ts', 'src/vault/secret-cipher.ts', 'src/vault/secret-cache.ts', 'src/vault/vault-cache.ts'],
    // The unit files first: a mutant they kill is not run through the end-to-end files.
    testFiles: [
      'test/vault/caches.test.ts',
      'test/vault/authorize.test.ts',
      'test/vault/secret-cipher.test.ts',
      'test/vault/tenants.test.ts',
      'test/vault/revocation.test.ts',
      'test/vault/protocol.test.ts',
      'test/vault/authz-lifecycle.test.ts',
    ],
  },
  // The vault's 401 challenge and accepted audiences, and secret restore (no backup crosses subscriptions), split
  // out of `vault` with store-less unit files (the end-to-end vault files start an authority per run).
  'vault-challenge': {
    mutate: ['src/vault/challenge.ts', 'src/vault/secrets/restore.ts'],
    testFiles: ['test/vault/challenge.test.ts', 'test/vault/secrets/restore.test.ts'],
  },
  // The keys data plane's security decisions: the key's own gates (key_ops, disabled, validity window), the
  // RSA1_5 unpadding with implicit rejection (no padding oracle) and EMSA-PSS, against store-less unit files
  // (the data-plane file starts an authority per run: about 10 s a mutant).
  'vault-keys': {
    mutate: ['src/vault/keys/operation.ts', 'src/vault/keys/crypto/pkcs1.ts', 'src/vault/keys/crypto/pss.ts'],
    testFiles: ['test/vault/keys/gates.test.ts', 'test/vault/keys/crypto-vectors.test.ts', 'test/vault/keys/crypto.test.ts'],
  },
  // The agent's token pipeline, against its fast unit tests (a fake surface context over the real cache and
  // rate limiter): the end-to-end agent suites each start an authority and an agent, 8 to 27 s per mutant.
  agent: {
    mutate: ['src/agent/surfaces/common.ts', 'src/agent/token-cache.ts'],
    testFiles: ['test/agent/unit.test.ts'],
  },
  // The agent's store-less edge decisions, split out of `agent-host` with their own unit files: the guard (peer,
  // proxy headers, Host), `openmsi run` sessions and secret digests, audit folding (what of an event reaches a
  // record, drop counts).
  'agent-edge': {
    mutate: ['src/agent/guard.ts', 'src/agent/sessions.ts', 'src/agent/secret-digest.ts', 'src/agent/audit/fold.ts'],
    testFiles: ['test/agent/guard-unit.test.ts', 'test/agent/runtime/sessions.test.ts', 'test/agent/audit/fold.test.ts'],
  },
  // The control API of `openmsi run` (loopback only, no proxy or browser, the control secret, the session stream
  // and its revocation on close), split out of `agent-host`, against its store-less unit file, then its runtime file
  // (a loopback harness, 1.5 s).
  'agent-control': {
    mutate: ['src/agent/control.ts'],
    testFiles: ['test/agent/control.test.ts', 'test/agent/runtime/control.test.ts'],
  },
  // Host enrolment and credentials in the directory (join tokens, the public-key rule, renewal, which credential
  // authenticates which host, revocation), against a unit file over an in-memory SQLite store (the real
  // repositories and transactions, no server): the host API's end-to-end file took minutes a mutant. The resource
  // rule (src/shared/resource.ts), once here too, is the `resource` group's.
  // Outbound assertions for a host's own linked identities only, against a unit file (the host API plugin on a bare
  // fastify over an in-memory SQLite store, a fake key ring, real host assertions).
  'federation-assertion': {
    mutate: ['src/authority/hosts/federation-assertion.ts'],
    testFiles: ['test/authority/hosts/federation-assertion.test.ts'],
  },
  'agent-host': {
    mutate: ['src/directory/hosts.ts'],
    testFiles: ['test/directory/hosts.test.ts'],
  },
};

/** Every mutated module, in group order. */
export const SECURITY_MODULES = Object.values(GROUPS).flatMap((g) => g.mutate);

const groupName = process.env.OPENMSI_MUTATION_GROUP;
if (groupName !== undefined && !(groupName in GROUPS)) {
  throw new Error(`OPENMSI_MUTATION_GROUP=${groupName} is not one of: ${Object.keys(GROUPS).join(', ')}`);
}
const group = groupName === undefined ? undefined : GROUPS[groupName];
const reportBase = `reports/mutation/${groupName ?? 'all'}`;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'tap',
  plugins: ['@stryker-mutator/tap-runner'],
  tap: {
    testFiles: group?.testFiles ?? [...new Set(Object.values(GROUPS).flatMap((g) => g.testFiles))],
    nodeArgs: ['--import', 'tsx', '--test-reporter=tap', '-r', '{{hookFile}}', '{{testFile}}'],
  },
  mutate: group?.mutate ?? SECURITY_MODULES,
  coverageAnalysis: 'perTest',
  // Two cores is what the test machines have; each test file starts its own HTTPS authority on a free port.
  concurrency: 2,
  timeoutMS: 60_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `${reportBase}.html` },
  jsonReporter: { fileName: `${reportBase}.json` },
  // A re-run after new tests re-tests only the mutants the change can affect (reports/mutation/{group}-incremental.json).
  incremental: true,
  incrementalFile: `${reportBase}-incremental.json`,
  tempDirName: `.stryker-tmp/${groupName ?? 'all'}`,
  cleanTempDir: 'always',
  // .stryker-tmp: another group's sandbox, when groups run in parallel (each has its own temp dir; without this a
  // run copies, or fails copying, the other's files).
  ignorePatterns: ['dist', 'bench', 'reports', '.openmsi', '*.log', '.stryker-tmp'],
  thresholds: { high: 90, low: 80, break: null },
};
