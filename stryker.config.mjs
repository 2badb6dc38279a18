// Mutation testing of the security-critical modules: `npm run mutation` (not part of `npm test` or CI's
// default run). See docs/testing.md. Scope one module with `npm run mutation -- --mutate src/shared/logger.ts`.
//
// The tap runner runs each test file below as `node --import tsx <file>` with node:test's TAP reporter, and
// with coverageAnalysis 'perTest' it only re-runs, for each mutant, the test files that executed its code.

// The end-to-end suites run on SQLite only here (their PostgreSQL variants report a skip): the PostgreSQL runs
// would double the time and add nothing to what a mutant of these modules can change. Stryker's workers, and
// the test processes they start, inherit this process's environment.
delete process.env.OPENMSI_TEST_POSTGRES_URL;

/** The security decisions: token verification, client and host authentication, grants, management
 * authentication, signing keys, log redaction, the audit trail, and the agent's guard, sessions, control API and
 * host enrolment. */
export const SECURITY_MODULES = [
  'src/shared/token-verifier.ts',
  'src/authority/token/client-auth.ts',
  'src/authority/token/assertion.ts',
  'src/authority/grants/client-credentials.ts',
  'src/authority/grants/managed-identity.ts',
  'src/management/authenticate.ts',
  'src/authority/keys/key-ring.ts',
  'src/authority/keys/rotation.ts',
  'src/shared/logger.ts',
  'src/store/audit-writer.ts',
  'src/authority/refusal-audit.ts',
  'src/agent/guard.ts',
  'src/agent/sessions.ts',
  'src/agent/secret-digest.ts',
  'src/agent/control.ts',
  'src/authority/hosts/authenticate.ts',
  'src/directory/hosts.ts',
  'src/vault/authenticate.ts',
  'src/vault/authorize.ts',
  'src/vault/challenge.ts',
  'src/vault/secret-cipher.ts',
];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'tap',
  plugins: ['@stryker-mutator/tap-runner'],
  tap: {
    testFiles: [
      'test/unit/token-verifier.test.ts',
      'test/unit/key-rotation.test.ts',
      'test/authority/log-redaction.test.ts',
      'test/authority/token-endpoint.test.ts',
      'test/authority/managed-identity-grant.test.ts',
      'test/authority/key-revocation.test.ts',
      'test/management/management.test.ts',
      'test/authority/refusal-audit.test.ts',
      'test/unit/logger.test.ts',
      'test/unit/authority-urls.test.ts',
      'test/agent/unit.test.ts',
      'test/agent/surfaces.test.ts',
      'test/agent-runtime/control.test.ts',
      'test/agent-runtime/sessions.test.ts',
      'test/hosts/host-api.test.ts',
      'test/vault/protocol.test.ts',
      'test/vault/authz-lifecycle.test.ts',
      'test/vault/secret-cipher.test.ts',
      'test/vault/authorize.test.ts',
    ],
    nodeArgs: ['--import', 'tsx', '--test-reporter=tap', '-r', '{{hookFile}}', '{{testFile}}'],
  },
  mutate: SECURITY_MODULES,
  coverageAnalysis: 'perTest',
  // Two cores is what the test machines have; each test file starts its own HTTPS authority on a free port.
  concurrency: 2,
  timeoutMS: 60_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  ignorePatterns: ['dist', 'bench', 'reports', '.openmsi', '*.log'],
  thresholds: { high: 90, low: 80, break: null },
};
