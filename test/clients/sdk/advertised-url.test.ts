import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { captureLogs, freePort } from '../../support/authority.js';
import { httpsRequest } from '../../support/https.js';
import { repoRoot, runNode, type FixtureProcess } from '../../support/child-process.js';
import { createOpenmsiServer } from '../../../src/server/server.js';
import { initDataDir } from '../../../src/authority/init.js';
import { dataDirLayout } from '../../../src/shared/data-dir.js';
import { BUILT_MAIN, cliArgs } from '../../support/cli.js';

const run = promisify(execFile);
const IDENTITY_CLIENT = new URL('./fixtures/identity-client.mjs', import.meta.url).pathname;

/** Anything that is not for the authority goes to a closed loopback port and fails: nothing leaves the machine. */
const DEAD_PROXY = {
  HTTPS_PROXY: 'http://127.0.0.1:9',
  HTTP_PROXY: 'http://127.0.0.1:9',
  NO_PROXY: 'localhost,127.0.0.1,::1,[::1]',
};

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI as a user runs it: no OPENMSI_AUTHORITY_URL, so it must find the authority through the data dir. */
async function cli(env: NodeJS.ProcessEnv, args: string[]): Promise<CliRun> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BUILT_MAIN, ...args], { cwd: repoRoot, env, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('the advertised URL follows `openmsi authority --port`', { timeout: 180_000 }, () => {
  let dataDir: string;
  let initPort: number;
  let port: number;
  let tenantId: string;
  let authority: FixtureProcess;
  let env: NodeJS.ProcessEnv;
  let caPem: string;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'openmsi-port-'));
    initPort = await freePort();
    do port = await freePort();
    while (port === initPort);
    env = { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: '', OPENMSI_LOG_LEVEL: 'info' };
    delete env['OPENMSI_AUTHORITY_URL'];
    ({
      config: { tenantId },
    } = await initDataDir({ dataDir, port: initPort, env }));
    caPem = readFileSync(dataDirLayout(dataDir).caCert, 'utf8');
    authority = runNode(cliArgs('--data-dir', dataDir, 'authority', '--port', String(port)), env);
  });
  after(async () => {
    await authority.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('logs, discovers and issues tokens on the port it listens on', async () => {
    const ready = await authority.waitForLine((line) => line.includes('openmsi server ready'), 60_000);
    assert.ok(ready.includes(`https://localhost:${String(port)}/${tenantId}/v2.0/.well-known/openid-configuration`), ready);
    assert.ok(!ready.includes(String(initPort)), ready);
    const origin = `https://localhost:${String(port)}`;
    for (const version of ['', 'v2.0/']) {
      const doc = (await httpsRequest(`${origin}/${tenantId}/${version}.well-known/openid-configuration`, { ca: caPem })).json<Record<string, string>>();
      for (const key of ['issuer', 'token_endpoint', 'jwks_uri', 'authorization_endpoint'])
        assert.ok(doc[key]?.startsWith(`${origin}/`), `${key}: ${doc[key]}`);
    }
  });

  it('lets the CLI sign in without being told the port, and @azure/identity get a token there', async () => {
    await authority.waitForLine((line) => line.includes('openmsi server ready'), 60_000);
    // The CLI signs in with the admin's client credentials (a token) before it can create anything.
    const created = await cli(env, ['--data-dir', dataDir, 'ad', 'sp', 'create-for-rbac', '--name', 'port-app']);
    assert.equal(created.code, 0, created.stderr);
    const sp = JSON.parse(created.stdout) as { appId: string; password: string; tenant: string };

    const authorityHost = `https://localhost:${String(port)}`;
    const config = { kind: 'secret', authorityHost, tenantId, clientId: sp.appId, secret: sp.password, scopes: ['https://vault.azure.net/.default'] };
    const { stdout } = await run(process.execPath, [IDENTITY_CLIENT, JSON.stringify(config)], {
      env: { ...process.env, ...DEAD_PROXY, NODE_EXTRA_CA_CERTS: dataDirLayout(dataDir).caCert, AZURE_AUTHORITY_HOST: '' },
      timeout: 60_000,
    });
    const [result] = JSON.parse(stdout) as { payload: Record<string, unknown>; v2Issuer: string }[];
    assert.equal(result!.payload['iss'], `${authorityHost}/${tenantId}/`);
    assert.equal(result!.payload['appid'], sp.appId);
    assert.equal(result!.v2Issuer, `${authorityHost}/${tenantId}/v2.0`);
  });

  it('forgets the port when the authority stops, and ignores a record left by a dead process', async () => {
    await authority.waitForLine((line) => line.includes('openmsi server ready'), 60_000);
    const record = dataDirLayout(dataDir).runningAuthority;
    assert.equal((JSON.parse(readFileSync(record, 'utf8')) as { url: string }).url, `https://localhost:${String(port)}`);
    authority.child.kill('SIGTERM');
    const exit = await authority.waitForExit(20_000);
    assert.equal(exit.code, 0, authority.stderr());
    assert.equal(existsSync(record), false, 'a clean shutdown removes the record');

    // A SIGKILLed authority leaves its record behind; its pid is dead, so the CLI falls back to config.json.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    mkdirSync(dirname(record), { recursive: true });
    writeFileSync(record, JSON.stringify({ url: `https://localhost:${String(port)}`, pid: Number(dead.stdout), startedAt: new Date().toISOString() }));
    const stale = await cli(env, ['--data-dir', dataDir, 'group', 'list']);
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, new RegExp(`^error: no authority is listening at https://localhost:${String(initPort)}; `));
    assert.match(stale.stderr, /the port in .*config\.json/);
  });
});

