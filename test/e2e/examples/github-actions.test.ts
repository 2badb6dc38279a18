/**
 * examples/github-actions/workflow.yml run as a GitHub-hosted runner would run it, against a local stand-in for
 * GitHub: a loopback OIDC issuer (test/support/oidc-issuer.ts, issuer `https://127.0.0.1:PORT` with no path, as
 * `https://token.actions.githubusercontent.com` has none) and a loopback token request URL that, like the
 * Actions service, answers `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=…` with `Authorization: bearer
 * $ACTIONS_ID_TOKEN_REQUEST_TOKEN` by `{"value": "<jwt>"}`, a GitHub-shaped token for the job's repository and ref.
 *
 * The openmsi side is made with the real CLI as a user would: a user-assigned identity with a federated
 * credential for the issuer and the subject `repo:contoso/app:ref:refs/heads/main`, Key Vault Secrets User on a
 * vault holding the secret. The workflow is parsed with `yaml`; every `run:` step runs in order with bash
 * (`--noprofile --norc -eo pipefail`, as the runner does), with the job's `env:` (`${{ vars.NAME }}` filled in
 * from repository variables), what earlier steps appended to `$GITHUB_ENV`, and the GITHUB_* / RUNNER_* /
 * ACTIONS_ID_TOKEN_REQUEST_* variables a runner sets. Skipped: `uses:` steps (checkout, setup-node: this
 * repository is the checkout, and the node running the tests is on PATH) and the `install` step (no registry
 * here; this repository's node_modules has @azure/identity and @azure/keyvault-secrets).
 *
 * Test-only help, as in test/clients/sdk/workload-identity.test.ts: NODE_OPTIONS imports a resolver that maps
 * `*.localhost` (the vault's host) to 127.0.0.1, and every proxy variable points at a proxy that records and
 * refuses: nothing may leave the machine.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { parse } from 'yaml';
import { startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { openmsiJson } from '../../support/agent-process.js';
import { loopbackOnlyProxyEnv, refusingProxy } from '../../support/clients.js';
import { repoRoot } from '../../support/child-process.js';
import { startTestOidcIssuer, TOKEN_EXCHANGE_AUDIENCE, type TestOidcIssuer } from '../../support/oidc-issuer.js';

const WORKFLOW = join(repoRoot, 'examples', 'github-actions', 'workflow.yml');
const RESOLVER = join(repoRoot, 'test', 'clients', 'vault', 'fixtures', 'resolve-localhost.mjs');
const REPOSITORY = 'contoso/app';
const SECRET_VALUE = 'correct horse battery staple';

interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  env?: Record<string, string>;
}
interface Workflow {
  permissions?: Record<string, string>;
  jobs: Record<string, { env?: Record<string, string>; steps: Step[] }>;
}
interface StepRun {
  id: string;
  code: number | null;
  stdout: string;
  stderr: string;
}
/** What GitHub knows about a job: the claims its OIDC tokens carry besides iss/aud/iat/exp. */
interface Job {
  ref: string;
  environment?: string;
}

/** GitHub's `sub`: the environment form when the job has one, else the ref form. */
function githubSubject(job: Job): string {
  return job.environment !== undefined ? `repo:${REPOSITORY}:environment:${job.environment}` : `repo:${REPOSITORY}:ref:${job.ref}`;
}

/**
 * The Actions token request URL: one per job, authorised by that job's request token, minting the job's token
 * with the issuer's key. Without `audience` GitHub's default is the owner's URL.
 */
