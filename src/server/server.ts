import { IssuerKeys } from '../authority/federation/issuer-keys.js';
import {
  DEFAULT_OUTBOUND_ISSUER_PATH,
  OUTBOUND_ASSERTION_LIFETIME_SECONDS,
  outboundIssuerProblem,
  outboundJwks,
} from '../authority/federation/outbound-issuer.js';
import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import { DAY, HOUR, systemClock, type Clock } from '../shared/clock.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { METRICS_DEFAULTS, loadInstallationConfig, readEnvironment, storeLocation, type InstallationConfig } from '../shared/config.js';
import { dataDirLayout } from '../shared/data-dir.js';
import { isGuid } from '../shared/ids.js';
import { BackgroundInterval } from '../shared/interval.js';
import { TokenVerificationError, createTokenVerifier, localJwks, type VerifiedToken } from '../shared/token-verifier.js';
import { MasterKey } from '../pki/master-key.js';
import { readDataDirPem, readEncryptedDataDirFile } from '../pki/data-dir-files.js';
import { openStore } from '../store/open.js';
import { takeBackup } from '../backup/create.js';
import type { Store } from '../store/types.js';
import { AuditWriter } from '../store/audit-writer.js';
import type { ServerContext } from './context.js';
import { KeyRing } from '../authority/keys/key-ring.js';
import { KeyRotator } from '../authority/keys/rotation.js';
import { buildServerApp } from './app.js';
import { Readiness } from './readiness.js';
import { ServerMetrics, listenMetrics, type MetricsListener } from './metrics.js';
import { TokenIssuer } from '../authority/token-issuer.js';
import { explicitPublicUrl } from '../shared/public-url.js';
import { removeRunningAuthority, writeRunningAuthority } from '../shared/running-authority.js';
import { AuthorityUrls, certificateNames } from '../authority/urls.js';
import { upgradeBootstrapOwners } from '../authority/bootstrap-owner.js';
import { createAuthorizer } from '../rbac/authorizer.js';
import { BUILTIN_ROLES } from '../rbac/builtin-roles.js';
import { createStoreRbacSource } from '../store/rbac-state-source.js';
import { buildVaultApp } from '../vault/app.js';
import { rotateDueKeys } from '../vault/keys/index.js';
import { createSecretCipher } from '../vault/secret-cipher.js';
import { vaultNameFromHost, type VaultContext } from '../vault/contracts.js';
import { ensureVaultCertificate } from './vault-certificate.js';
import { ClientDirectory } from '../authority/token/client-directory.js';
import { ClientAuthThrottle, type ClientAuthThrottlePolicy } from '../authority/token/throttle.js';

export interface OpenmsiServerOptions {
  dataDir: string;
  clock?: Clock;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  /** Overrides the configured listen address (tests pass port 0). */
  host?: string;
  port?: number;
  /** Overrides the public URL (`--public-url`); otherwise config.json's, else derived from the listen address. */
  publicUrl?: string;
  /** Overrides the outbound federation issuer (`--federation-issuer`); otherwise config.json's, else the default one. */
  federationIssuer?: string;
  /** Serve plain HTTP instead of HTTPS; only for in-process tests that use `inject()`. */
  insecureForTests?: boolean;
  /** Overrides where the store lives (a postgres:// URL or a SQLite path); otherwise OPENMSI_STORE, then config.json. */
  store?: string;
  /** Start the automatic key-rotation timer (default true). */
  autoRotate?: boolean;
  /** Limits on failed client authentication at the token endpoint (default: `DEFAULT_CLIENT_AUTH_THROTTLE`, token/throttle.ts). */
  clientAuthThrottle?: ClientAuthThrottlePolicy;
  /** How long the token endpoint's client cache trusts an entry without a change notice (default 1 s; tests lengthen it to prove the notices). */
  clientCacheMaxAgeMs?: number;
  /**
   * Prometheus metrics on a listener of their own (`--metrics-port`, `--metrics-host`; host default
   * {@link METRICS_DEFAULTS}.host, port 0 picks one). Absent, no metrics are kept at all.
   */
  metrics?: { port: number; host?: string };
}

