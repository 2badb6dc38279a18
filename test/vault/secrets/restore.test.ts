/**
 * `POST /secrets/restore` (src/vault/secrets/restore.ts), store-less: plain fastify with the vault's error
 * handler, the request state the vault's hooks would have set, the real secret cipher and a recording
 * `store.secrets.restore`. A backup crosses into no other subscription, only a secret's backup restores as a
 * secret, the values are re-sealed for this vault, and nothing is written on a refusal.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { MasterKey } from '../../../src/pki/master-key.js';
import type { SecretVersion, Vault } from '../../../src/store/types.js';
import { SECRET_OPERATIONS, type VaultContext } from '../../../src/vault/contracts.js';
import { vaultErrorHandler } from '../../../src/vault/errors.js';
import { createSecretCipher } from '../../../src/vault/secret-cipher.js';
import type { SecretsDeps } from '../../../src/vault/secrets/common.js';
import { restoreSecretRoute } from '../../../src/vault/secrets/restore.js';
import { setState } from '../../../src/vault/state.js';

const masterKey = MasterKey.fromBytes(Buffer.alloc(32, 9));
const cipher = createSecretCipher(masterKey);
const SUBSCRIPTION = '0b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const OTHER_SUBSCRIPTION = '1b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const vault = {
  id: '6f0c1a52-5a1e-4b8e-9d53-0a5f3c1e2b7d',
  name: 'myvault',
  tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  subscriptionId: SUBSCRIPTION,
  properties: { softDeleteRetentionInDays: 90, enablePurgeProtection: null },
} as unknown as Vault;

function version(overrides: Partial<SecretVersion> = {}): SecretVersion {
  return {
    vaultId: 'the-source-vault',
    name: 'Db-Password',
    version: 'b'.repeat(32),
    sealedValue: 'unused',
    contentType: 'text/plain',
    tags: { env: 'prod' },
    enabled: true,
    notBefore: null,
    expires: null,
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_001,
    ...overrides,
  };
}

/** The route config each request was served under (what the vault's hooks authorise by). */
const configs: unknown[] = [];

async function restore(blob: unknown, answer: 'restored' | 'exists' = 'restored') {
  const written: SecretVersion[][] = [];
  const ctx = {
    store: {
      secrets: {
        restore: (versions: SecretVersion[]) => {
          written.push(versions);
          return Promise.resolve(answer);
        },
      },
    },
  } as unknown as VaultContext;
  const app = Fastify();
  app.setErrorHandler(vaultErrorHandler(1024 * 1024));
  app.addHook('preHandler', (request, _reply, done) => {
    configs.push(request.routeOptions.config);
    setState(request, {
      vault,
      caller: { objectId: 'oid', tenantId: vault.tenantId, appId: undefined, issuer: 'iss' },
      apiVersion: '7.4',
    });
    done();
  });
  restoreSecretRoute(app, { ctx, cipher } as unknown as SecretsDeps);
  await app.ready();
  const response = await app.inject({ method: 'POST', url: '/secrets/restore', headers: { host: 'myvault.vault.localhost:8443' }, payload: { value: blob } });
  await app.close();
  return { response, written, body: response.json<{ id?: string; value?: string; error?: { code: string; message: string } }>() };
}

/** A first-format backup (it named no subscription), sealed as that format was. */
function firstFormatBlob(): string {
  const body = {
    format: 'openmsi-secret-backup',
    v: 1,
    name: 'Db-Password',
    versions: [{ ...version(), vaultId: undefined, sealedValue: undefined, name: undefined, value: 'v' }],
  };
  return Buffer.from(`openmsi-secret-backup-v1.${masterKey.encrypt(JSON.stringify(body), 'vault-secret-backup:v1')}`, 'utf8').toString('base64url');
}

