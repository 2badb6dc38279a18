import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { systemClock, type Clock } from '../shared/clock.js';
import { dataDirLayout, type AdminCredentialFile, type InstallationConfig } from '../shared/data-dir.js';
import { newGuid } from '../shared/ids.js';
import { MasterKey } from '../pki/master-key.js';
import { createCertificateAuthority, issueServerCertificate } from '../pki/ca.js';
import { openStore } from '../store/open.js';
import { KeyRing } from './keys/key-ring.js';
import { KeyRotator } from './keys/rotation.js';
import { createApplicationPrincipal } from '../directory/principals.js';
import { addPasswordCredential } from '../directory/credentials.js';
import { MAX_TOKEN_LIFETIME_SECONDS } from './token-issuer.js';
import { storeLocation } from './authority.js';
import { defaultOrigin } from '../shared/public-url.js';

export interface InitOptions {
  dataDir: string;
  host?: string;
  port?: number;
  /** Public https origin, fixed whatever port the authority later listens on; by default it follows the port. */
  publicUrl?: string;
  /** `sqlite` (default) or a postgres:// URL. */
  store?: string;
  tokenLifetimeSeconds?: number;
  /** Extra DNS names and IP addresses for the server certificate. */
  hostnames?: string[];
  ipAddresses?: string[];
  tenantDomain?: string;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
}

export interface InitResult {
  config: InstallationConfig;
  admin: AdminCredentialFile;
  caCertPem: string;
}

export const DEFAULT_PORT = 8443;

/**
 * `openmsi init`: creates the master key, the local CA and server certificate, the store with its first
 * tenant, subscription and signing keys, and the bootstrap admin credential (mode 0600). Refuses to touch a
 * data dir that is already initialised.
 */
export async function initDataDir(options: InitOptions): Promise<InitResult> {
  const clock = options.clock ?? systemClock;
  const env = options.env ?? process.env;
  const layout = dataDirLayout(options.dataDir);
  if (existsSync(layout.config)) throw new Error(`${options.dataDir} is already initialised (config.json exists)`);
  const tokenLifetimeSeconds = options.tokenLifetimeSeconds ?? 3600;
  if (!Number.isInteger(tokenLifetimeSeconds) || tokenLifetimeSeconds < 300 || tokenLifetimeSeconds > MAX_TOKEN_LIFETIME_SECONDS) {
    throw new Error(`--token-lifetime must be a whole number of seconds from 300 to ${String(MAX_TOKEN_LIFETIME_SECONDS)}`);
  }
  // A failed init must not leave a half-made data dir behind (a master key with no config blocks the retry).
  const startedEmpty = !existsSync(options.dataDir) || readdirSync(options.dataDir).length === 0;
  try {
    return await initInto(options, layout, clock, env, tokenLifetimeSeconds);
  } catch (err) {
    if (startedEmpty) rmSync(options.dataDir, { recursive: true, force: true });
    throw err;
  }
}

