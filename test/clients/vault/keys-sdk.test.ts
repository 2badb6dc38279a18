/**
 * Issue 17's acceptance for keys with the JS SDK: unchanged `@azure/keyvault-keys` 4.10.2 `KeyClient` and
 * `CryptographyClient` with `ManagedIdentityCredential`, tokens from a real `openmsi agent`, against
 * `openmsi server` over HTTPS (the test CA through NODE_EXTRA_CA_CERTS), each client in its own process
 * (fixtures/key-client.mjs). Every operation for every key type and algorithm, on both paths the SDK takes
 * (spec §2.1, §2.3): the local+remote mix (a CryptographyClient from a KeyVaultKey, and
 * `keyClient.getCryptographyClient(name)`, which sends `POST /keys/n//op`) and forced remote (a key-id string
 * held by an identity whose custom role has the crypto data actions but not `keys/read`: the initial GET is 403,
 * spec §0.5). Signatures are checked here with node:crypto against the key's public JWK.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { createInterface } from 'node:readline';
import { startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { openmsi, openmsiJson, removeDir, startAgentProcess, type AgentProcess } from '../../support/agent-process.js';
import { DEAD_PROXY, parseDotenv } from '../../support/clients.js';
import { BUILTIN_ROLES } from '../../../src/rbac/builtin-roles.js';
import { systemClock } from '../../../src/shared/clock.js';
import { deleteRoleAssignment, putRoleAssignment, putRoleDefinition } from '../../../src/directory/rbac.js';

const CLIENT = new URL('./fixtures/key-client.mjs', import.meta.url).pathname;
const RESOLVER = new URL('./fixtures/resolve-localhost.mjs', import.meta.url).pathname;
const ROLES = {
  cryptoOfficer: '14b46e9e-c2b7-41b4-b07b-48a6ebf60603',
  cryptoUser: '12338af0-0e69-4776-bea7-57ae8d297424',
  secretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
};
/** The crypto data actions without `keys/read`: a principal the SDK can only use remotely. */
const CRYPTO_ONLY_ACTIONS = ['encrypt', 'decrypt', 'wrap', 'unwrap', 'sign', 'verify'].map((a) => `Microsoft.KeyVault/vaults/keys/${a}/action`);
const RSA_OPS = ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey'];
const EC_OPS = ['sign', 'verify'];
const OCT_OPS = ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey'];
const EC_SIGNATURE_BYTES: Record<string, number> = { ES256: 64, ES256K: 64, ES384: 96, ES512: 132 };
const DIGEST_BYTES: Record<string, number> = { '256': 32, '256K': 32, '384': 48, '512': 64 };

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
interface Outcome {
  ok: boolean;
  status?: number;
  code?: string;
  inner?: string;
  message?: string;
  [field: string]: unknown;
}
interface KeyView {
  name: string;
  id: string;
  version: string;
  kty: string;
  keyOps: string[];
  enabled: boolean;
  tags?: Record<string, string>;
  exportable?: boolean;
  jwk: { kid: string; kty: string; crv?: string; n?: string; e?: string; x?: string; y?: string; private: string[] };
}
interface MatrixResult {
  name: string;
  path: string;
  kid: string;
  ops: Record<string, Outcome>;
}
type Json = Record<string, unknown>;

const hashOf = (alg: string): string => `sha${/(256|384|512)K?$/.exec(alg)![1]!}`;

/** Whether node:crypto accepts `signature` (base64url) by `alg` over `data` with the public half of `key`. */
function nodeVerifies(alg: string, data: Buffer, signature: Buffer, key: KeyObject): boolean {
  const hash = hashOf(alg);
  if (alg.startsWith('RS')) return verify(hash, data, key, signature);
  if (alg.startsWith('PS')) return verify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: DIGEST_BYTES[alg.slice(2)]! }, signature);
  return verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
}

function publicKeyOf(view: KeyView): KeyObject {
  const { jwk } = view;
  if (jwk.kty.startsWith('RSA')) return createPublicKey({ key: { kty: 'RSA', n: jwk.n!, e: jwk.e! }, format: 'jwk' });
  return createPublicKey({ key: { kty: 'EC', crv: jwk.crv === 'P-256K' ? 'secp256k1' : jwk.crv!, x: jwk.x!, y: jwk.y! }, format: 'jwk' });
}

