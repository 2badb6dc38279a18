import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { openmsi, openmsiJson, removeDir, startAgentProcess, type AgentProcess } from '../../support/agent-process.js';
import { DEAD_PROXY, parseDotenv, probe } from '../../support/clients.js';

const run = promisify(execFile);
const PYTHON_CLIENT = new URL('./fixtures/key_client.py', import.meta.url).pathname;
const PYTHON = '/usr/bin/python3';

const pythonKeys = probe(PYTHON, ['-c', 'import azure.keyvault.keys, azure.identity; print(azure.keyvault.keys._version.VERSION)']);

interface Identity {
  id: string;
  clientId: string;
  principalId: string;
}
interface VaultView {
  id: string;
  name: string;
  properties: { vaultUri: string };
}
type Step = { ok: boolean; sent: string[]; status?: number; code?: string; error?: string; message?: string } & Record<string, unknown>;
type Results = Record<string, Step>;

const PLAIN = 'openmsi keys from Python';
const RSA_ALGS = ['RSA1_5', 'RSA-OAEP', 'RSA-OAEP-256'];

/**
 * Keys spec §6.B: unchanged Debian `azure-keyvault-keys` (4.8.0b3) with ManagedIdentityCredential, its tokens
 * from a real `openmsi agent` process, against `openmsi server`'s vault; once on the client's default api-version
 * (7.4-preview.1) and once on 7.3. Each step reports the requests it sent, so the assertions tell the client's
 * local crypto (public-key encrypt/wrap, digest verify) from the service's.
 */