async function initInto(
  options: InitOptions,
  layout: ReturnType<typeof dataDirLayout>,
  clock: Clock,
  env: NodeJS.ProcessEnv,
  tokenLifetimeSeconds: number,
): Promise<InitResult> {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  for (const dir of [dirname(layout.caCert), dirname(layout.serverCert)]) mkdirSync(dir, { recursive: true, mode: 0o700 });

  const masterKey = env['OPENMSI_MASTER_KEY'] ? MasterKey.fromEnvOrFile({ env, dataDir: options.dataDir }) : MasterKey.createFile(options.dataDir);

  const port = options.port ?? DEFAULT_PORT;
  const host = options.host ?? '127.0.0.1';
  const explicitUrl = options.publicUrl === undefined ? undefined : new URL(options.publicUrl).origin;
  if (explicitUrl !== undefined && !explicitUrl.startsWith('https://')) throw new Error(`--public-url must be an https URL: ${explicitUrl}`);
  const publicUrl = explicitUrl ?? defaultOrigin(host, port);
  const ca = await createCertificateAuthority({ commonName: `openmsi local CA (${hostname()})`, clock });
  const hostnames = unique(['localhost', new URL(publicUrl).hostname, ...(options.hostnames ?? [])].filter((h) => !isIp(h)));
  const ipAddresses = unique(['127.0.0.1', '::1', ...(options.ipAddresses ?? []), ...[new URL(publicUrl).hostname].filter(isIp)]);
  const server = await issueServerCertificate({ caCertPem: ca.certPem, caKeyPkcs8Pem: ca.keyPkcs8Pem, hostnames, ipAddresses, clock });
  writeFileSync(layout.caCert, ca.certPem, { mode: 0o644 });
  writeFileSync(layout.caKey, masterKey.encrypt(ca.keyPkcs8Pem, 'ca-key'), { mode: 0o600 });
  writeFileSync(layout.serverCert, `${server.certPem.trimEnd()}\n${ca.certPem.trimEnd()}\n`, { mode: 0o644 });
  writeFileSync(layout.serverKey, masterKey.encrypt(server.keyPkcs8Pem, 'tls-server-key'), { mode: 0o600 });

  const config: InstallationConfig = {
    version: 1,
    tenantId: newGuid(),
    subscriptionId: newGuid(),
    host,
    port,
    ...(explicitUrl === undefined ? {} : { publicUrl: explicitUrl }),
    store: options.store ?? 'sqlite',
    tokenLifetimeSeconds,
  };
  const store = await openStore(storeLocation(options.dataDir, config, env));
  let admin: AdminCredentialFile;
  try {
    if ((await store.tenants.list()).length > 0) {
      throw new Error(
        'that store already holds an openmsi directory; init creates a new one. To run another replica against it, copy this data dir\'s counterpart (config.json, master.key, ca/, tls/) instead',
      );
    }
    const now = clock.now();
    const tenantDomain = (options.tenantDomain ?? 'openmsi.local').toLowerCase();
    admin = await store.transaction(async (tx) => {
      await tx.tenants.create({ id: config.tenantId, displayName: 'openmsi', defaultDomain: tenantDomain, createdAt: now });
      await tx.subscriptions.create({ id: config.subscriptionId, tenantId: config.tenantId, displayName: 'openmsi', state: 'Enabled', createdAt: now });
      const principal = await createApplicationPrincipal(tx, {
        tenantId: config.tenantId,
        displayName: 'openmsi-bootstrap-admin',
        isDirectoryAdmin: true,
        clock,
      });
      const secret = await addPasswordCredential(tx, masterKey, { appId: principal.appId, displayName: 'bootstrap', years: 1, clock });
      await tx.audit.append([
        {
          id: newGuid(),
          at: now,
          tenantId: config.tenantId,
          actor: 'system',
          action: 'directory.initialized',
          target: config.tenantId,
          outcome: 'success',
          detail: { subscriptionId: config.subscriptionId, adminAppId: principal.appId, adminObjectId: principal.objectId },
        },
      ]);
      return { tenantId: config.tenantId, clientId: principal.appId, objectId: principal.objectId, clientSecret: secret.secretText };
    });
    const keyRing = await KeyRing.load({ store: store.signingKeys, masterKey, clock });
    await new KeyRotator({ store: store.signingKeys, masterKey, clock, keyRing, policy: { maxTokenLifetimeMs: tokenLifetimeSeconds * 1000 } }).ensureKeys();
  } finally {
    await store.close();
  }
  writeFileSync(layout.adminCredential, JSON.stringify(admin, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(layout.adminCredential, 0o600);
  // Written last: its presence is what marks the data dir as initialised.
  writeFileSync(layout.config, JSON.stringify(config, null, 2) + '\n', { mode: 0o644 });
  return { config, admin, caCertPem: ca.certPem };
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function isIp(value: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(value) || value.includes(':') || value.startsWith('[');
}
