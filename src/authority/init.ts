import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { systemClock, type Clock } from '../shared/clock.js';
import { checkPort, checkTokenLifetime, DEFAULTS, isVaultDomain, readEnvironment, storeLocation, type InstallationConfig } from '../shared/config.js';
import { DataDirError, dataDirLayout, type AdminCredentialFile } from '../shared/data-dir.js';
import { newGuid } from '../shared/ids.js';
import { MasterKey } from '../pki/master-key.js';
import { createCertificateAuthority, issueServerCertificate } from '../pki/ca.js';
import { openStore } from '../store/open.js';
import { KeyRing } from './keys/key-ring.js';
import { KeyRotator } from './keys/rotation.js';
import { createApplicationPrincipal } from '../directory/principals.js';
import { addPasswordCredential } from '../directory/credentials.js';
import { defaultOrigin } from '../shared/public-url.js';
import { assignBootstrapOwner } from './bootstrap-owner.js';
import { makePrivateDir, writePrivateFile } from '../shared/private-files.js';

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
  /** Vault hosts are `{name}.{vaultDomain}` (default `vault.localhost`); the server certificate covers `*.{vaultDomain}`. */
  vaultDomain?: string;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
}

export interface InitResult {
  config: InstallationConfig;
  admin: AdminCredentialFile;
  caCertPem: string;
}

/** The port `openmsi init` configures when none is given. */
export const DEFAULT_PORT = DEFAULTS.port;

/** Prefix of the staging directory inside the data dir; one left behind by a killed init is removed by the next. */
const STAGING_PREFIX = '.init-';

/**
 * `openmsi init`: creates the master key, the local CA and server certificate, the store with its first
 * tenant, subscription and signing keys, and the bootstrap admin (Owner at `/`) with its credential (mode 0600). Refuses to touch a
 * data dir that is already initialised, or one that holds anything else.
 *
 * Complete or nothing: everything is made in a staging directory inside the data dir and moved into place
 * at the end, config.json last (its presence is what marks a data dir as initialised). On failure the
 * staging directory is removed, and so is the data dir if this call created it.
 */