describe('which public URL a data dir names', { timeout: 120_000 }, () => {
  const env = { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: '' };

  async function start(dataDir: string, port: number, publicUrl?: string) {
    const { logger } = captureLogs();
    const authority = await createOpenmsiServer({
      dataDir,
      env,
      logger,
      host: '127.0.0.1',
      port,
      autoRotate: false,
      ...(publicUrl === undefined ? {} : { publicUrl }),
    });
    return { authority, url: await authority.listen() };
  }

  it("reads an old data dir's defaulted https://localhost:<port> as unset, so --port moves it", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-legacy-'));
    try {
      const initPort = await freePort();
      const { config } = await initDataDir({ dataDir, port: initPort, env });
      // What `openmsi init` wrote before the advertised URL followed the port.
      writeFileSync(dataDirLayout(dataDir).config, JSON.stringify({ ...config, publicUrl: `https://localhost:${String(initPort)}` }));
      const port = await freePort();
      const { authority, url } = await start(dataDir, port);
      try {
        assert.equal(url, `https://localhost:${String(port)}`);
        const doc = (await httpsRequest(`${url}/${config.tenantId}/.well-known/openid-configuration`, { ca: authority.ctx.caCertPem })).json<
          Record<string, string>
        >();
        assert.equal(doc['issuer'], `${url}/${config.tenantId}/`);
      } finally {
        await authority.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('keeps an explicit public URL (init or --public-url) whatever port it listens on', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-public-'));
    try {
      const { config } = await initDataDir({ dataDir, port: 8443, publicUrl: 'https://authority.internal', env });
      assert.equal(config.publicUrl, 'https://authority.internal');
      for (const override of [undefined, 'https://sts.example.test:7443']) {
        const port = await freePort();
        const { authority, url } = await start(dataDir, port, override);
        try {
          const expected = override ?? 'https://authority.internal';
          assert.equal(url, expected);
          const issued = authority.ctx.tokens.issue({
            tenantId: config.tenantId,
            principal: (await authority.ctx.store.servicePrincipals.list({ tenantId: config.tenantId }))[0]!,
            resource: 'https://vault.azure.net',
            authMethod: 'secret',
          });
          assert.equal(decodeJwt(issued.accessToken).iss, `${expected}/${config.tenantId}/`);
          // The record the CLI reads names the public URL, not the listen port.
          assert.equal((JSON.parse(readFileSync(dataDirLayout(dataDir).runningAuthority, 'utf8')) as { url: string }).url, expected);
          // Dialled on localhost (a certificate name, on the bound port), documents name that origin for MSAL.
          const doc = (
            await httpsRequest(`https://localhost:${String(port)}/${config.tenantId}/v2.0/.well-known/openid-configuration`, { ca: authority.ctx.caCertPem })
          ).json<Record<string, string>>();
          assert.equal(doc['issuer'], `https://localhost:${String(port)}/${config.tenantId}/v2.0`);
          const v1 = (
            await httpsRequest(`https://localhost:${String(port)}/${config.tenantId}/.well-known/openid-configuration`, { ca: authority.ctx.caCertPem })
          ).json<Record<string, string>>();
          assert.equal(v1['issuer'], `${expected}/${config.tenantId}/`, "the tokens' iss is the public URL's");
        } finally {
          await authority.close();
        }
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