describe(
  'Python azure-keyvault-keys against the openmsi vault',
  { skip: pythonKeys === undefined ? `${PYTHON} cannot import azure.keyvault.keys (apt-get install python3-azure)` : false },
  () => {
    let t: TestAuthority;
    let agent: AgentProcess;
    let officer: Identity;
    let user: Identity;
    let workloadEnv: Record<string, string>;
    let main: VaultView;
    let policies: VaultView;

    before(async () => {
      t = await startTestAuthority();
      await openmsiJson(t, ['group', 'create', '-n', 'apps', '-l', 'local']);
      officer = await openmsiJson<Identity>(t, ['identity', 'create', '-n', 'officer', '-g', 'apps']);
      user = await openmsiJson<Identity>(t, ['identity', 'create', '-n', 'user', '-g', 'apps']);
      const join = await openmsiJson<{ token: string }>(t, ['host', 'join-token', 'create', '-g', 'apps', '-n', 'py-01']);
      await openmsiJson(t, ['vm', 'identity', 'assign', '-g', 'apps', '-n', 'py-01', '--identities', 'officer', 'user']);
      agent = await startAgentProcess(t, { joinToken: join.token });
      const env = await openmsi(t, ['agent', 'env', '--data-dir', agent.dataDir, '--shell', 'dotenv']);
      assert.equal(env.code, 0, env.stderr);
      workloadEnv = parseDotenv(env.stdout);

      main = await openmsiJson<VaultView>(t, ['keyvault', 'create', '-g', 'apps', '-n', 'kv-py-keys']);
      await openmsiJson(t, ['role', 'assignment', 'create', '--assignee', officer.principalId, '--role', 'Key Vault Crypto Officer', '--scope', main.id]);
      // An access-policy vault where `user` may use keys but not read them: GET is 403, so the client goes remote.
      policies = await openmsiJson<VaultView>(t, ['keyvault', 'create', '-g', 'apps', '-n', 'kv-py-remote', '--enable-rbac-authorization', 'false']);
      await openmsiJson(t, ['keyvault', 'set-policy', '-n', policies.name, '--object-id', officer.principalId, '--key-permissions', 'get', 'create', 'list']);
      await openmsiJson(t, [
        'keyvault',
        'set-policy',
        '-n',
        policies.name,
        '--object-id',
        user.principalId,
        '--key-permissions',
        'encrypt',
        'decrypt',
        'sign',
        'verify',
        'wrapKey',
        'unwrapKey',
      ]);
    });
    after(async () => {
      await agent?.stop();
      if (agent !== undefined) removeDir(agent.dataDir);
      await t?.close();
    });

    async function scenario(prefix: string, apiVersion: string | null): Promise<Results> {
      const env = {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        HOME: process.env['HOME'] ?? '/tmp',
        REQUESTS_CA_BUNDLE: t.caPath,
        IDENTITY_ENDPOINT: workloadEnv['IDENTITY_ENDPOINT'],
        IDENTITY_HEADER: workloadEnv['IDENTITY_HEADER'],
        ...DEAD_PROXY,
        NO_PROXY: `${DEAD_PROXY.NO_PROXY},.localhost`,
        no_proxy: `${DEAD_PROXY.no_proxy},.localhost`,
      };
      const config = {
        vault: main.properties.vaultUri,
        clientId: officer.clientId,
        prefix,
        apiVersion,
        remoteVault: policies.properties.vaultUri,
        remoteClientId: user.clientId,
      };
      const { stdout } = await run(PYTHON, [PYTHON_CLIENT, JSON.stringify(config)], { env, timeout: 180_000, maxBuffer: 16 * 1024 * 1024 });
      return JSON.parse(stdout) as Results;
    }

    function ok(results: Results, name: string): Step {
      const step = results[name];
      assert.ok(step !== undefined, `no step ${name}`);
      assert.ok(step.ok, `${name}: ${JSON.stringify(step)}`);
      return step;
    }

    const posts = (sent: string[], op: string): string[] =>
      sent.filter((line) => line.startsWith('POST ') && line.toLowerCase().endsWith(`/${op.toLowerCase()}`));

    for (const [label, apiVersion] of [
      ['default api-version (7.4-preview.1)', null],
      ['api_version="7.3"', '7.3'],
    ] as const) {
      it(`${label}: RSA, EC and oct-HSM crypto, local and remote, rotation policy, delete/recover, backup/restore`, async (tc) => {
        const prefix = apiVersion === null ? 'py74' : 'py73';
        const started = Date.now();
        const r = await scenario(prefix, apiVersion);
        const elapsed = Date.now() - started;

        assert.deepEqual(ok(r, 'apiVersions')['seen'], [apiVersion ?? '7.4-preview.1'], 'every vault request carried the api-version');
        const rsa = ok(r, 'rsa.create');
        assert.equal(rsa['kty'], 'RSA');
        assert.deepEqual(rsa['ops'], ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey']);
        assert.equal(rsa['n'], 256);
        assert.match(String(rsa['version']), /^[0-9a-f]{32}$/);
        assert.equal(rsa['id'], `${main.properties.vaultUri}keys/${prefix}-rsa/${String(rsa['version'])}`);

        // Public-key encrypt (RSA-OAEP-256 too) is local in Python; decrypt is the service's.
        const enc = ok(r, 'rsa.encrypt') as Step & Record<string, { encryptSent: string[]; len: number; plain: string }>;
        for (const alg of RSA_ALGS) {
          assert.deepEqual(enc[alg]!.encryptSent, [], `${alg} encrypt is local`);
          assert.equal(enc[alg]!.len, 256);
          assert.equal(enc[alg]!.plain, PLAIN, `${alg}: remote decrypt of a local encrypt`);
        }
        assert.equal(posts(enc.sent, 'decrypt').length, 3);
        assert.equal(posts(enc.sent, 'encrypt').length, 0);
        const wrap = ok(r, 'rsa.wrap') as Step & Record<string, { wrapSent: string[]; equal: boolean }>;
        for (const alg of RSA_ALGS) {
          assert.deepEqual(wrap[alg]!.wrapSent, [], `${alg} wrap is local`);
          assert.equal(wrap[alg]!.equal, true, `${alg}: remote unwrap of a local wrap`);
        }
        assert.equal(posts(wrap.sent, 'unwrapKey').length, 3);

        // Remote sign, local verify: PS* proves the service's salt length is the hash length, ES* its r‖s layout.
        const sign = ok(r, 'rsa.sign') as Step &
          Record<string, { len: number; verified: boolean; verifySent: string[]; jwkVerified: boolean; tampered: boolean }>;
        for (const alg of ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']) {
          assert.deepEqual([sign[alg]!.len, sign[alg]!.verified, sign[alg]!.jwkVerified, sign[alg]!.tampered], [256, true, true, false], alg);
          assert.deepEqual(sign[alg]!.verifySent, [], `${alg} verify is local`);
        }
        assert.equal(posts(sign.sent, 'sign').length, 6);
        assert.equal(posts(sign.sent, 'verify').length, 0);
        for (const [curve, length] of [
          ['P-256', 64],
          ['P-256K', 64],
          ['P-384', 96],
          ['P-521', 132],
        ] as const) {
          const ec = ok(r, `ec.${curve}`);
          assert.deepEqual([ec['kty'], ec['crv'], ec['ops']], ['EC', curve, ['sign', 'verify']], curve);
          assert.deepEqual([ec['len'], ec['verified'], ec['jwkVerified'], ec['tampered']], [length, true, true, false], curve);
          assert.deepEqual(ec['verifySent'], [], `${curve} verify is local`);
          assert.equal(posts(ec.sent, 'verify').length, 0);
        }

        // oct-HSM: every call is the service's.
        const oct = ok(r, 'oct.create');
        assert.deepEqual([oct['kty'], oct['ops']], ['oct-HSM', ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey']]);
        const aes = ok(r, 'oct.crypto') as Step & Record<string, Record<string, unknown>>;
        assert.deepEqual(aes['A256CBC'], { ivEcho: true, len: 32, equal: true });
        assert.deepEqual(aes['A256GCM'], { ivLen: 12, tagLen: 16, equal: true });
        assert.deepEqual(aes['tamperedTag'], { ok: false, status: 400, code: 'BadParameter' });
        assert.equal(posts(aes.sent, 'encrypt').length, 2, JSON.stringify(aes.sent));
        assert.equal(posts(aes.sent, 'decrypt').length, 3, JSON.stringify(aes.sent));
        // Client limitation: with no "k" in the JWK, 4.8.0b3 wraps (and CBCPADs) locally with a random key of its own.
        assert.deepEqual(aes['A256KW.local'], { sent: [], len: 40 });

        // The policy comes back server-normalised: the Rotate action the client sent, plus Notify 30 days before expiry.
        const expectedPolicy = {
          actions: [
            { action: 'Notify', timeAfterCreate: null, timeBeforeExpiry: 'P30D' },
            { action: 'Rotate', timeAfterCreate: 'P90D', timeBeforeExpiry: null },
          ],
          expiresIn: 'P1Y',
        };
        const policyOf = (s: Step) => ({ actions: s['actions'], expiresIn: s['expiresIn'] });
        assert.deepEqual(policyOf(ok(r, 'policy.update')), expectedPolicy);
        assert.deepEqual(policyOf(ok(r, 'policy.get')), expectedPolicy);
        assert.deepEqual(ok(r, 'policy.update').sent, [`PUT /keys/${prefix}-rsa/rotationpolicy`]);

        const rotate = ok(r, 'rsa.rotate');
        assert.deepEqual(
          [rotate['kty'], rotate['n'], rotate['newVersion'], rotate['latest'], rotate['versions'], rotate['oldDecrypts']],
          ['RSA', 256, true, true, 2, PLAIN],
        );
        assert.deepEqual(ok(r, 'rsa.update')['tags'], { team: 'py' });
        assert.equal(ok(r, 'rng')['len'], 16);

        // A versionless key id: GET /keys/{name}/ (latest), local RSA-OAEP-256 encrypt, remote decrypt.
        const versionless = ok(r, 'rsa.oaep256.versionless');
        assert.deepEqual(versionless['encryptSent'], [`GET /keys/${prefix}-rsa/`]);
        assert.equal(versionless['plain'], PLAIN);

        // A key that does not exist: the GET's 404 is swallowed, the remote encrypt gets its own 404.
        const missing = r['missing.encrypt']!;
        assert.deepEqual([missing.ok, missing.status, missing.code], [false, 404, 'KeyNotFound'], JSON.stringify(missing));
        assert.deepEqual(missing.sent, [`GET /keys/${prefix}-missing/`, `POST /keys/${prefix}-missing//encrypt`]);

        const recovered = ok(r, 'ec.deleteRecover');
        assert.equal(recovered['recoveryId'], `${main.properties.vaultUri}deletedkeys/${prefix}-ec-p-256`);
        assert.deepEqual(
          [recovered['scheduledPurge'], recovered['listed'], recovered['conflict'], recovered['sameVersion'], recovered['signLen']],
          [true, true, 409, true, 64],
        );
        const restored = ok(r, 'rsa.backupRestore');
        assert.deepEqual([restored['name'], restored['sameVersions'], restored['versions'], restored['oldDecrypts']], [`${prefix}-rsa`, true, 2, PLAIN]);

        // Forced remote (403 on GET): encrypt and verify go to the service too, and its answers hold locally.
        ok(r, 'remote.setup');
        const remote = ok(r, 'remote.crypto') as Step & Record<string, { verified: boolean; verifySent: string[]; jwkVerified: boolean; tampered: boolean }>;
        assert.equal(remote['plain'], PLAIN);
        const encryptSent = remote['encryptSent'] as unknown as string[];
        assert.equal(encryptSent.filter((s) => s.startsWith('GET ')).length, 1, 'one GET, refused with 403');
        assert.equal(posts(encryptSent, 'encrypt').length, 1, 'the encrypt is remote');
        for (const alg of ['PS256', 'ES256K']) {
          assert.deepEqual([remote[alg]!.verified, remote[alg]!.jwkVerified, remote[alg]!.tampered], [true, true, false], alg);
          assert.equal(posts(remote[alg]!.verifySent, 'verify').length, 1, `${alg} verify is remote`);
        }
        assert.equal(remote.sent.filter((s) => s.startsWith('GET ')).length, 2, 'each client tries GET once and latches the 403');
        const remoteAes = ok(r, 'remote.aes') as Step & Record<string, Record<string, unknown>>;
        assert.deepEqual(remoteAes['A256CBCPAD'], { ivEcho: true, len: 32, equal: true });
        assert.deepEqual(remoteAes['A256KW'], { len: 40, equal: true });
        assert.deepEqual(remoteAes['throwaway'], { ok: false, status: 400, code: 'BadParameter' }, 'the locally wrapped key is not the vault key');
        assert.equal(posts(remoteAes.sent, 'wrapKey').length, 1);
        assert.equal(posts(remoteAes.sent, 'unwrapKey').length, 2);
        tc.diagnostic(`the Python scenario took ${String(elapsed)} ms`);
      });
    }
  },
);