async function tokenRequestService(issuer: TestOidcIssuer): Promise<{
  server: HttpServer;
  origin: string;
  requests: { path: string; audience: string | null; authorization: string | undefined }[];
  startJob(job: Job): { url: string; token: string };
}> {
  const jobs = new Map<string, Job>();
  const requests: { path: string; audience: string | null; authorization: string | undefined }[] = [];
  const server = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const audience = url.searchParams.get('audience');
    requests.push({ path: url.pathname, audience, authorization: req.headers.authorization });
    const match = /^bearer (.+)$/i.exec(req.headers.authorization ?? '');
    const job = match === null ? undefined : jobs.get(match[1]!);
    if (req.method !== 'GET' || !url.pathname.endsWith('/idtoken') || job === undefined) {
      res.writeHead(job === undefined ? 401 : 404, { 'content-type': 'application/json' }).end('{"message":"refused"}');
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    void issuer
      .sign({
        sub: githubSubject(job),
        aud: audience ?? `https://github.com/${REPOSITORY.split('/')[0]!}`,
        // GitHub's shape: valid for 5 minutes, nbf 10 minutes back.
        iat: now,
        nbf: now - 600,
        exp: now + 300,
        jti: randomUUID(),
        ref: job.ref,
        ref_type: 'branch',
        sha: 'a'.repeat(40),
        repository: REPOSITORY,
        repository_id: '123456789',
        repository_owner: REPOSITORY.split('/')[0],
        repository_owner_id: '4242',
        repository_visibility: 'private',
        run_id: '1',
        run_number: '1',
        run_attempt: '1',
        actor: 'octocat',
        actor_id: '583231',
        workflow: 'read-openmsi-secret',
        event_name: 'push',
        job_workflow_ref: `${REPOSITORY}/.github/workflows/read-openmsi-secret.yml@${job.ref}`,
        runner_environment: 'github-hosted',
        environment: job.environment,
      })
      .then((value) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ count: value.length, value }));
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  return {
    server,
    origin,
    requests,
    startJob(job) {
      const token = randomUUID();
      jobs.set(token, job);
      const plan = randomUUID();
      return { token, url: `${origin}/_apis/distributedtask/hubs/Actions/plans/${plan}/jobs/${randomUUID()}/idtoken?api-version=2.0` };
    },
  };
}

