/**
 * Key Vault references through `openmsi run` with a real stack: the authority serving its vaults, a separate
 * `openmsi agent` process, and the built CLI. The parser and the resolution pass alone are
 * test/cli/references.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { openmsiJson, removeDir, startAgentProcess, type AgentProcess } from '../../support/agent-process.js';
import { BUILT_MAIN } from '../../support/cli.js';
import { REPO_ROOT as ROOT } from '../../support/paths.js';

/** CMD: prints the variables it was asked about as one JSON line. */
const PRINT_ENV = 'console.log(JSON.stringify(Object.fromEntries(process.argv.slice(1).map((k) => [k, process.env[k] ?? null]))))';

interface RunResult {
  code: number;
  env: Record<string, string | null>;
  stderr: string;
}

/** `openmsi run --identity app-id [args] -- node -e PRINT_ENV NAMES...` with `env` added to the inherited environment. */
function runWithReferences(dataDir: string, names: string[], env: Record<string, string>, extra: string[] = []): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [BUILT_MAIN, 'run', '--identity', 'app-id', '--data-dir', dataDir, ...extra, '--', process.execPath, '-e', PRINT_ENV, ...names],
      // OPENMSI_DATA_DIR empty: the vault domain is found without the authority's data dir (the default, vault.localhost).
      { cwd: ROOT, env: { ...process.env, OPENMSI_DATA_DIR: '', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        const line = stdout.split('\n').find((l) => l.startsWith('{')) ?? '{}';
        resolvePromise({ code, env: JSON.parse(line) as Record<string, string | null>, stderr });
      },
    );
  });
}

/** Every file under `dir`, as bytes decoded leniently (the SQLite database and its WAL included). */
function filesContaining(dir: string, needle: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .filter((path) => readFileSync(path).includes(Buffer.from(needle, 'utf8')));
}