export async function initDataDir(options: InitOptions): Promise<InitResult> {
  const clock = options.clock ?? systemClock;
  const env = options.env ?? process.env;
  const dataDir = resolve(options.dataDir);
  const layout = dataDirLayout(dataDir);
  if (existsSync(layout.config)) throw new Error(`${dataDir} is already initialised (config.json exists)`);
  const tokenLifetimeSeconds = checkTokenLifetime(options.tokenLifetimeSeconds ?? DEFAULTS.tokenLifetimeSeconds, '--token-lifetime');
  checkPort(options.port ?? DEFAULTS.port, '--port');

  const created = !existsSync(dataDir);
  if (!created) {
    const entries = readdirSync(dataDir);
    const foreign = entries.filter((name) => !name.startsWith(STAGING_PREFIX));
    if (foreign.length > 0) {
      throw new DataDirError(
        dataDir,
        `${dataDir} is not empty (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''}) but has no config.json, so it is not an openmsi data dir. ` +
          'Choose another --data-dir, or move that directory aside and run init again.',
      );
    }
    // Left by an init that was killed half-way; nothing in it was ever in use.
    for (const name of entries) rmSync(join(dataDir, name), { recursive: true, force: true });
  }
  makePrivateDir(dataDir);
  const staging = mkdtempSync(join(dataDir, STAGING_PREFIX));
  try {
    const result = await initInto({ ...options, dataDir: staging }, dataDirLayout(staging), clock, env, tokenLifetimeSeconds);
    // Move everything up, config.json last.
    for (const name of readdirSync(staging).sort((a, b) => Number(a === 'config.json') - Number(b === 'config.json'))) {
      renameSync(join(staging, name), join(dataDir, name));
    }
    rmSync(staging, { recursive: true, force: true });
    return result;
  } catch (err) {
    if (created) rmSync(dataDir, { recursive: true, force: true });
    else rmSync(staging, { recursive: true, force: true });
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
  for (const dir of [dirname(layout.caCert), dirname(layout.serverCert)]) makePrivateDir(dir);

  const masterKey =
    readEnvironment(env).masterKey !== undefined ? MasterKey.fromEnvOrFile({ env, dataDir: options.dataDir }) : MasterKey.createFile(options.dataDir);

  const port = options.port ?? DEFAULTS.port;
  const host = options.host ?? DEFAULTS.host;
  const explicitUrl = options.publicUrl === undefined ? undefined : new URL(options.publicUrl).origin;
  if (explicitUrl !== undefined && !explicitUrl.startsWith('https://')) throw new Error(`--public-url must be an https URL: ${explicitUrl}`);
  const publicUrl = explicitUrl ?? defaultOrigin(host, port);
  const ca = await createCertificateAuthority({ commonName: `openmsi local CA (${hostname()})`, clock });
  const vaultDomain = options.vaultDomain ?? DEFAULTS.vaultDomain;
  if (!isVaultDomain(vaultDomain))
    throw new Error(`--vault-domain must be a lower-case DNS name of at least two labels, such as vault.localhost: ${String(vaultDomain)}`);
  const hostnames = unique(['localhost', new URL(publicUrl).hostname, `*.${vaultDomain}`, ...(options.hostnames ?? [])].filter((h) => !isIp(h)));
  const ipAddresses = unique(['127.0.0.1', '::1', ...(options.ipAddresses ?? []), ...[new URL(publicUrl).hostname].filter(isIp)]);
  const server = await issueServerCertificate({ caCertPem: ca.certPem, caKeyPkcs8Pem: ca.keyPkcs8Pem, hostnames, ipAddresses, clock });
  writePrivateFile(layout.caCert, ca.certPem);
  writePrivateFile(layout.caKey, masterKey.encrypt(ca.keyPkcs8Pem, 'ca-key'));
  writePrivateFile(layout.serverCert, `${server.certPem.trimEnd()}\n${ca.certPem.trimEnd()}\n`);
  writePrivateFile(layout.serverKey, masterKey.encrypt(server.keyPkcs8Pem, 'tls-server-key'));

  const config: InstallationConfig = {
    version: 1,
    tenantId: newGuid(),
    subscriptionId: newGuid(),
    host,
    port,
    ...(explicitUrl === undefined ? {} : { publicUrl: explicitUrl }),
    store: options.store ?? DEFAULTS.store,
    tokenLifetimeSeconds,
    vaultDomain,
  };
  const store = await openStore(storeLocation(options.dataDir, config, env));
  let admin: AdminCredentialFile;
  try {
    if ((await store.tenants.list()).length > 0) {
      throw new Error(
        "that store already holds an openmsi directory; init creates a new one. To run another replica against it, copy this data dir's counterpart (config.json, master.key, ca/, tls/) instead",
      );
    }
    const now = clock.now();
    const tenantDomain = (options.tenantDomain ?? DEFAULTS.tenantDomain).toLowerCase();
    admin = await store.transaction(async (tx) => {
      await tx.tenants.create({ id: config.tenantId, displayName: 'openmsi', defaultDomain: tenantDomain, createdAt: now });
      await tx.subscriptions.create({ id: config.subscriptionId, tenantId: config.tenantId, displayName: 'openmsi', state: 'Enabled', createdAt: now });
      const principal = await createApplicationPrincipal(tx, {
        tenantId: config.tenantId,
        displayName: 'openmsi-bootstrap-admin',
        isDirectoryAdmin: true,
        clock,
      });
      // Its rights: Owner at the tenant root, an ordinary role assignment.
      await assignBootstrapOwner(tx, { tenantId: config.tenantId, principalId: principal.objectId, clock });
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
    await new KeyRotator({
      store: store.signingKeys,
      locks: store.locks,
      masterKey,
      clock,
      keyRing,
      policy: { maxTokenLifetimeMs: tokenLifetimeSeconds * 1000 },
    }).ensureKeys();
  } finally {
    await store.close();
  }
  writePrivateFile(layout.adminCredential, JSON.stringify(admin, null, 2) + '\n', { flag: 'wx' });
  // Written last: its presence is what marks the data dir as initialised.
  writePrivateFile(layout.config, JSON.stringify(config, null, 2) + '\n');
  return { config, admin, caCertPem: ca.certPem };
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function isIp(value: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(value) || value.includes(':') || value.startsWith('[');
}