export interface OpenmsiServer {
  readonly ctx: ServerContext;
  readonly app: FastifyInstance;
  /** The vault data plane, served on the same listener for `*.{vaultDomain}` hosts. */
  readonly vaultApp: FastifyInstance;
  readonly config: InstallationConfig;
  /** The metrics registry, when `metrics` was asked for. */
  readonly metrics: ServerMetrics | undefined;
  /** `http://host:port` of the metrics listener once listening (undefined without `metrics`). */
  readonly metricsUrl: string | undefined;
  /** Starts listening; resolves to the canonical https origin advertised (on the port actually bound). */
  listen(): Promise<string>;
  close(): Promise<void>;
}

/** Opens everything one authority process needs, from an initialised data dir. */
export async function createOpenmsiServer(options: OpenmsiServerOptions): Promise<OpenmsiServer> {
  const env = options.env ?? process.env;
  const clock = options.clock ?? systemClock;
  const settings = readEnvironment(env);
  const logger = options.logger ?? createLogger(settings.logLevel === undefined ? {} : { level: settings.logLevel });
  const layout = dataDirLayout(options.dataDir);
  const config = loadInstallationConfig(options.dataDir);
  const masterKey = MasterKey.fromEnvOrFile({ env, dataDir: options.dataDir });
  if (options.insecureForTests !== true && (await ensureVaultCertificate({ dataDir: options.dataDir, masterKey, vaultDomain: config.vaultDomain, clock }))) {
    logger.info({ vaultDomain: config.vaultDomain }, `re-issued the TLS server certificate to cover *.${config.vaultDomain} (vault hosts)`);
  }
  const tls = options.insecureForTests
    ? undefined
    : {
        cert: readDataDirPem(layout.serverCert, 'the TLS server certificate', 'CERTIFICATE'),
        key: readEncryptedDataDirFile(layout.serverKey, 'the TLS server key', masterKey, 'tls-server-key'),
      };
  const caCertPem = readDataDirPem(layout.caCert, 'the CA certificate', 'CERTIFICATE');
  const listenHost = options.host ?? config.host;
  const listenPort = options.port ?? config.port;
  const urls = new AuthorityUrls({
    publicUrl: options.publicUrl ?? explicitPublicUrl(config),
    listenHost,
    port: listenPort,
    certificateNames: certificateNames(tls?.cert ?? readDataDirPem(layout.serverCert, 'the TLS server certificate', 'CERTIFICATE')),
  });

  const federationIssuer = options.federationIssuer ?? config.federationIssuer;
  const issuerProblem = federationIssuer === undefined ? undefined : outboundIssuerProblem(federationIssuer);
  if (issuerProblem !== undefined) throw new Error(`the federation issuer ${JSON.stringify(federationIssuer)} ${issuerProblem}`);

  // Off unless asked for: then nothing is counted or timed at all.
  const metrics = options.metrics === undefined ? undefined : new ServerMetrics();
  const location = options.store ?? storeLocation(options.dataDir, config, env);
  const store = await openStore(location, metrics === undefined ? {} : { onQuery: (seconds, outcome) => metrics.query(seconds, outcome) });
  try {
    const audit = new AuditWriter({ store: store.audit, clock, logger });
    // Every replica's key changes reach this key ring at once (change notices); the timer below is a backstop.
    const keyRing = await KeyRing.load({
      store: store.signingKeys,
      masterKey,
      clock,
      notifications: store.notifications,
      onError: (err) =>
        logger.warn({ err: { message: (err as Error).message } }, 'signing key ring reload after a change failed; the old snapshot stays in use'),
    });
    const rotator = new KeyRotator({
      store: store.signingKeys,
      locks: store.locks,
      masterKey,
      clock,
      keyRing,
      // Outbound federation assertions (an hour) are signed with the same keys: a retired key stays published for them too.
      policy: { maxTokenLifetimeMs: Math.max(config.tokenLifetimeSeconds, OUTBOUND_ASSERTION_LIFETIME_SECONDS) * 1000 },
      onEvent: (event) => {
        void audit
          .record({ tenantId: null, actor: 'system', action: event.action, target: event.kid, outcome: 'success', detail: event.detail ?? {} })
          .catch(() => undefined);
      },
    });
    await rotator.tick();
    const tokens = new TokenIssuer({ keyRing, urls, clock, lifetimeSeconds: config.tokenLifetimeSeconds });
    const verifyAccessToken = makeLocalVerifier(store, keyRing, urls, clock);
    const signingKeys = {
      publishedKids: () => new Set(keyRing.jwks().keys.map((k) => String(k['kid']))),
      rotateNow: (o: { revokePrevious: boolean }) => rotator.rotateNow(o),
    };
    // RBAC: a data dir from before RBAC gets its bootstrap admin made Owner at `/`; then every management
    // call is decided by the authoriser over the store (cached, invalidated by change notices).
    await upgradeBootstrapOwners(store, clock, logger);
    const rbacSource = createStoreRbacSource(store, BUILTIN_ROLES);
    const authorizer = createAuthorizer({ source: rbacSource, clock });
    const authThrottle = new ClientAuthThrottle({
      store: store.authFailures,
      clock,
      ...(options.clientAuthThrottle === undefined ? {} : { policy: options.clientAuthThrottle }),
      onError: (err: unknown) => logger.warn({ err: { message: (err as Error).message } }, 'recording a failed client authentication failed'),
    });
    const clients = new ClientDirectory({
      store,
      clock,
      ...(options.clientCacheMaxAgeMs === undefined ? {} : { maxAgeMs: options.clientCacheMaxAgeMs }),
    });
    metrics?.watch({ store: store.health, audit, authorizer });
    const ctx: ServerContext = {
      store,
      keyRing,
      rotator,
      masterKey,
      clock,
      logger,
      audit,
      tokens,
      urls,
      authThrottle,
      clients,
      federation: new IssuerKeys({ now: () => clock.now() }),
      outboundIssuer: () => federationIssuer ?? urls.origin + DEFAULT_OUTBOUND_ISSUER_PATH,
      outboundIssuerIsDefault: federationIssuer === undefined,
      outboundFederation: { issuer: () => federationIssuer ?? urls.origin + DEFAULT_OUTBOUND_ISSUER_PATH, jwks: () => outboundJwks(keyRing) },
      authority: urls,
      signingKeys,
      verifyAccessToken,
      caCertPem,
      readiness: new Readiness({ store: store.health, keyRing, clock, logger }),
      ...(metrics === undefined ? {} : { metrics }),
      authorizer,
      rbacSource,
      defaultTenantId: config.tenantId,
      ...(store.snapshot === undefined
        ? {}
        : { backups: { take: () => takeBackup({ dataDir: options.dataDir, storePath: location, store, masterKey, clock }) } }),
      vaultDomain: config.vaultDomain,
    };
    const vaultCtx: VaultContext = {
      store,
      masterKey,
      clock,
      logger,
      audit,
      authorizer,
      verifyAccessToken,
      authorityOrigin: () => urls.origin,
      vaultDomain: config.vaultDomain,
      signingKeyPublished: (kid) => keyRing.isPublished(kid),
    };
    const vaultApp = await buildVaultApp(vaultCtx);
    await vaultApp.ready();
    // Serve only once every change channel subscribed above hears the other replicas (LISTEN is up).
    await store.notifications.ready();
    const app = await buildServerApp(ctx, tls, [
      { matches: (host) => vaultNameFromHost(host, config.vaultDomain) !== undefined, handle: (req, res) => vaultApp.routing(req, res) },
    ]);

    if (options.autoRotate !== false) {
      rotator.start();
      // Other replicas' rotations arrive as change notices; this reload covers a notice lost while LISTEN reconnected.
      keyRing.startAutoRefresh(30_000);
    }
    const replayPurge = new BackgroundInterval();
    replayPurge.start(
      60_000,
      // Join tokens are kept a day past expiry, so a late attempt is told `JoinTokenExpired`, not `JoinTokenInvalid`.
      () =>
        Promise.all([
          store.replay.purgeExpired(clock.now()),
          store.authFailures.purgeExpired(clock.now()),
          store.enrolmentFailures.purgeExpired(clock.now()),
          store.joinTokens.purgeExpired(clock.now() - DAY),
          // Expired refresh tokens (a used or revoked one is kept until then, so a replay is still recognised as one).
          store.refreshTokens.purgeExpired(clock.now()),
          // Sign-in codes are kept an hour past expiry, so a late poll or replay is told `expired_token` / 54005.
          store.authorizationCodes.purgeExpired(clock.now() - HOUR),
          store.deviceCodes.purgeExpired(clock.now() - HOUR),
          // Soft-deleted secrets, keys and vaults past their retention go for good, as Key Vault purges them.
          store.secrets.purgeDue(clock.now()),
          store.keys.purgeDue(clock.now()),
          purgeDueVaults(store, clock.now()),
        ]),
      (err: unknown) => logger.warn({ err: { message: (err as Error).message } }, 'replay, join-token or retention purge failed'),
    );

    // Key rotation policies' Rotate actions (vault keys spec §1.8); a compare-and-set keeps replicas from rotating twice.
    const keyRotation = new BackgroundInterval();
    keyRotation.start(
      60_000,
      () => rotateDueKeys({ store, cipher: createSecretCipher(masterKey), clock, logger }),
      (err: unknown) => logger.warn({ err: { message: (err as Error).message } }, 'scheduled key rotation failed'),
    );

    let closed = false;
    let metricsListener: MetricsListener | undefined;
    return {
      ctx,
      app,
      vaultApp,
      config,
      metrics,
      get metricsUrl() {
        return metricsListener?.url;
      },
      async listen() {
        await app.listen({ host: listenHost, port: listenPort });
        if (metrics !== undefined && options.metrics !== undefined) {
          const host = options.metrics.host ?? METRICS_DEFAULTS.host;
          try {
            metricsListener = await listenMetrics(metrics.registry, host, options.metrics.port);
          } catch (err) {
            await app.close();
            throw new Error(`cannot serve metrics on ${host}:${String(options.metrics.port)} (--metrics-host, --metrics-port): ${(err as Error).message}`, {
              cause: err,
            });
          }
          logger.debug({ url: metricsListener.url }, 'metrics listening');
        }
        const address = app.server.address();
        const port = typeof address === 'object' && address !== null ? address.port : listenPort;
        urls.bind(port);
        writeRunningAuthority(options.dataDir, urls.origin);
        logger.debug({ url: urls.origin, host: listenHost, port }, 'authority listening');
        if (!urls.canonicalIsCertified()) {
          logger.warn(
            { url: urls.origin },
            `the server certificate does not name ${urls.origin}, so clients will refuse it: listen on a name it holds, set --public-url, or re-initialise with --hostname/--ip`,
          );
        }
        return urls.origin;
      },
      async close() {
        if (closed) return;
        closed = true;
        replayPurge.stop();
        keyRotation.stop();
        rotator.stop();
        keyRing.stop();
        authorizer.close();
        clients.close();
        removeRunningAuthority(options.dataDir);
        await metricsListener?.close();
        await app.close();
        await vaultApp.close();
        await audit.flush();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** Purges the soft-deleted vaults whose retention has passed; how many. */
export async function purgeDueVaults(store: Store, now: number): Promise<number> {
  let purged = 0;
  for (const vault of await store.vaults.listPurgeDue(now)) if (await store.vaults.purge(vault.id)) purged += 1;
  return purged;
}

/** One verifier per (tenant, audience set), all over the in-memory key ring: no network, no database. */
export function makeLocalVerifier(store: Store, keyRing: KeyRing, urls: AuthorityUrls, clock: Clock) {
  const jwks = localJwks(() => keyRing.jwks());
  const verifiers = new Map<string, ReturnType<typeof createTokenVerifier>>();
  return async (token: string, audiences: readonly string[]): Promise<VerifiedToken> => {
    let tid: unknown;
    try {
      tid = decodeJwt(token).tid;
    } catch {
      throw new TokenVerificationError('malformed', 'the token is not a JWT');
    }
    if (typeof tid !== 'string' || !isGuid(tid)) throw new TokenVerificationError('missing_claim', 'the token has no tenant id');
    const cacheKey = `${tid}|${audiences.join(' ')}`;
    let verifier = verifiers.get(cacheKey);
    if (verifier === undefined) {
      if ((await store.tenants.get(tid)) === undefined) throw new TokenVerificationError('bad_issuer', 'the token names an unknown tenant');
      verifier = createTokenVerifier({ jwks, issuers: [urls.v1Issuer(tid)], audiences, clock });
      verifiers.set(cacheKey, verifier);
    }
    return verifier.verify(token);
  };
}