/** `${{ vars.NAME }}` from the repository variables; any other expression is not something this runner knows. */
function expand(value: string, vars: Record<string, string>): string {
  const out = value.replace(/\$\{\{\s*vars\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_, name: string) => vars[name] ?? '');
  assert.ok(!out.includes('${{'), `the workflow uses an expression this test cannot evaluate: ${value}`);
  return out;
}

/** `$GITHUB_ENV` as the runner reads it: `NAME=value` lines and `NAME<<DELIM` … `DELIM` blocks. */
function readGithubEnv(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  const lines = readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc !== null) {
      const end = lines.indexOf(heredoc[2]!, i + 1);
      assert.notEqual(end, -1, `unterminated ${line} in GITHUB_ENV`);
      env[heredoc[1]!] = lines.slice(i + 1, end).join('\n');
      i = end;
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(eq > 0, `GITHUB_ENV line without '=': ${line}`);
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

describe('examples/github-actions: the workflow on a hosted runner, against openmsi and a stand-in for GitHub', { timeout: 240_000 }, () => {
  let t: TestAuthority;
  let issuer: TestOidcIssuer;
  let proxy: Awaited<ReturnType<typeof refusingProxy>>;
  let actions: Awaited<ReturnType<typeof tokenRequestService>>;
  let root: string;
  let bin: string;
  let vars: Record<string, string>;
  const workflow = parse(readFileSync(WORKFLOW, 'utf8')) as Workflow;
  const [jobName, job] = Object.entries(workflow.jobs)[0]!;

  before(async () => {
    t = await startTestAuthority();
    root = mkdtempSync(join(tmpdir(), 'openmsi-gha-'));
    bin = join(root, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    issuer = await startTestOidcIssuer({ dir: root, path: '' });
    proxy = await refusingProxy();
    actions = await tokenRequestService(issuer);

    // openmsi, as docs/federation.md and examples/github-actions/README.md say.
    await openmsiJson(t, ['group', 'create', '-n', 'ci', '-l', 'local']);
    const uami = await openmsiJson<{ clientId: string; principalId: string }>(t, ['identity', 'create', '-n', 'github-deploy', '-g', 'ci']);
    const vault = await openmsiJson<{ id: string; properties: { vaultUri: string } }>(t, ['keyvault', 'create', '-g', 'ci', '-n', 'kv-gha']);
    await openmsiJson(t, ['role', 'assignment', 'create', '--assignee', t.admin.clientId, '--role', 'Key Vault Secrets Officer', '--scope', vault.id]);
    await openmsiJson(t, ['keyvault', 'secret', 'set', '--vault-name', 'kv-gha', '-n', 'deploy-password', '--value', SECRET_VALUE]);
    await openmsiJson(t, ['role', 'assignment', 'create', '--assignee', uami.principalId, '--role', 'Key Vault Secrets User', '--scope', vault.id]);
    // GitHub's real issuer is publicly trusted and needs no setting; this one's CA is trusted for it alone.
    await openmsiJson(t, ['federation', 'issuer', 'set', '--issuer', issuer.issuer, '--ca', `@${issuer.caPath}`]);
    const fic = await openmsiJson<Record<string, unknown>>(t, [
      'identity',
      'federated-credential',
      'create',
      '--identity-name',
      'github-deploy',
      '-g',
      'ci',
      '-n',
      'contoso-app-main',
      '--issuer',
      issuer.issuer,
      '--subject',
      `repo:${REPOSITORY}:ref:refs/heads/main`,
    ]);
    assert.deepEqual(fic['audiences'], [TOKEN_EXCHANGE_AUDIENCE]);
    vars = { OPENMSI_CLIENT_ID: uami.clientId, OPENMSI_AUTHORITY_HOST: t.url, OPENMSI_VAULT_URL: vault.properties.vaultUri, OPENMSI_CA_PEM: t.caPem };
  });
  after(async () => {
    await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
    await new Promise<void>((resolve) => {
      actions.server.closeAllConnections();
      actions.server.close(() => resolve());
    });
    await issuer.close();
    await t.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** Runs the job's `run:` steps in order, as a hosted runner would, stopping at the first failure. */
  async function runJob(jobContext: Job): Promise<{ runs: StepRun[]; jobDir: string }> {
    const jobDir = mkdtempSync(join(root, 'job-'));
    const runnerTemp = join(jobDir, 'temp');
    mkdirSync(runnerTemp);
    const githubEnv = join(jobDir, 'github-env');
    writeFileSync(githubEnv, '');
    const request = actions.startJob(jobContext);
    const runner: Record<string, string> = {
      PATH: `${bin}:/usr/bin:/bin`,
      HOME: jobDir,
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_REPOSITORY: REPOSITORY,
      GITHUB_REPOSITORY_OWNER: REPOSITORY.split('/')[0]!,
      GITHUB_REF: jobContext.ref,
      GITHUB_REF_NAME: jobContext.ref.replace(/^refs\/heads\//, ''),
      GITHUB_REF_TYPE: 'branch',
      GITHUB_SHA: 'a'.repeat(40),
      GITHUB_EVENT_NAME: 'push',
      GITHUB_WORKFLOW: 'read-openmsi-secret',
      GITHUB_JOB: jobName,
      GITHUB_RUN_ID: '1',
      GITHUB_WORKSPACE: repoRoot,
      GITHUB_ENV: githubEnv,
      GITHUB_OUTPUT: join(jobDir, 'github-output'),
      GITHUB_PATH: join(jobDir, 'github-path'),
      RUNNER_OS: 'Linux',
      RUNNER_TEMP: runnerTemp,
      RUNNER_ENVIRONMENT: 'github-hosted',
      ACTIONS_ID_TOKEN_REQUEST_URL: request.url,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: request.token,
      // Test-only: *.localhost resolution, and a refusing proxy for anything not on loopback.
      NODE_OPTIONS: `--import ${RESOLVER}`,
      ...loopbackOnlyProxyEnv(proxy.url),
    };
    const jobEnv = Object.fromEntries(Object.entries(job.env ?? {}).map(([k, v]) => [k, expand(String(v), vars)]));
    const runs: StepRun[] = [];
    for (const [index, step] of job.steps.entries()) {
      if (step.run === undefined || step.id === 'install') continue;
      const id = step.id ?? String(index);
      const script = join(runnerTemp, `step-${String(index)}.sh`);
      writeFileSync(script, step.run);
      chmodSync(script, 0o644);
      const stepEnv = Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, expand(String(v), vars)]));
      const env = { ...runner, ...jobEnv, ...readGithubEnv(githubEnv), ...stepEnv };
      const result = await new Promise<StepRun>((resolve) => {
        const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], {
          cwd: repoRoot,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 120_000,
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
        child.on('error', (err) => (stderr += `\nspawn error: ${err.message}`));
        child.on('close', (code) => resolve({ id, code, stdout, stderr }));
      });
      runs.push(result);
      if (result.code !== 0) break;
    }
    return { runs, jobDir };
  }

  const describeRuns = (runs: StepRun[]): string => runs.map((r) => `step ${r.id} exited ${String(r.code)}\n${r.stdout}\n${r.stderr}`).join('\n');

  it('the workflow asks for the id-token permission and sets only the documented environment', () => {
    assert.equal(workflow.permissions?.['id-token'], 'write');
    assert.deepEqual(Object.keys(job.env ?? {}).sort(), [
      'AZURE_AUTHORITY_HOST',
      'AZURE_CLIENT_ID',
      'AZURE_TENANT_ID',
      'AZURE_TOKEN_CREDENTIALS',
      'OPENMSI_CA_PEM',
      'OPENMSI_VAULT_URL',
      'SECRET_NAME',
    ]);
    assert.equal(job.env?.['AZURE_TENANT_ID'], 'adfs');
    assert.equal(job.env?.['AZURE_TOKEN_CREDENTIALS'], 'prod');
  });

  it('a push to main: every step succeeds, the token is GitHub-shaped, and the app reads the secret with the identity’s token', async () => {
    const before = actions.requests.length;
    const { runs } = await runJob({ ref: 'refs/heads/main' });
    assert.deepEqual(
      runs.map((r) => [r.id, r.code]),
      [
        ['trust-openmsi', 0],
        ['oidc-token', 0],
        ['read-secret', 0],
      ],
      describeRuns(runs),
    );
    const requests = actions.requests.slice(before);
    assert.equal(requests.length, 1, 'one token request');
    assert.equal(requests[0]!.audience, TOKEN_EXCHANGE_AUDIENCE);
    assert.match(requests[0]!.authorization ?? '', /^bearer [0-9a-f-]{36}$/);
    const output = runs.at(-1)!.stdout.trim().split('\n');
    assert.deepEqual(output[0], `::add-mask::${SECRET_VALUE}`, describeRuns(runs));
    const digest = createHash('sha256').update(SECRET_VALUE).digest('hex').slice(0, 12);
    assert.equal(output[1], `read deploy-password from ${vars['OPENMSI_VAULT_URL']!}: ${String(SECRET_VALUE.length)} characters, sha256 ${digest}…`);
    // openmsi fetched the stand-in issuer's discovery and keys (GitHub's would be fetched the same way).
    assert.ok(issuer.requests.includes('/.well-known/openid-configuration'), issuer.requests.join(', '));
  });

  it('the token file holds exactly the JWT (no newline) with GitHub’s claims', async () => {
    const { runs, jobDir } = await runJob({ ref: 'refs/heads/main' });
    assert.equal(runs.find((r) => r.id === 'oidc-token')?.code, 0, describeRuns(runs));
    const file = join(jobDir, 'temp', 'azure-identity-token');
    assert.ok(existsSync(file));
    const jwt = readFileSync(file, 'utf8');
    assert.match(jwt, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const claims = decodeJwt(jwt);
    assert.equal(claims.iss, issuer.issuer);
    assert.equal(claims.sub, `repo:${REPOSITORY}:ref:refs/heads/main`);
    assert.equal(claims.aud, TOKEN_EXCHANGE_AUDIENCE);
    assert.equal(claims['repository'], REPOSITORY);
    assert.equal(claims['ref'], 'refs/heads/main');
  });

  it('a job on another branch gets a token whose subject no federated credential trusts: the read step fails with AADSTS700213', async () => {
    const { runs } = await runJob({ ref: 'refs/heads/feature-x' });
    assert.deepEqual(
      runs.map((r) => [r.id, r.code]),
      [
        ['trust-openmsi', 0],
        ['oidc-token', 0],
        ['read-secret', 1],
      ],
      describeRuns(runs),
    );
    assert.match(runs.at(-1)!.stderr, /AADSTS700213/);
    assert.doesNotMatch(runs.at(-1)!.stdout, new RegExp(SECRET_VALUE));
  });

  it('nothing was sent off the machine', () => {
    assert.deepEqual(proxy.attempts, []);
  });
});