describe('openmsi run resolves Key Vault references with the identity it is given', () => {
  let t: TestAuthority;
  let agent: AgentProcess;
  let work: string;
  let port: string;
  // Random, so that finding it anywhere can only mean it leaked from this run.
  const value = `kv-ref-${randomUUID()}`;
  const older = `kv-ref-old-${randomUUID()}`;
  const forbidden = `kv-ref-forbidden-${randomUUID()}`;
  let olderVersion: string;

  before(async () => {
    t = await startTestAuthority();
    port = new URL(t.url).port;
    work = mkdtempSync(join(tmpdir(), 'openmsi-refs-'));
    await openmsiJson(t, ['group', 'create', '-n', 'refs-rg', '-l', 'local']);
    const app = await openmsiJson<{ principalId: string }>(t, ['identity', 'create', '-n', 'app-id', '-g', 'refs-rg']);
    const vault = await openmsiJson<{ id: string }>(t, ['keyvault', 'create', '-g', 'refs-rg', '-n', 'refs-vault']);
    const locked = await openmsiJson<{ id: string }>(t, ['keyvault', 'create', '-g', 'refs-rg', '-n', 'refs-locked']);
    for (const scope of [vault.id, locked.id]) {
      await openmsiJson(t, ['role', 'assignment', 'create', '--assignee', t.admin.clientId, '--role', 'Key Vault Secrets Officer', '--scope', scope]);
    }
    const first = await openmsiJson<{ id: string }>(t, ['keyvault', 'secret', 'set', '--vault-name', 'refs-vault', '-n', 'db-password', '--value', older]);
    olderVersion = first.id.split('/').pop() ?? '';
    await openmsiJson(t, ['keyvault', 'secret', 'set', '--vault-name', 'refs-vault', '-n', 'db-password', '--value', value]);
    await openmsiJson(t, ['keyvault', 'secret', 'set', '--vault-name', 'refs-locked', '-n', 'other', '--value', forbidden]);
    // app-id reads refs-vault only; refs-locked has no assignment for it.
    await openmsiJson(t, ['role', 'assignment', 'create', '--assignee', app.principalId, '--role', 'Key Vault Secrets User', '--scope', vault.id]);
    const join_ = await openmsiJson<{ token: string }>(t, ['host', 'join-token', 'create', '-g', 'refs-rg', '-n', 'refs-01']);
    await openmsiJson(t, ['vm', 'identity', 'assign', '-g', 'refs-rg', '-n', 'refs-01', '--identities', 'app-id']);
    agent = await startAgentProcess(t, { joinToken: join_.token });
  });
  after(async () => {
    await agent?.stop();
    if (agent !== undefined) removeDir(agent.dataDir);
    await t?.close();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('gives CMD the values of resolvable references; wrong vault, missing and forbidden secrets stay literal, each named on stderr', async () => {
    const refs = {
      BY_URI: '@Microsoft.KeyVault(SecretUri=https://refs-vault.vault.azure.net/secrets/db-password)',
      BY_OPENMSI_URI: `@Microsoft.KeyVault(SecretUri=https://refs-vault.vault.localhost:${port}/secrets/db-password/)`,
      BY_NAME: '@Microsoft.KeyVault(VaultName=Refs-Vault; SecretName=db-password)',
      PINNED: `@Microsoft.KeyVault(SecretUri=https://refs-vault.vault.azure.net/secrets/db-password/${olderVersion})`,
      WRONG_VAULT: '@Microsoft.KeyVault(VaultName=no-such-vault;SecretName=db-password)',
      MISSING: '@Microsoft.KeyVault(VaultName=refs-vault;SecretName=nope)',
      MISSING_VERSION: `@Microsoft.KeyVault(VaultName=refs-vault;SecretName=db-password;SecretVersion=${'0'.repeat(32)})`,
      FORBIDDEN: '@Microsoft.KeyVault(VaultName=refs-locked;SecretName=other)',
      BAD_SYNTAX: '@Microsoft.KeyVault(SecretUri=http://refs-vault.vault.azure.net/secrets/db-password)',
      EMBEDDED: 'x @Microsoft.KeyVault(VaultName=refs-vault;SecretName=db-password)',
    };
    const result = await runWithReferences(agent.dataDir, Object.keys(refs), refs);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.env, {
      BY_URI: value,
      BY_OPENMSI_URI: value,
      BY_NAME: value,
      PINNED: older,
      WRONG_VAULT: refs.WRONG_VAULT,
      MISSING: refs.MISSING,
      MISSING_VERSION: refs.MISSING_VERSION,
      FORBIDDEN: refs.FORBIDDEN,
      BAD_SYNTAX: refs.BAD_SYNTAX,
      EMBEDDED: refs.EMBEDDED,
    });
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 5, result.stderr);
    assert.match(lines[0] ?? '', /^openmsi: WRONG_VAULT: VaultNotFound \(VaultNotFound\) No vault is served at 'no-such-vault\.vault\.localhost/);
    assert.match(lines[1] ?? '', /^openmsi: MISSING: SecretNotFound \(SecretNotFound\) A secret with \(name\/id\) nope was not found/);
    assert.match(lines[2] ?? '', /^openmsi: MISSING_VERSION: SecretVersionNotFound \(SecretNotFound\) /);
    assert.match(lines[3] ?? '', /^openmsi: FORBIDDEN: AccessToKeyVaultDenied \(Forbidden\/ForbiddenByRbac\) Caller is not authorized/);
    assert.match(lines[4] ?? '', /^openmsi: BAD_SYNTAX: InvalidSyntax SecretUri must be https:\/\//);
    for (const secret of [value, older, forbidden]) assert.ok(!result.stderr.includes(secret), 'no value on stderr');
  });

  it('reads --env-file (later files win) and, with --strict, exits 78 without starting CMD', async () => {
    const first = join(work, 'first.env');
    const second = join(work, 'second.env');
    writeFileSync(first, '# app settings\nexport DB=@Microsoft.KeyVault(VaultName=refs-vault;SecretName=db-password)\nMODE="first"\n');
    writeFileSync(second, "MODE='second'\n");
    const ok = await runWithReferences(agent.dataDir, ['DB', 'MODE'], {}, ['--env-file', first, '--env-file', second, '--strict']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(ok.env, { DB: value, MODE: 'second' });
    assert.equal(ok.stderr, '');

    writeFileSync(second, 'OTHER=@Microsoft.KeyVault(VaultName=refs-locked;SecretName=other)\n');
    const strict = await runWithReferences(agent.dataDir, ['DB'], {}, ['--env-file', first, '--env-file', second, '--strict']);
    assert.equal(strict.code, 78, strict.stderr);
    assert.deepEqual(strict.env, {}, 'CMD did not run');
    assert.match(
      strict.stderr,
      /^openmsi: OTHER: AccessToKeyVaultDenied .*\nopenmsi run: 1 Key Vault reference\(s\) did not resolve; --strict: .* not started\n$/,
    );

    const missing = await runWithReferences(agent.dataDir, ['DB'], {}, ['--env-file', join(work, 'nope.env')]);
    // Node itself reads `--env-file` anywhere in argv and exits 9 on a missing file before openmsi runs
    // (nodejs/node#54232); where it does not, openmsi refuses it (exit 1). Either way CMD does not start.
    assert.ok(missing.code === 9 || missing.code === 1, `${String(missing.code)}: ${missing.stderr}`);
    assert.match(missing.stderr, /nope\.env: (not found|ENOENT)/);
    assert.deepEqual(missing.env, {});
  });

  it('the values are in no file of the data dirs: logs, spool, the SQLite database and its WAL', () => {
    // The runs above read each secret at least once; the audit records the reads by name only.
    for (const dir of [t.dataDir, agent.dataDir]) {
      for (const secret of [value, older, forbidden]) assert.deepEqual(filesContaining(dir, secret), [], `a value in ${dir}`);
    }
    assert.ok(!t.logLines.join('\n').includes(value), 'no value in the authority log');
    assert.ok(!agent.output().includes(value), 'no value in the agent output');
    assert.ok(filesContaining(t.dataDir, 'db-password').length > 0, 'the scan reads the database: the secret name is there');
  });
});