void describe('secret restore (store-less)', () => {
  void it("restores a backup of this subscription (in any case), re-sealed for this vault; answers the latest version's bundle without its value", async () => {
    const versions = [
      { version: version({ version: '1'.repeat(32), createdAt: 100 }), value: 'one' },
      { version: version({ version: '3'.repeat(32), createdAt: 300 }), value: 'three' },
      { version: version({ version: '2'.repeat(32), createdAt: 200 }), value: 'two' },
    ];
    const { response, written, body } = await restore(cipher.backup(versions, { subscriptionId: SUBSCRIPTION.toUpperCase() }));
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(body.id, `https://myvault.vault.localhost:8443/secrets/Db-Password/${'3'.repeat(32)}`);
    assert.equal(body.value, undefined, 'the answer carries no value');
    assert.equal(written.length, 1);
    const stored = written[0]!;
    assert.deepEqual(
      stored.map((v) => [v.vaultId, v.name, v.version, v.createdAt]),
      [
        [vault.id, 'Db-Password', '1'.repeat(32), 100],
        [vault.id, 'Db-Password', '3'.repeat(32), 300],
        [vault.id, 'Db-Password', '2'.repeat(32), 200],
      ],
    );
    for (const [i, v] of stored.entries()) {
      assert.equal(cipher.open(v.sealedValue, { vaultId: vault.id, nameKey: 'db-password', version: v.version }), versions[i]!.value);
      assert.throws(
        () => cipher.open(v.sealedValue, { vaultId: 'the-source-vault', nameKey: 'db-password', version: v.version }),
        'sealed for this vault only',
      );
    }
  });

  void it('declares the restore operation on the vault itself: the RBAC action and scope the vault hooks check', async () => {
    configs.length = 0;
    await restore('not-a-backup');
    assert.equal(configs.length, 1);
    const { op, target } = configs[0] as { op?: unknown; target?: unknown };
    assert.deepEqual({ op, target }, { op: SECRET_OPERATIONS.restore, target: 'vault' });
    assert.equal(SECRET_OPERATIONS.restore.dataAction, 'Microsoft.KeyVault/vaults/secrets/restore/action');
  });

  void it('of versions created at the same time, the last one listed is the latest', async () => {
    const versions = [
      { version: version({ version: '1'.repeat(32), createdAt: 100 }), value: 'one' },
      { version: version({ version: '2'.repeat(32), createdAt: 100 }), value: 'two' },
    ];
    const { body } = await restore(cipher.backup(versions, { subscriptionId: SUBSCRIPTION }));
    assert.match(body.id ?? '', new RegExp(`/${'2'.repeat(32)}$`));
  });

  void it('refuses, writing nothing, a backup of another subscription and a first-format backup (no subscription to check)', async () => {
    for (const blob of [cipher.backup([{ version: version(), value: 'v' }], { subscriptionId: OTHER_SUBSCRIPTION }), firstFormatBlob()]) {
      const { response, written, body } = await restore(blob);
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(body.error?.code, 'BadParameter');
      assert.match(body.error?.message ?? '', /only be restored into a key vault of the subscription it was taken from/);
      assert.deepEqual(written, []);
    }
  });

  void it("refuses, writing nothing, what is not a secret's backup of this master key, or names no valid secret", async () => {
    const other = createSecretCipher(MasterKey.fromBytes(Buffer.alloc(32, 1)));
    const blobs: [string, unknown][] = [
      ['garbage', 'not-a-backup'],
      ['another installation', other.backup([{ version: version(), value: 'v' }], { subscriptionId: SUBSCRIPTION })],
      ["a key's backup", cipher.backup([{ version: version(), value: '{"kty":"oct"}' }], { subscriptionId: SUBSCRIPTION }, { rotationPolicy: null })],
      ['an invalid secret name', cipher.backup([{ version: version({ name: 'bad name!' }), value: 'v' }], { subscriptionId: SUBSCRIPTION })],
      ['a name too long', cipher.backup([{ version: version({ name: 'a'.repeat(128) }), value: 'v' }], { subscriptionId: SUBSCRIPTION })],
    ];
    for (const [what, blob] of blobs) {
      const { response, written, body } = await restore(blob);
      assert.equal(response.statusCode, 400, `${what}: ${response.body}`);
      assert.deepEqual([body.error?.code, body.error?.message], ['BadParameter', 'Backup blob contains invalid or corrupt version.'], what);
      assert.deepEqual(written, [], what);
    }
    assert.equal(
      (await restore(cipher.backup([{ version: version({ name: 'a'.repeat(127) }), value: 'v' }], { subscriptionId: SUBSCRIPTION }))).response.statusCode,
      200,
    );
  });

  void it('answers 409 Conflict when the name is taken (active or deleted)', async () => {
    const { response, body } = await restore(cipher.backup([{ version: version(), value: 'v' }], { subscriptionId: SUBSCRIPTION }), 'exists');
    assert.equal(response.statusCode, 409, response.body);
    assert.equal(body.error?.code, 'Conflict');
    assert.match(body.error?.message ?? '', /Secret Db-Password already exists/);
  });
});
