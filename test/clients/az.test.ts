/**
 * Debian's az 2.45, unchanged, against a real `openmsi dev` child process, with only the environment
 * `openmsi dev env` prints — and nothing leaving the machine: az (and the Node app) go through a harness
 * proxy that answers vault hosts itself, tunnels loopback, resolves no name but `localhost`, and refuses
 * everything else; every refusal is logged, and the test fails on any beyond the expected IMDS probes.
 *
 * Then the seeds' developer-tool fallback (seed 002: AzureServiceTokenProvider via `az account
 * get-access-token`): with az logged in to the dev stack and no managed-identity variable in the app's
 * environment, an unchanged DefaultAzureCredential gets its token through AzureCliCredential.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { isLoopbackAddress, startDevProxy, type DevProxy, type DevProxyLookup } from '../../src/dev/proxy.js';
import { BUILT_MAIN } from '../support/cli.js';
import { startDevProcess, type DevProcess } from '../support/dev-process.js';
import { REPO_ROOT as ROOT } from '../support/paths.js';

const APP = join(ROOT, 'test', 'dev', 'fixtures', 'read-secret-default-credential.mjs');
const AZ = '/usr/bin/az';
const SAMPLE = { name: 'sample-secret', value: 'Hello from the openmsi dev vault' };
/** A user's password that Entra's policy accepts (and that starts with no `-`). */
const USER_PASSWORD = 'Az-Us3r-Passw0rd!';
/** The variables that give a process managed identity: the app's environment must have none of them. */
const MI_VARIABLES = ['IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'MSI_ENDPOINT', 'MSI_SECRET', 'IMDS_ENDPOINT', 'AZURE_POD_IDENTITY_AUTHORITY_HOST'];

/** `az --help` is local (`az version` would ask PyPI), here behind a dead proxy all the same. */
function azPresent(): boolean {
  const configDir = mkdtempSync(join(tmpdir(), 'openmsi-azh-'));
  try {
    execFileSync(AZ, ['--help'], {
      stdio: 'ignore',
      env: {
        PATH: '/usr/bin:/bin',
        AZURE_CONFIG_DIR: configDir,
        AZURE_CORE_COLLECT_TELEMETRY: '0',
        HTTPS_PROXY: 'http://127.0.0.1:9',
        HTTP_PROXY: 'http://127.0.0.1:9',
      },
    });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(configDir, { recursive: true, force: true });
  }
}
const skip = azPresent() ? false : `${AZ} missing (apt-get install azure-cli: Debian's 2.45)`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runFile(file: string, args: string[], env: NodeJS.ProcessEnv, timeout = 120_000): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, { cwd: ROOT, env, timeout, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

/** The JWT payload, unverified (the vault's acceptance of the token is the real check). */
function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('az 2.45 and AzureCliCredential against openmsi dev, offline', { skip }, () => {
  let home: string;
  let dataDir: string;
  let dev: DevProcess | undefined;
  let port: number;
  let proxy: DevProxy;
  /** What `openmsi dev env --shell dotenv` prints. */
  let devEnv: Record<string, string>;
  /** Every target the harness proxy was asked for, and every refusal with its reason. */
  const asked: string[] = [];
  const refused: string[] = [];
  /** The dev subscription (from az's managed-identity login). */
  let devSubscription = '';

  /** The CLI as a user runs it, on this data dir, with no proxy or openmsi variables of the test runner. */
  const openmsi = (args: string[]) => runFile(process.execPath, [BUILT_MAIN, '--data-dir', dataDir, ...args], base(), 60_000);
  const base = (): NodeJS.ProcessEnv => ({ PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' });
  /** Sends everything but loopback through the harness proxy, whatever the dev env names. */
  const harnessProxy = (): Record<string, string> => ({
    HTTPS_PROXY: proxy.url,
    https_proxy: proxy.url,
    HTTP_PROXY: proxy.url,
    http_proxy: proxy.url,
    NO_PROXY: '127.0.0.1',
    no_proxy: '127.0.0.1',
  });
  /** az's environment: the dev env (managed-identity variables included), behind the harness proxy. */
  const azEnv = (): NodeJS.ProcessEnv => ({ ...base(), ...devEnv, ...harnessProxy() });
  const az = (args: string[], env: NodeJS.ProcessEnv = azEnv()) => runFile(AZ, args, env);
  const azOk = async (args: string[], env?: NodeJS.ProcessEnv): Promise<string> => {
    const result = await az(args, env);
    assert.equal(result.code, 0, `az ${args.join(' ')} exited ${String(result.code)}:\n${result.stderr}`);
    return result.stdout;
  };
  /** The app's environment: the dev env without a single managed-identity variable, behind the harness proxy. */
  const appEnv = (): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...base(), ...devEnv, ...harnessProxy() };
    for (const name of MI_VARIABLES) delete env[name];
    return env;
  };

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'openmsi-az-home-'));
    dataDir = join(home, 'openmsi');
    dev = await startDevProcess(dataDir, base());
    port = dev.port;
    const printed = await openmsi(['dev', 'env', '--shell', 'dotenv']);
    assert.equal(printed.code, 0, printed.stderr);
    devEnv = parseEnv(printed.stdout) as Record<string, string>;

    // Names resolve to nothing but localhost: no DNS query leaves the machine either.
    const lookup: DevProxyLookup = (hostname, _opts, cb) => {
      if (hostname === 'localhost') return cb(null, [{ address: '127.0.0.1', family: 4 }]);
      refused.push(`${hostname} (not resolved)`);
      cb(Object.assign(new Error(`harness: ${hostname} is not resolved here`), { code: 'ENOTFOUND' }), []);
    };
    proxy = await startDevProxy({
      port: 0,
      route: (hostname, p) => {
        asked.push(`${hostname}:${String(p)}`);
        return hostname.endsWith('.vault.localhost') ? { host: '127.0.0.1', port } : undefined;
      },
      allowUpstream: (hostname, p, address) => {
        const ok = isLoopbackAddress(address);
        if (!ok) refused.push(`${hostname}:${String(p)} (${address})`);
        return ok;
      },
      lookup,
    });
  });

  after(async () => {
    await proxy?.close();
    await dev?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('dev env gives az its config dir, CA bundle, telemetry switch, the vault URL and the managed-identity endpoint', () => {
    assert.equal(devEnv['AZURE_CONFIG_DIR'], join(dataDir, 'dev', 'az'));
    assert.equal(devEnv['AZURE_CORE_COLLECT_TELEMETRY'], '0');
    assert.equal(devEnv['REQUESTS_CA_BUNDLE'], join(dataDir, 'dev', 'ca-bundle.pem'));
    assert.equal(devEnv['AZURE_KEYVAULT_URL'], `https://dev.vault.localhost:${String(port)}/`);
    assert.match(devEnv['MSI_ENDPOINT'] ?? '', /^http:\/\/127\.0\.0\.1:\d+\//);
  });

  it('the printed az-cloud lines, az login --identity, account show, get-access-token and az rest on the vault', async (ctx) => {
    const printed = await openmsi(['dev', 'az-cloud']);
    assert.equal(printed.code, 0, printed.stderr);
    const lines = printed.stdout.trim().split('\n');
    assert.equal(lines[0], 'eval "$(openmsi dev env)"');
    const commands = lines.slice(1).map((line) => {
      assert.doesNotMatch(line, /['"\\]/, `az-cloud printed a line that needs a shell: ${line}`);
      const [head, ...args] = line.split(' ');
      assert.equal(head, 'az');
      return args;
    });
    assert.deepEqual(
      commands.map((c) => c.slice(0, 2).join(' ')),
      ['cloud register', 'cloud update', 'cloud set', 'login --identity'],
    );
    assert.ok(commands[0]!.includes(`https://localhost:${String(port)}/adfs`), commands[0]!.join(' '));
    // The Graph endpoint has no flag: a cloud config file that az-cloud wrote, and that the line names.
    const configFile = join(dataDir, 'dev', 'az-cloud.json');
    assert.deepEqual(commands[1], ['cloud', 'update', '-n', 'openmsi-dev', '--cloud-config', `@${configFile}`]);
    assert.deepEqual(JSON.parse(readFileSync(configFile, 'utf8')), { endpoints: { microsoftGraphResourceId: `https://localhost:${String(port)}/` } });
    for (const args of commands) {
      await azOk([...args, '-o', 'none']);
      ctx.diagnostic(`az ${args.join(' ')}`);
    }

    const cloud = JSON.parse(await azOk(['cloud', 'show', '-o', 'json'])) as { name: string; endpoints: Record<string, string> };
    assert.equal(cloud.name, 'openmsi-dev');
    assert.equal(cloud.endpoints['microsoftGraphResourceId'], `https://localhost:${String(port)}/`);
    assert.equal(cloud.endpoints['resourceManager'], `https://localhost:${String(port)}/`, 'the update kept what register set');

    const account = JSON.parse(await azOk(['account', 'show', '-o', 'json'])) as {
      id: string;
      tenantId: string;
      environmentName: string;
      user: { name: string; type: string; assignedIdentityInfo?: string };
    };
    assert.equal(account.environmentName, 'openmsi-dev');
    devSubscription = account.id;
    assert.deepEqual(account.user, { name: 'systemAssignedIdentity', type: 'servicePrincipal', assignedIdentityInfo: 'MSI' });

    const token = JSON.parse(await azOk(['account', 'get-access-token', '--resource', 'https://vault.azure.net', '-o', 'json'])) as {
      accessToken: string;
      tenant: string;
    };
    const c = claims(token.accessToken);
    assert.equal(c['aud'], 'https://vault.azure.net');
    assert.equal(c['tid'], account.tenantId);
    assert.equal(token.tenant, account.tenantId);

    // az rest sends the token only with --resource (it cannot derive one from a vault URL); the vault accepts
    // its own resource (with or without the port) and vault.azure.net.
    const url = `${devEnv['AZURE_KEYVAULT_URL']!.replace(/\/$/, '')}/secrets/${SAMPLE.name}?api-version=7.4`;
    for (const resource of [`https://vault.localhost:${String(port)}`, 'https://vault.localhost', 'https://vault.azure.net']) {
      const secret = JSON.parse(await azOk(['rest', '--method', 'get', '--url', url, '--resource', resource, '-o', 'json'])) as { value: string; id: string };
      assert.equal(secret.value, SAMPLE.value, resource);
    }
    const bare = await az(['rest', '--method', 'get', '--url', url, '-o', 'json']);
    assert.notEqual(bare.code, 0);
    ctx.diagnostic(`az rest without --resource: ${bare.stderr.trim().split('\n').slice(0, 2).join(' / ')}`);
  });

  it("az ad sp list|show as the dev host's managed identity: tokens for the server's URL, Graph-shaped answers", async () => {
    // What az asks for: the cloud's microsoftGraphResourceId as the resource, trailing slash kept.
    const graph = JSON.parse(await azOk(['account', 'get-access-token', '--resource-type', 'ms-graph', '-o', 'json'])) as { accessToken: string };
    assert.equal(claims(graph.accessToken)['aud'], `https://localhost:${String(port)}/`);

    interface Sp {
      id: string;
      appId: string;
      displayName: string;
      servicePrincipalType: string;
      servicePrincipalNames: string[];
      createdDateTime: string;
    }
    const list = JSON.parse(await azOk(['ad', 'sp', 'list', '-o', 'json'])) as Sp[];
    const app = list.find((sp) => sp.displayName === 'dev-app');
    assert.ok(app, list.map((sp) => sp.displayName).join(', '));
    assert.equal(app.servicePrincipalType, 'ManagedIdentity');
    assert.ok(app.servicePrincipalNames.includes(app.appId));
    assert.ok(
      list.some((sp) => sp.servicePrincipalType === 'Application'),
      'the admin application is listed too',
    );
    // az's own filters: --display-name (startswith), --spn (servicePrincipalNames/any), and its table view.
    assert.deepEqual(
      (JSON.parse(await azOk(['ad', 'sp', 'list', '--display-name', 'dev-a', '-o', 'json'])) as Sp[]).map((sp) => sp.id),
      [app.id],
    );
    assert.deepEqual(
      (JSON.parse(await azOk(['ad', 'sp', 'list', '--spn', app.appId, '-o', 'json'])) as Sp[]).map((sp) => sp.id),
      [app.id],
    );
    const table = await azOk(['ad', 'sp', 'list', '-o', 'table']);
    assert.match(table, new RegExp(`dev-app\\s+${app.id}\\s+${app.appId}`));

    for (const id of [app.appId, app.id]) {
      const shown = JSON.parse(await azOk(['ad', 'sp', 'show', '--id', id, '-o', 'json'])) as Sp;
      assert.deepEqual({ id: shown.id, appId: shown.appId, displayName: shown.displayName }, { id: app.id, appId: app.appId, displayName: 'dev-app' }, id);
    }
    const missing = await az(['ad', 'sp', 'show', '--id', '00000000-0000-4000-8000-000000000000']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /does not exist/, missing.stderr);
    assert.doesNotMatch(missing.stderr, /Traceback/);
  });

  it("az ad signed-in-user show as a managed identity: Graph's answer to an app-only token, not a crash", async () => {
    const result = await az(['ad', 'signed-in-user', 'show', '-o', 'json']);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^ERROR: \/me request is only valid with delegated authentication flow\.$/m, result.stderr);
    assert.doesNotMatch(result.stderr, /Traceback|must be issued for/);
  });

  it('az logged in with --identity is no fallback for an app without managed-identity variables: az 2.45 calls MSI again, and goes to IMDS', async () => {
    const before = refused.length;
    const result = await az(['account', 'get-access-token', '--resource', 'https://vault.azure.net', '-o', 'json'], appEnv());
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /MSI|403/, result.stderr);
    assert.ok(
      refused.slice(before).some((r) => r.startsWith('169.254.169.254:80')),
      refused.join(', '),
    );
  });

  it('DefaultAzureCredential, unchanged, with no managed-identity variable: AzureCliCredential through az logged in as a service principal', async (ctx) => {
    const subscriptionId = (JSON.parse(await azOk(['account', 'show', '-o', 'json'])) as { id: string }).id;
    const vaultId = `/subscriptions/${subscriptionId}/resourceGroups/dev/providers/Microsoft.KeyVault/vaults/dev`;
    const created = await openmsi(['ad', 'sp', 'create-for-rbac', '--name', 'az-dev-reader', '--role', 'Key Vault Secrets User', '--scopes', vaultId]);
    assert.equal(created.code, 0, created.stderr);
    const sp = JSON.parse(created.stdout) as { appId: string; password: string; tenant: string };
    // The SP holds only a vault role, so there is no subscription to list: a tenant-level account.
    const login = `az login --service-principal -u ${sp.appId} -p <password> --tenant ${sp.tenant} --allow-no-subscriptions`;
    // `-p=`: a secret may start with `-` (as Entra's may), which az's parser would take for a flag.
    await azOk(['login', '--service-principal', '-u', sp.appId, `-p=${sp.password}`, '--tenant', sp.tenant, '--allow-no-subscriptions', '-o', 'none']);
    ctx.diagnostic(login);

    const env = appEnv();
    for (const name of MI_VARIABLES) assert.equal(env[name], undefined, name);
    // AzureCliCredential's subprocess inherits this environment: AZURE_CONFIG_DIR (the login), REQUESTS_CA_BUNDLE, the proxy.
    for (const name of ['AZURE_CONFIG_DIR', 'REQUESTS_CA_BUNDLE', 'HTTPS_PROXY', 'AZURE_KEYVAULT_URL']) assert.ok(env[name], name);
    const run = await runFile(process.execPath, [APP, SAMPLE.name], env);
    const out = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as { value?: string; error?: string; log: string[] };
    assert.equal(out.value, SAMPLE.value, `${out.error ?? ''}\n${run.stderr}`);
    assert.ok(
      out.log.some((l) => /ChainedTokenCredential => getToken\(\) => Result for AzureCliCredential: SUCCESS/.test(l)),
      out.log.filter((l) => /identity/.test(l)).join('\n'),
    );
    assert.ok(out.log.some((l) => l.includes(`AzureCliCredential => getToken() => Using the scope https://vault.localhost:${String(port)}/.default`)));
  });

  it('az login -u UPN -p PW as a user with a vault role only (--allow-no-subscriptions): account show, get-access-token, az rest, then DefaultAzureCredential through AzureCliCredential', async (ctx) => {
    const vaultId = `/subscriptions/${devSubscription}/resourceGroups/dev/providers/Microsoft.KeyVault/vaults/dev`;
    const domains = await openmsi(['ad', 'domain', 'list', '--query', '[?isDefault].id', '-o', 'tsv']);
    assert.equal(domains.code, 0, domains.stderr);
    const upn = `ada@${domains.stdout.trim()}`;
    const created = await openmsi(['ad', 'user', 'create', '--display-name', 'Ada Lovelace', '--user-principal-name', upn, `--password=${USER_PASSWORD}`]);
    assert.equal(created.code, 0, created.stderr);
    const user = JSON.parse(created.stdout) as { id: string; userPrincipalName: string };
    assert.equal(user.userPrincipalName, upn);
    const role = await openmsi(['role', 'assignment', 'create', '--assignee', upn, '--role', 'Key Vault Secrets User', '--scope', vaultId]);
    assert.equal(role.code, 0, role.stderr);

    // Wrong password first: Entra's AADSTS50126, and az logged in as nobody new.
    const wrong = await az(['login', '-u', upn, '-p=Wr0ng-Passw0rd!', '--allow-no-subscriptions', '-o', 'none']);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /AADSTS50126/, wrong.stderr);

    await azOk(['login', '-u', upn, `-p=${USER_PASSWORD}`, '--allow-no-subscriptions', '-o', 'none']);
    ctx.diagnostic(`az login -u ${upn} -p <password> --allow-no-subscriptions`);
    const account = JSON.parse(await azOk(['account', 'show', '-o', 'json'])) as { tenantId: string; user: { name: string; type: string } };
    assert.deepEqual(account.user, { name: upn, type: 'user' });
    // Graph's /me with a delegated token (az refreshes one for its cloud's Graph resource, the server's URL).
    const me = JSON.parse(await azOk(['ad', 'signed-in-user', 'show', '-o', 'json'])) as { id: string; userPrincipalName: string };
    assert.deepEqual({ id: me.id, userPrincipalName: me.userPrincipalName }, { id: user.id, userPrincipalName: upn });

    const token = JSON.parse(await azOk(['account', 'get-access-token', '--resource', 'https://vault.azure.net', '-o', 'json'])) as { accessToken: string };
    const c = claims(token.accessToken);
    assert.equal(c['aud'], 'https://vault.azure.net');
    assert.equal(c['oid'], user.id);
    assert.equal(c['idtyp'], 'user');
    assert.equal(c['upn'], upn);
    assert.equal(c['tid'], account.tenantId);

    const url = `${devEnv['AZURE_KEYVAULT_URL']!.replace(/\/$/, '')}/secrets/${SAMPLE.name}?api-version=7.4`;
    const secret = JSON.parse(await azOk(['rest', '--method', 'get', '--url', url, '--resource', 'https://vault.azure.net', '-o', 'json'])) as {
      value: string;
    };
    assert.equal(secret.value, SAMPLE.value);

    const run = await runFile(process.execPath, [APP, SAMPLE.name], appEnv());
    const out = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as { value?: string; error?: string; log: string[] };
    assert.equal(out.value, SAMPLE.value, `${out.error ?? ''}\n${run.stderr}`);
    assert.ok(out.log.some((l) => /Result for AzureCliCredential: SUCCESS/.test(l)));
  });

  it('az login -u -p without --allow-no-subscriptions for a user with a role on the subscription; without a vault role the app gets 403 ForbiddenByRbac', async () => {
    const domain = (await openmsi(['ad', 'domain', 'list', '--query', '[?isDefault].id', '-o', 'tsv'])).stdout.trim();
    const upn = `bob@${domain}`;
    assert.equal((await openmsi(['ad', 'user', 'create', '--display-name', 'Bob', '--user-principal-name', upn, `--password=${USER_PASSWORD}`])).code, 0);
    const role = await openmsi(['role', 'assignment', 'create', '--assignee', upn, '--role', 'Reader', '--scope', `/subscriptions/${devSubscription}`]);
    assert.equal(role.code, 0, role.stderr);
    await azOk(['login', '-u', upn, `-p=${USER_PASSWORD}`, '-o', 'none']);
    const account = JSON.parse(await azOk(['account', 'show', '-o', 'json'])) as { id: string; name: string; user: { name: string; type: string } };
    assert.deepEqual(account.user, { name: upn, type: 'user' });
    assert.notEqual(account.name, 'N/A(tenant level account)');

    const run = await runFile(process.execPath, [APP, SAMPLE.name], appEnv());
    const out = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as { value?: string; error?: string };
    assert.equal(out.value, undefined);
    assert.match(out.error ?? '', /ForbiddenByRbac|not authorized/i, out.error);
    // az rest says the same, with the vault's code.
    const url = `${devEnv['AZURE_KEYVAULT_URL']!.replace(/\/$/, '')}/secrets/${SAMPLE.name}?api-version=7.4`;
    const denied = await az(['rest', '--method', 'get', '--url', url, '--resource', 'https://vault.azure.net']);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /ForbiddenByRbac/, denied.stderr);
  });

  it("a deleted user's az session is over: its refresh token is refused", async () => {
    const domain = (await openmsi(['ad', 'domain', 'list', '--query', '[?isDefault].id', '-o', 'tsv'])).stdout.trim();
    assert.equal((await openmsi(['ad', 'user', 'delete', '--id', `bob@${domain}`])).code, 0);
    const result = await az(['account', 'get-access-token', '--resource', 'https://storage.azure.com', '-o', 'json']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /AADSTS50173|revoked/, result.stderr);
  });

  it('nothing az or the app asked for left the machine: the only refusals are IMDS (169.254.169.254:80)', (ctx) => {
    ctx.diagnostic(`harness proxy was asked for: ${[...new Set(asked)].join(', ')}`);
    ctx.diagnostic(`harness proxy refused: ${refused.join(', ') || 'nothing'}`);
    assert.deepEqual(
      refused.filter((r) => !r.startsWith('169.254.169.254:80')),
      [],
    );
    assert.ok(asked.includes(`localhost:${String(port)}`) && asked.includes(`dev.vault.localhost:${String(port)}`), asked.join(', '));
  });
});
