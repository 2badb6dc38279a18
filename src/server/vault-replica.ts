/**
 * `openmsi vault`: the vault data plane alone, for replicas that share a PostgreSQL store with `openmsi server`.
 * It holds no authority of its own: it reads the published signing keys from the store (reloaded on every
 * key change notice, through LISTEN, and every 30 s as a backstop) and verifies tokens with the same verifier, decides with the same
 * RBAC authoriser over the same store (change notices through LISTEN), and serves with the data dir's TLS
 * material, which covers `*.{vaultDomain}`.
 */
import type { FastifyInstance } from 'fastify';
import { systemClock, type Clock } from '../shared/clock.js';
import { loadInstallationConfig, readEnvironment, storeLocation } from '../shared/config.js';
import { dataDirLayout } from '../shared/data-dir.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { defaultOrigin, explicitPublicUrl } from '../shared/public-url.js';
import { MasterKey } from '../pki/master-key.js';
import { readDataDirPem, readEncryptedDataDirFile } from '../pki/data-dir-files.js';
import { createAuthorizer } from '../rbac/authorizer.js';
import { BUILTIN_ROLES } from '../rbac/builtin-roles.js';
import { AuditWriter } from '../store/audit-writer.js';
import { openStore } from '../store/open.js';
import { createStoreRbacSource } from '../store/rbac-state-source.js';
import { buildVaultApp } from '../vault/app.js';
import type { VaultContext } from '../vault/contracts.js';
import { makeLocalVerifier } from './server.js';
import { KeyRing } from '../authority/keys/key-ring.js';
import { ensureVaultCertificate } from './vault-certificate.js';
import { AuthorityUrls, certificateNames } from '../authority/urls.js';

export interface VaultReplicaOptions {
  dataDir: string;
  /** Listen address and port (default: the configured address, port 0 in tests). */
  host?: string;
  port: number;
  /** A postgres:// URL (or SQLite path); otherwise OPENMSI_STORE, then config.json. */
  store?: string;
  clock?: Clock;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

export interface VaultReplica {
  readonly app: FastifyInstance;
  /** Resolves to the port bound. */
  listen(): Promise<number>;
  close(): Promise<void>;
}

/** Opens a vault-only process over the data dir's store and keys. */
export async function createVaultReplica(options: VaultReplicaOptions): Promise<VaultReplica> {
  const env = options.env ?? process.env;
  const clock = options.clock ?? systemClock;
  const settings = readEnvironment(env);
  const logger = options.logger ?? createLogger(settings.logLevel === undefined ? {} : { level: settings.logLevel });
  const config = loadInstallationConfig(options.dataDir);
  const layout = dataDirLayout(options.dataDir);
  const masterKey = MasterKey.fromEnvOrFile({ env, dataDir: options.dataDir });
  await ensureVaultCertificate({ dataDir: options.dataDir, masterKey, vaultDomain: config.vaultDomain, clock });
  const cert = readDataDirPem(layout.serverCert, 'the TLS server certificate', 'CERTIFICATE');
  const key = readEncryptedDataDirFile(layout.serverKey, 'the TLS server key', masterKey, 'tls-server-key');
  // The authority this replica names in its challenges, and whose issuer its tokens carry.
  const urls = new AuthorityUrls({
    publicUrl: explicitPublicUrl(config) ?? defaultOrigin(config.host, config.port),
    listenHost: config.host,
    port: config.port,
    certificateNames: certificateNames(cert),
  });

  const store = await openStore(options.store ?? storeLocation(options.dataDir, config, env));
  try {
    // The server's rotations and revocations arrive as change notices (LISTEN); the timer covers a lost notice.
    const keyRing = await KeyRing.load({
      store: store.signingKeys,
      masterKey,
      clock,
      notifications: store.notifications,
      onError: (err) =>
        logger.warn({ err: { message: (err as Error).message } }, 'signing key ring reload after a change failed; the old snapshot stays in use'),
    });
    keyRing.startAutoRefresh(30_000);
    const authorizer = createAuthorizer({ source: createStoreRbacSource(store, BUILTIN_ROLES), clock });
    const audit = new AuditWriter({ store: store.audit, clock, logger });
    const ctx: VaultContext = {
      store,
      masterKey,
      clock,
      logger,
      audit,
      authorizer,
      verifyAccessToken: makeLocalVerifier(store, keyRing, urls, clock),
      signingKeyPublished: (kid) => keyRing.isPublished(kid),
      authorityOrigin: () => urls.origin,
      vaultDomain: config.vaultDomain,
    };
    const app = await buildVaultApp(ctx, { tls: { cert, key } });
    // Serve only once every change channel subscribed above hears the other replicas (LISTEN is up).
    await store.notifications.ready();
    let closed = false;
    return {
      app,
      async listen() {
        await app.listen({ host: options.host ?? config.host, port: options.port });
        const address = app.server.address();
        return typeof address === 'object' && address !== null ? address.port : options.port;
      },
      async close() {
        if (closed) return;
        closed = true;
        keyRing.stop();
        authorizer.close();
        await app.close();
        await audit.flush();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