describe('unchanged @azure/keyvault-keys 4.10.2 KeyClient and CryptographyClient through the agent against the openmsi vault', () => {
  let t: TestAuthority;
  let agent: AgentProcess;
  let workloadEnv: Record<string, string>;
  let vault: VaultView;
  const id: Record<'officer' | 'remote' | 'cryptoUser' | 'secretsUser' | 'revocable', Identity> = {} as never;
  /** What the `create` scenario made: every key type and size, and the imports. */
  let made: { created: KeyView[]; imported: { rsa: KeyView; ec: KeyView; rsaHsm: KeyView }; importedPublic: { rsa: Json; ec: Json } } & Outcome;
  const keys = new Map<string, KeyView & { bits?: number }>();
  const rbacOptions = { builtInRoles: BUILTIN_ROLES, clock: systemClock };

  const workload = (): NodeJS.ProcessEnv => ({
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? '/tmp',
    NODE_EXTRA_CA_CERTS: t.caPath,
    IDENTITY_ENDPOINT: workloadEnv['IDENTITY_ENDPOINT'],
    IDENTITY_HEADER: workloadEnv['IDENTITY_HEADER'],
    ...DEAD_PROXY,
    NO_PROXY: `${DEAD_PROXY.NO_PROXY},.localhost`,
    no_proxy: `${DEAD_PROXY.no_proxy},.localhost`,
  });

  /** Runs one scenario of the client fixture as `identity`; its JSON result. */
  function scenario<T = Json>(identity: Identity, name: string, config: Json = {}): Promise<T & Outcome> {
    const cfg = { clientId: identity.clientId, vault: vault.properties.vaultUri, scenario: name, ...config };
    return new Promise((resolve, reject) => {
      execFile(
        process.execPath,
        ['--import', RESOLVER, CLIENT, JSON.stringify(cfg)],
        { env: workload(), timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (err !== null) return reject(new Error(`${name}: ${err.message}\n${stderr}`));
          const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as T & Outcome;
          if (!result.ok) return reject(new Error(`${name} failed: ${JSON.stringify(result, null, 1)}`));
          resolve(result);
        },
      );
    });
  }

  before(async () => {
    t = await startTestAuthority({ backend: 'sqlite' });
    await openmsiJson(t, ['group', 'create', '-n', 'apps', '-l', 'local']);
    const names = ['officer', 'remote', 'cryptoUser', 'secretsUser', 'revocable'] as const;
    const [identities, created] = await Promise.all([
      Promise.all(names.map((n) => openmsiJson<Identity>(t, ['identity', 'create', '-n', n.toLowerCase(), '-g', 'apps']))),
      openmsiJson<VaultView>(t, ['keyvault', 'create', '-g', 'apps', '-n', 'kv-keys-sdk']),
    ]);
    names.forEach((n, i) => (id[n] = identities[i]!));
    vault = created;
    const join = await openmsiJson<{ token: string }>(t, ['host', 'join-token', 'create', '-g', 'apps', '-n', 'keys-host']);
    await openmsiJson(t, ['vm', 'identity', 'assign', '-g', 'apps', '-n', 'keys-host', '--identities', ...names.map((n) => n.toLowerCase())]);
    agent = await startAgentProcess(t, { joinToken: join.token });
    const env = await openmsi(t, ['agent', 'env', '--data-dir', agent.dataDir, '--shell', 'dotenv']);
    assert.equal(env.code, 0, env.stderr);
    workloadEnv = parseDotenv(env.stdout);

    const assign = (roleDefinitionId: string, principalId: string) =>
      putRoleAssignment(t.ctx.store, rbacOptions, { tenantId: t.tenantId, scope: vault.id, roleDefinitionId, principalId, by: 'test' });
    const { definition } = await putRoleDefinition(t.ctx.store, rbacOptions, {
      tenantId: t.tenantId,
      roleName: 'Key crypto only (no keys/read)',
      permissions: [{ actions: [], dataActions: CRYPTO_ONLY_ACTIONS }],
      assignableScopes: [vault.id],
      by: 'test',
    });
    await assign(ROLES.cryptoOfficer, id.officer.principalId);
    await assign(definition.id, id.remote.principalId);
    await assign(ROLES.cryptoUser, id.cryptoUser.principalId);
    await assign(ROLES.secretsUser, id.secretsUser.principalId);

    made = await scenario(id.officer, 'create', { prefix: '' });
    for (const view of [...made.created, made.imported.rsa, made.imported.ec, made.imported.rsaHsm]) {
      const bits = /^oct-(\d+)$/.exec(view.name)?.[1];
      keys.set(view.name, { ...view, ...(bits === undefined ? {} : { bits: Number(bits) }) });
    }
  });
  after(async () => {
    await agent?.stop();
    if (agent !== undefined) removeDir(agent.dataDir);
    await t?.close();
  });

  // Independent cases, run at once (each its own client process); the revocation bound is measured after them, alone.
  describe('every operation', { concurrency: true }, () => {
    it('creates RSA 2048/3072/4096, EC on all four curves and oct-HSM 128/192/256; imports RSA (all CRT parts) and P-256 JWKs; no private part ever comes back', () => {
      const expected = [
        ['rsa-2048', 'RSA', RSA_OPS],
        ['rsa-3072', 'RSA', RSA_OPS],
        ['rsa-4096', 'RSA', RSA_OPS],
        ['ec-P-256', 'EC', EC_OPS],
        ['ec-P-256K', 'EC', EC_OPS],
        ['ec-P-384', 'EC', EC_OPS],
        ['ec-P-521', 'EC', EC_OPS],
        ['oct-128', 'oct-HSM', OCT_OPS],
        ['oct-192', 'oct-HSM', OCT_OPS],
        ['oct-256', 'oct-HSM', OCT_OPS],
      ] as const;
      assert.equal(made.created.length, expected.length);
      for (const [i, [name, kty, ops]] of expected.entries()) {
        const view = made.created[i]!;
        assert.equal(view.name, name);
        assert.equal(view.kty, kty, name);
        assert.deepEqual([...view.keyOps].sort(), [...ops].sort(), `${name}: the service's default key_ops (spec §0.2)`);
        assert.match(view.version, /^[0-9a-f]{32}$/);
        assert.equal(view.id, `${vault.properties.vaultUri}keys/${name}/${view.version}`);
        assert.equal(view.jwk.kid, view.id);
        assert.deepEqual(view.jwk.private, [], `${name}: public parts only`);
        assert.equal(view.enabled, true);
      }
      for (const [i, bits] of [2048, 3072, 4096].entries()) {
        assert.equal(Buffer.from(made.created[i]!.jwk.n!, 'base64url').length * 8, bits);
        assert.equal(made.created[i]!.jwk.e, 'AQAB');
        assert.deepEqual(made.created[i]!.tags, { size: String(bits) });
      }
      for (const [i, [crv, width]] of (
        [
          ['P-256', 32],
          ['P-256K', 32],
          ['P-384', 48],
          ['P-521', 66],
        ] as const
      ).entries()) {
        const view = made.created[3 + i]!;
        assert.equal(view.jwk.crv, crv);
        assert.equal(Buffer.from(view.jwk.x!, 'base64url').length, width, `${crv} x is fixed width`);
        assert.equal(Buffer.from(view.jwk.y!, 'base64url').length, width, `${crv} y is fixed width`);
      }
      for (const view of made.created.slice(7)) assert.equal(view.jwk.n ?? view.jwk.x, undefined);

      const { rsa, ec, rsaHsm } = made.imported;
      assert.equal(rsa.kty, 'RSA');
      assert.equal(rsa.jwk.n, made.importedPublic.rsa['n']);
      assert.equal(rsa.jwk.e, made.importedPublic.rsa['e']);
      assert.deepEqual(rsa.jwk.private, []);
      assert.deepEqual([...rsa.keyOps].sort(), [...RSA_OPS].sort());
      assert.equal(ec.kty, 'EC');
      assert.equal(ec.jwk.crv, 'P-256');
      assert.equal(ec.jwk.x, made.importedPublic.ec['x']);
      assert.equal(ec.jwk.y, made.importedPublic.ec['y']);
      assert.deepEqual(ec.jwk.private, []);
      assert.deepEqual(ec.tags, { origin: 'node' });
      assert.equal(rsaHsm.kty, 'RSA-HSM', 'import with Hsm:true answers the -HSM kty');
      assert.deepEqual(rsaHsm.jwk.private, []);
    });

    /**
     * Checks one key's matrix: every round trip, signature sizes,
     * node:crypto accepting every signature with the key's public JWK, verify true for the signature and false for
     * another digest (`kid`: the key id the client was given, its versioned id by default). `verifyDataPs` is what verifyData(PS*) answers on this path: false where the client verifies
     * locally (its known bug, spec §6.A.3: PKCS#1 v1.5 padding for PS*), true where the vault does.
     */
    function checkMatrix(result: MatrixResult, verifyDataPs: boolean, kid?: string): void {
      const key = keys.get(result.name)!;
      const where = `${result.name} (${result.path})`;
      const expected = key.kty.startsWith('RSA')
        ? [
            ...['RSA1_5', 'RSA-OAEP', 'RSA-OAEP-256'].flatMap((a) => [`encrypt ${a}`, `wrap ${a}`]),
            ...['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'].map((a) => `sign ${a}`),
          ]
        : key.kty.startsWith('EC')
          ? [`sign ${{ 'P-256': 'ES256', 'P-256K': 'ES256K', 'P-384': 'ES384', 'P-521': 'ES512' }[key.jwk.crv!]!}`]
          : [`encrypt A${String(key.bits)}GCM`, `encrypt A${String(key.bits)}CBCPAD`, `wrap A${String(key.bits)}KW`];
      assert.deepEqual(Object.keys(result.ops).sort(), expected.sort(), where);
      for (const [label, outcome] of Object.entries(result.ops)) {
        assert.ok(outcome.ok, `${where} ${label}: ${JSON.stringify(outcome)}`);
        assert.equal(outcome['kid'], kid ?? key.id, `${where} ${label}: the client's key id`);
        const [op, alg] = label.split(' ') as [string, string];
        if (op !== 'sign') {
          assert.equal(outcome['roundTrip'], true, `${where} ${label}`);
          if (alg.endsWith('GCM')) {
            assert.deepEqual([outcome['ivBytes'], outcome['tagBytes']], [12, 16], `${where} ${label}: 12-byte iv, 16-byte tag`);
            assert.equal(outcome['aad'], Buffer.from('additional data').toString('base64url'), `${where} ${label}: aad echoed`);
            const tampered = outcome['tampered'] as Outcome;
            assert.deepEqual([tampered.ok, tampered.status, tampered.code], [false, 400, 'BadParameter'], `${where} ${label}: a flipped tag bit`);
          }
          if (alg.endsWith('CBCPAD')) assert.equal(outcome['ivBytes'], 16, `${where} ${label}: the server made a 16-byte iv`);
          if (alg.startsWith('RSA')) {
            const size = Buffer.from(key.jwk.n!, 'base64url').length;
            assert.equal(outcome[op === 'encrypt' ? 'ciphertextBytes' : 'wrappedBytes'], size, `${where} ${label}: k bytes`);
          }
          if (alg.endsWith('KW')) assert.equal(outcome['wrappedBytes'], 40, `${where} ${label}: RFC 3394 adds 8 bytes`);
          continue;
        }
        const data = Buffer.from(outcome['data'] as string, 'base64url');
        const signature = Buffer.from(outcome['signature'] as string, 'base64url');
        const dataSignature = Buffer.from(outcome['dataSignature'] as string, 'base64url');
        const size = alg.startsWith('ES') ? EC_SIGNATURE_BYTES[alg]! : Buffer.from(key.jwk.n!, 'base64url').length;
        assert.equal(signature.length, size, `${where} ${label}: signature length`);
        assert.equal(dataSignature.length, size, `${where} ${label}: signData length`);
        const publicKey = publicKeyOf(key);
        assert.ok(nodeVerifies(alg, data, signature, publicKey), `${where} ${label}: node:crypto accepts the signature over the digest`);
        assert.ok(nodeVerifies(alg, data, dataSignature, publicKey), `${where} ${label}: node:crypto accepts the signData signature`);
        assert.equal(outcome['verified'], true, `${where} ${label}: verify`);
        assert.equal(outcome['wrongDigestVerified'], false, `${where} ${label}: verify of another digest is false, not an error`);
        assert.equal(outcome['dataVerified'], alg.startsWith('PS') ? verifyDataPs : true, `${where} ${label}: verifyData`);
      }
    }

    /** Every crypto answer of the vault names the versioned id of the key's current version, whatever path was called. */
    function checkAnswerKids(answerKids: Array<{ path: string; kid: string }>): void {
      assert.ok(answerKids.length > 0);
      for (const { path, kid } of answerKids) {
        const key = keys.get(path.split('/')[2]!)!;
        assert.equal(kid, key.id, `the answer to POST ${path}`);
      }
    }

    const matrixKeys = () => [...keys.values()];
    const named = (k: KeyView & { bits?: number }) => ({ name: k.name, kty: k.kty, crv: k.jwk.crv, bits: k.bits });

    it('crypto on the local+remote mix, every key and algorithm: from a KeyVaultKey, and from getCryptographyClient(name) (POST /keys/n//op)', async () => {
      const all = matrixKeys();
      // getCryptographyClient(name) for one key of each kind (RSA-HSM: every RSA algorithm), the KeyVaultKey path for all.
      const byName = all.filter((k) => ['imported-rsa-hsm', 'ec-P-256K', 'ec-P-521', 'oct-192'].includes(k.name));
      const out = await scenario<{ results: MatrixResult[]; requests: string[]; byNameRequests: string[]; answerKids: Array<{ path: string; kid: string }> }>(
        id.officer,
        'localMix',
        { keys: all.map(named), byName: byName.map(named) },
      );
      assert.equal(out.results.length, all.length + byName.length);
      for (const result of out.results) checkMatrix(result, false);
      checkAnswerKids(out.answerKids);
      // The KeyVaultKey path did RSA1_5/RSA-OAEP encrypt and wrap locally: only RSA-OAEP-256 went to the vault.
      const local = out.requests.slice(0, out.requests.length - out.byNameRequests.length);
      for (const k of all.filter((v) => v.kty.startsWith('RSA'))) {
        const posts = local.filter((r) => r.startsWith(`POST /keys/${k.name}/${k.version}/encrypt `));
        assert.equal(posts.length, 1, `${k.name}: only RSA-OAEP-256 encrypt is remote (${JSON.stringify(posts)})`);
        assert.ok(local.includes(`POST /keys/${k.name}/${k.version}/wrapkey 200`));
      }
      // getCryptographyClient(name): GET /keys/n/ (latest), then the versionless crypto calls with an empty version.
      for (const k of byName) {
        assert.ok(
          out.byNameRequests.includes(`GET /keys/${k.name}/ 200`),
          `${k.name}: ${JSON.stringify(out.byNameRequests.filter((r) => r.includes(k.name)))}`,
        );
        const op = k.kty.startsWith('EC') ? 'sign' : 'decrypt';
        assert.ok(out.byNameRequests.includes(`POST /keys/${k.name}//${op} 200`), `${k.name}: //${op}`);
      }
      assert.ok(out.byNameRequests.includes('POST /keys/imported-rsa-hsm//encrypt 200'), 'RSA-OAEP-256 encrypt through //encrypt');
      assert.ok(out.byNameRequests.includes('POST /keys/oct-192//wrapkey 200'));
    });

    it('crypto forced remote, every key and algorithm: a key-id string held without keys/read (GET 403), every operation by the vault', async () => {
      const all = matrixKeys();
      // Versioned ids for some keys, versionless (latest) for the others: both kid forms the SDK accepts.
      const list = all.map((k, i) => ({ ...named(k), kid: i % 2 === 0 ? k.id : `${vault.properties.vaultUri}keys/${k.name}` }));
      const out = await scenario<{ results: MatrixResult[]; requests: string[]; getKey: Outcome; answerKids: Array<{ path: string; kid: string }> }>(
        id.remote,
        'remote',
        { keys: list },
      );
      assert.equal(out.results.length, all.length);
      for (const [i, result] of out.results.entries()) checkMatrix(result, true, list[i]!.kid);
      checkAnswerKids(out.answerKids);
      assert.deepEqual([out.getKey.ok, out.getKey.status, out.getKey.code, out.getKey.inner], [false, 403, 'Forbidden', 'ForbiddenByRbac']);
      for (const [i, k] of list.entries()) {
        const path = i % 2 === 0 ? `/keys/${k.name}/${all[i]!.version}` : `/keys/${k.name}/`;
        // (The scenario's last call, a getKey of the first key, is left out: it shows the GET refused.)
        const mine = out.requests.slice(0, -1).filter((r) => r.includes(`/keys/${k.name}/`));
        assert.equal(mine[0], `GET ${path} 403`, `${k.name}: the first call is the GET, refused`);
        assert.equal(mine.filter((r) => r.startsWith('GET ')).length, 1, `${k.name}: one GET, then remote only`);
        const op = k.kty.startsWith('EC') ? 'sign' : 'encrypt';
        assert.ok(mine.includes(`POST ${i % 2 === 0 ? path : `/keys/${k.name}/`}/${op} 200`), `${k.name}: ${JSON.stringify(mine)}`);
      }
      for (const k of list.filter((v) => v.kty.startsWith('RSA'))) {
        assert.equal(
          out.requests.filter((r) => r.startsWith('POST ') && r.includes(`/keys/${k.name}/`) && r.includes('/encrypt ')).length,
          3,
          `${k.name}: all three encrypts remote`,
        );
      }
    });
    it('getKey latest and by version; listPropertiesOfKeys / listPropertiesOfKeyVersions in pages of 2; updateKeyProperties versionless and versioned', async () => {
      // Pages of 2 over 11 keys and 11 versions: 6 pages each, every nextLink followed.
      const count = 11;
      const out = await scenario<Json & { keys: { sizes: number[]; items: Array<{ name: string; id: string; version?: string }> } }>(id.officer, 'read', {
        prefix: 'read-',
        count,
      });
      const first = out['first'] as KeyView;
      const latest = out['latest'] as KeyView;
      assert.notEqual(latest.version, first.version);
      assert.equal(latest.id, `${vault.properties.vaultUri}keys/read-versions/${latest.version}`);
      assert.equal((out['byVersion'] as KeyView).id, first.id);
      assert.equal((out['byVersion'] as KeyView).jwk.x, first.jwk.x);

      const keyPages = out.keys;
      assert.ok(keyPages.sizes.length >= Math.ceil((count + 1) / 2) && keyPages.sizes.every((n) => n <= 2), JSON.stringify(keyPages.sizes));
      const listed = keyPages.items.filter((k) => k.name.startsWith('read-'));
      assert.equal(listed.length, count + 1, 'every key once, across pages');
      for (const k of listed) assert.equal(k.id, `${vault.properties.vaultUri}keys/${k.name}`, 'list items carry the base id');
      const versionPages = out['versions'] as { sizes: number[]; items: Array<{ id: string; version: string }> };
      assert.equal(versionPages.items.length, count);
      assert.ok(versionPages.sizes.length >= Math.ceil(count / 2) && versionPages.sizes.every((n) => n <= 2), JSON.stringify(versionPages.sizes));
      assert.equal(new Set(versionPages.items.map((v) => v.version)).size, count);
      for (const v of versionPages.items) assert.equal(v.id, `${vault.properties.vaultUri}keys/read-versions/${v.version}`, '/versions items are versioned');

      const tagged = out['tagged'] as KeyView;
      assert.equal(tagged.version, latest.version, 'a versionless update changes the latest version');
      assert.deepEqual(tagged.tags, { stage: 'latest' });
      const disabled = out['disabled'] as KeyView;
      assert.deepEqual([disabled.version, disabled.enabled, disabled.tags], [first.version, false, { stage: 'first' }]);
      assert.deepEqual(
        [(out['afterUpdate'] as KeyView).enabled, (out['latestAfter'] as KeyView).enabled],
        [false, true],
        'a disabled version still reads (200)',
      );
      assert.deepEqual((out['latestAfter'] as KeyView).tags, { stage: 'latest' });
      const requests = out['requests'] as string[];
      assert.ok(requests.includes('GET /keys/read-versions/ 200'), 'getKey latest: GET /keys/n/');
      assert.ok(requests.includes(`GET /keys/read-versions/${first.version} 200`));
      assert.ok(requests.includes('PATCH /keys/read-versions/ 200'), 'versionless update: PATCH /keys/n/');
      assert.ok(requests.includes(`PATCH /keys/read-versions/${first.version} 200`));
    });

    it('soft delete → getDeletedKey → listDeletedKeys → create on the name 409 → recover (old ciphertext decrypts); purge; backup → delete → purge → restore with the same version ids', async () => {
      const out = await scenario<Json>(id.officer, 'lifecycle', { prefix: 'life-' });
      const deleted = out['deleted'] as { id: string; recoveryId: string; deletedOn: number; scheduledPurgeDate: number };
      assert.match(deleted.id, new RegExp(`^${vault.properties.vaultUri}keys/life-victim/[0-9a-f]{32}$`), 'the deleted bundle keeps the versioned kid');
      assert.equal(deleted.recoveryId, `${vault.properties.vaultUri}deletedkeys/life-victim`);
      assert.equal(deleted.scheduledPurgeDate - deleted.deletedOn, 90 * 86_400_000, 'scheduledPurgeDate = deletedDate + 90 days');
      const got = out['getDeleted'] as { id: string; recoveryId: string; kty: string; n: string };
      assert.deepEqual([got.id, got.recoveryId, got.kty, got.n], [deleted.id, deleted.recoveryId, 'RSA', out['victimN']]);
      assert.deepEqual(out['listedDeleted'], [{ name: 'life-victim', id: `${vault.properties.vaultUri}keys/life-victim`, recoveryId: deleted.recoveryId }]);
      const whileDeleted = out['getWhileDeleted'] as Outcome;
      assert.deepEqual([whileDeleted.ok, whileDeleted.status, whileDeleted.code], [false, 404, 'KeyNotFound']);
      const conflict = out['createOnDeleted'] as Outcome;
      assert.deepEqual([conflict.ok, conflict.status, conflict.code, conflict.inner], [false, 409, 'Conflict', 'ObjectIsDeletedButRecoverable']);
      assert.equal((out['recovered'] as { id: string }).id, deleted.id);
      assert.deepEqual(out['decryptAfterRecover'], { ok: true, roundTrip: true });

      assert.deepEqual(out['purge'], { ok: true });
      const afterPurge = out['getDeletedAfterPurge'] as Outcome;
      assert.deepEqual([afterPurge.status, afterPurge.code], [404, 'KeyNotFound']);
      assert.equal((out['getAfterPurge'] as Outcome).status, 404);

      assert.ok((out['backupBytes'] as number) > 0);
      assert.equal(out['backupHasN'], false, 'the backup is opaque (sealed), not the key in the clear');
      const overExisting = out['restoreOverExisting'] as Outcome;
      assert.deepEqual([overExisting.ok, overExisting.status], [false, 409], 'restore over an existing name');
      const overDeleted = out['restoreOverDeleted'] as Outcome;
      assert.deepEqual([overDeleted.ok, overDeleted.status], [false, 409], 'restore over a deleted name');
      const portable = out['portable'] as { before: string[]; after: string[]; restored: KeyView };
      assert.deepEqual(portable.after, portable.before, 'restore puts back every version with its id');
      assert.ok(portable.before.includes(portable.restored.version));
      assert.deepEqual(out['policyAfterRestore'], {
        ok: true,
        lifetimeActions: [
          { action: 'Rotate', timeAfterCreate: 'P90D' },
          { action: 'Notify', timeBeforeExpiry: 'P30D' },
        ],
        expiresIn: 'P1Y',
      });
      assert.deepEqual(out['verifyAfterRestore'], { ok: true, verified: true }, 'a signature made before the backup verifies after the restore');
    });

    it('rotateKey, updateKeyRotationPolicy (the service adds Notify) / getKeyRotationPolicy, getRandomBytes, releaseKey refused', async () => {
      const out = await scenario<Json>(id.officer, 'rotation', { prefix: 'rot-' });
      const original = out['original'] as KeyView;
      const rotated = out['rotated'] as KeyView;
      assert.notEqual(rotated.version, original.version);
      assert.equal(rotated.kty, 'RSA');
      assert.equal(Buffer.from(rotated.jwk.n!, 'base64url').length, 384, 'the same size (3072)');
      assert.notEqual(rotated.jwk.n, original.jwk.n, 'new key material');
      assert.deepEqual(rotated.keyOps, original.keyOps);
      assert.deepEqual(rotated.tags, { team: 'x' });
      assert.equal((out['latest'] as KeyView).version, rotated.version);
      const noPolicy = out['noPolicy'] as Outcome;
      assert.ok(noPolicy.ok, JSON.stringify(noPolicy));
      const set = out['set'] as { id: string; lifetimeActions: unknown; expiresIn: string; createdOn: number; updatedOn: number };
      assert.equal(set.id, `${vault.properties.vaultUri}keys/rot-rotating/rotationpolicy`);
      assert.deepEqual(set.lifetimeActions, [
        { action: 'Rotate', timeAfterCreate: 'P90D' },
        { action: 'Notify', timeBeforeExpiry: 'P30D' },
      ]);
      assert.equal(set.expiresIn, 'P1Y');
      assert.ok(set.createdOn > 0 && set.updatedOn >= set.createdOn);
      assert.deepEqual(out['got'], { id: set.id, lifetimeActions: set.lifetimeActions, expiresIn: 'P1Y' });
      const withPolicy = out['rotatedWithPolicy'] as { expiresOn?: number; createdOn: number };
      assert.ok(withPolicy.expiresOn !== undefined, 'a rotation under a policy with expiryTime sets exp');
      const missing = out['policyOfMissing'] as Outcome;
      assert.deepEqual([missing.status, missing.code], [404, 'KeyNotFound']);
      const bad = out['badPolicy'] as Outcome;
      assert.deepEqual([bad.ok, bad.status, bad.code], [false, 400, 'BadParameter']);
      const random = out['random'] as Outcome;
      const random2 = out['random2'] as Outcome;
      assert.equal(Buffer.from(random['bytes'] as string, 'base64url').length, 16);
      assert.notEqual(random['bytes'], random2['bytes']);
      const release = out['release'] as Outcome;
      assert.deepEqual([release.ok, release.status, release.code], [false, 400, 'BadParameter'], JSON.stringify(release));
    });

    it('RBAC through the SDK: Crypto User encrypts, decrypts and signs but cannot create, delete or rotate; Secrets User gets 403 on keys', async () => {
      const [user, secrets] = await Promise.all([
        scenario<Record<string, Outcome>>(id.cryptoUser, 'rbac', { rsa: 'rsa-2048', prefix: 'rbac-' }),
        scenario<Record<string, Outcome>>(id.secretsUser, 'rbac', { rsa: 'rsa-2048', prefix: 'rbac-' }),
      ]);
      for (const op of ['encrypt', 'decrypt', 'sign', 'get', 'list']) assert.ok(user[op]!.ok, `Crypto User ${op}: ${JSON.stringify(user[op])}`);
      assert.equal(user['decrypt']!['roundTrip'], true);
      assert.equal(user['sign']!['bytes'], 256);
      for (const op of ['create', 'delete', 'rotate']) {
        assert.deepEqual([user[op]!.ok, user[op]!.status, user[op]!.code, user[op]!.inner], [false, 403, 'Forbidden', 'ForbiddenByRbac'], `Crypto User ${op}`);
      }
      for (const op of ['encrypt', 'decrypt', 'sign', 'get', 'create', 'delete', 'rotate']) {
        assert.deepEqual(
          [secrets[op]!.ok, secrets[op]!.status, secrets[op]!.inner],
          [false, 403, 'ForbiddenByRbac'],
          `Secrets User ${op}: ${JSON.stringify(secrets[op])}`,
        );
      }
      // The SDK's pager drops the error body: "Pagination failed with unexpected statusCode 403".
      assert.deepEqual([secrets['list']!.ok, secrets['list']!.status], [false, 403], JSON.stringify(secrets['list']));
      // The Secrets User's CryptographyClient went remote after its GET was refused, and the vault refused that too.
      assert.ok((secrets['requests'] as unknown as string[]).includes('POST /keys/rsa-2048//encrypt 403'));
    });

    it('bad input and key state through the SDK: wrong digest length, algorithm for another key type, wrong ciphertext size, bad key_ops and JWK; a disabled key reads (200) but refuses decrypt 403 KeyDisabled', async () => {
      const out = await scenario<Record<string, Outcome>>(id.officer, 'negative', { prefix: '' });
      const badParameter = (o: Outcome, what: string) =>
        assert.deepEqual([o.ok, o.status, o.code], [false, 400, 'BadParameter'], `${what}: ${JSON.stringify(o)}`);
      badParameter(out['sign33']!, 'RS256 over 33 bytes');
      assert.equal(out['sign33']!.message, "Invalid length of 'value': 33 bytes. RS256 requires 32 bytes, encoded with base64url.");
      badParameter(out['es384OnP256']!, 'ES384 on a P-256 key');
      badParameter(out['es256OnRsa']!, 'ES256 on an RSA key');
      badParameter(out['aesOnRsa']!, 'A256GCM on an RSA key');
      // An EC key's key_ops lack encrypt: the client refuses before any call.
      assert.match(out['ecEncrypt']!.message!, /^Operation encrypt is not supported on key /);
      assert.equal(out['ecEncrypt']!.status, undefined);
      badParameter(out['wrongSize']!, 'an RSA ciphertext of the wrong size');
      badParameter(out['ecKeyOps']!, 'wrapKey in key_ops of an EC key');
      assert.equal(out['ecKeyOps']!.message, 'Unsupported key operation(s): "wrapKey". Supported values are "sign", "verify".');
      badParameter(out['badJwk']!, 'an RSA JWK without private parts');
      assert.equal(out['badJwkAfter']!.status, 404, 'nothing written by a refused import');

      const disabled = out['disabledUpdate'] as unknown as KeyView;
      assert.equal(disabled.enabled, false);
      assert.ok(out['disabledGet']!.ok, 'GET of a disabled key is 200');
      assert.equal(out['disabledGet']!['enabled'], false);
      const decrypt = out['disabledDecrypt']!;
      assert.deepEqual([decrypt.ok, decrypt.status, decrypt.code, decrypt.inner], [false, 403, 'Forbidden', 'KeyDisabled']);
      assert.equal(decrypt.message, 'Operation decrypt is not allowed on a disabled key.');
      const sign = out['disabledSign']!;
      assert.deepEqual([sign.ok, sign.status, sign.inner], [false, 403, 'KeyDisabled']);

      assert.deepEqual(out['verifyOnlyOps'], ['verify']);
      const refusedLocally = out['verifyOnlyEncrypt']!;
      assert.equal(refusedLocally.ok, false);
      assert.equal(refusedLocally.status, undefined, 'refused by the client before any call');
      assert.match(refusedLocally.message!, /^Operation encrypt is not supported on key /);
      // Remote-only (no keys/read), the client cannot know: the vault refuses decrypt outside key_ops.
      const forbidden = await scenario<{ decrypt: Outcome }>(id.remote, 'forbiddenOp', { kid: out['verifyOnlyKid'] });
      assert.deepEqual([forbidden.decrypt.status, forbidden.decrypt.code, forbidden.decrypt.inner], [403, 'Forbidden', 'KeyOperationForbidden']);
      assert.equal(forbidden.decrypt.message, 'Operation decrypt is not permitted on this key.');
    });
  });

  it('a Crypto User whose assignment is deleted is refused by its running CryptographyClient within 1 s', async () => {
    const { assignment } = await putRoleAssignment(t.ctx.store, rbacOptions, {
      tenantId: t.tenantId,
      scope: `${vault.id}/keys/rsa-2048`,
      roleDefinitionId: ROLES.cryptoUser,
      principalId: id.revocable.principalId,
      by: 'test',
    });
    const cfg = { clientId: id.revocable.clientId, vault: vault.properties.vaultUri, scenario: 'revocation', rsa: 'rsa-2048' };
    const child = spawn(process.execPath, ['--import', RESOLVER, CLIENT, JSON.stringify(cfg)], { env: workload(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    try {
      const lines = createInterface({ input: child.stdout });
      let result: Json | undefined;
      for await (const line of lines) {
        if (line === 'ready') {
          await deleteRoleAssignment(t.ctx.store, { tenantId: t.tenantId, id: assignment.id });
          child.stdin.write('go\n');
          continue;
        }
        result = JSON.parse(line) as Json;
        break;
      }
      assert.ok(result !== undefined && result['ok'] === true, `${JSON.stringify(result)}\n${stderr}`);
      const refusal = result['refusal'] as Outcome;
      assert.deepEqual([refusal.status, refusal.inner], [403, 'ForbiddenByRbac']);
      const took = result['refusedAfterMs'] as number | null;
      assert.ok(
        took !== null && took <= 1000,
        `refused ${String(took)} ms after the assignment was deleted (bound 1000 ms); ${String(result['served'])} calls served meanwhile`,
      );
    } finally {
      clearTimeout(timer);
      child.stdin.end();
      if (child.exitCode === null) child.kill();
    }
  });
});
