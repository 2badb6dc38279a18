/**
 * A server on a data dir that already exists (a restored backup, a previous release's fixture), and the checks
 * that its data came through: the admin's token verifies against the server's JWKS, a secret reads back, a role
 * assignment still decides.
 */
import assert from 'node:assert/strict';
import { chmodSync, cpSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { createOpenmsiServer, type OpenmsiServer } from '../../src/server/server.js';
import { dataDirLayout, type AdminCredentialFile } from '../../src/shared/data-dir.js';
import { captureLogs, freePort } from './authority.js';
import { vaultRequest } from './vault.js';
import { VAULT } from './world.js';

export { ARM_AUDIENCE as ARM } from '../../src/cli/api-client.js';
export { VAULT } from './world.js';

/** A client-credentials token from `app`'s token endpoint (in-process), asserting that it was granted. */
export async function clientCredentialsToken(
  app: FastifyInstance,
  tenantId: string,
  credential: { clientId: string; clientSecret: string },
  audience: string,
): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: `/${tenantId}/oauth2/v2.0/token`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: credential.clientId,
      client_secret: credential.clientSecret,
      scope: `${audience.replace(/\/$/, '')}/.default`,
    }).toString(),
  });
  assert.equal(response.statusCode, 200, `the credential signs in: ${response.body}`);
  return response.json<{ access_token: string }>().access_token;
}

export interface ExistingAuthority {
  server: OpenmsiServer;
  url: string;
  port: number;
  dataDir: string;
  admin: AdminCredentialFile;
  caPem: string;
  /** A token from this server's token endpoint, for the data dir's admin credential. */
  adminToken(audience: string): Promise<string>;
  close(): Promise<void>;
}

/** Starts a real HTTPS server (loopback, free port) on `dataDir` as it is; `store` overrides its store location. */
export async function startOnDataDir(dataDir: string, options: { store?: string } = {}): Promise<ExistingAuthority> {
  const port = await freePort();
  const env = { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: options.store ?? '' };
  const server = await createOpenmsiServer({
    dataDir,
    env,
    logger: captureLogs().logger,
    host: '127.0.0.1',
    port,
    autoRotate: false,
    ...(options.store === undefined ? {} : { store: options.store }),
  });
  const url = await server.listen();
  const admin = JSON.parse(readFileSync(dataDirLayout(dataDir).adminCredential, 'utf8')) as AdminCredentialFile;
  return {
    server,
    url,
    port,
    dataDir,
    admin,
    caPem: readFileSync(dataDirLayout(dataDir).caCert, 'utf8'),
    adminToken: (audience) => clientCredentialsToken(server.app, admin.tenantId, admin, audience),
    close: () => server.close(),
  };
}

/** Copies a committed data dir (git keeps no modes) and makes it private again: 0700 folders, 0600 files. */
export function copyDataDir(from: string, to: string): void {
  cpSync(from, to, { recursive: true });
  const walk = (dir: string): void => {
    chmodSync(dir, 0o700);
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else chmodSync(path, 0o600);
    }
  };
  walk(to);
}

/** The server's published JWKS verifies `token`'s signature (audience and tenant checked too); returns its `kid`. */
export async function assertSignedByServerKeys(a: ExistingAuthority, token: string, audience: string): Promise<string> {
  const response = await a.server.app.inject({ method: 'GET', url: `/${a.admin.tenantId}/discovery/v2.0/keys` });
  assert.equal(response.statusCode, 200);
  const jwks = createLocalJWKSet(response.json<JSONWebKeySet>());
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { audience: [audience, audience.replace(/\/$/, '')] });
  assert.equal(payload['tid'], a.admin.tenantId);
  return String(protectedHeader.kid);
}

/** {@link assertSignedByServerKeys}, and the server itself accepts the token on its management API; returns its `kid`. */
export async function assertTokenVerifies(a: ExistingAuthority, token: string, audience: string): Promise<string> {
  const kid = await assertSignedByServerKeys(a, token, audience);
  const answer = await a.server.app.inject({
    method: 'GET',
    url: `/subscriptions?api-version=2022-12-01`,
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(answer.statusCode, 200, answer.body);
  return kid;
}

/** The secret's latest value, read through the vault data plane over HTTPS. */
export async function readSecret(a: ExistingAuthority, vault: string, name: string): Promise<string> {
  const token = await a.adminToken(VAULT);
  const response = await vaultRequest(`https://${vault}.vault.localhost:${String(a.port)}/secrets/${name}?api-version=7.4`, {
    headers: { authorization: `Bearer ${token}` },
    ca: a.caPem,
  });
  assert.equal(response.status, 200, `secret ${name} in ${vault}: ${response.body}`);
  return (JSON.parse(response.body) as { value: string }).value;
}

/** A Reader assignment of `principalId` at `scope` still decides: reads allowed there, writes not. */
export async function assertReaderHolds(a: ExistingAuthority, principalId: string, scope: string): Promise<void> {
  const check = (action: string) =>
    a.server.ctx.authorizer.check({
      tenantId: a.admin.tenantId,
      principalId,
      action,
      isDataAction: false,
      scope: `${scope}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x`,
    });
  assert.equal((await check('Microsoft.ManagedIdentity/userAssignedIdentities/read')).allowed, true, 'the Reader assignment grants reads below its scope');
  assert.equal((await check('Microsoft.ManagedIdentity/userAssignedIdentities/write')).allowed, false, 'and nothing more');
  const assignments = await a.server.ctx.store.roleAssignments.list({ tenantId: a.admin.tenantId, principalIds: [principalId], scope });
  assert.equal(assignments.length, 1, 'the assignment is stored at its scope');
}
