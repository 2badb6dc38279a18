/**
 * `openmsi agent` composed: host credential (enrol or reuse, renewal), authority client, host identities,
 * token cache, rate limit, guard and HTTP server. {@link createAgent} starts it; `close()` stops it.
 */
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { HostDescription } from '../shared/host-protocol.js';
import { AGENT_DEFAULTS, METRICS_DEFAULTS } from '../shared/config.js';
import { listenMetrics, type MetricsListener } from '../shared/metrics-listener.js';
import { AgentMetrics } from './metrics.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { createLogger, type Logger } from '../shared/logger.js';
import type { AgentAuditSink, CallerResolver, SessionLookup } from './contracts.js';
import { AgentAuditPipeline, AuditBatchRefusedError } from './audit/pipeline.js';
import { ProcCallerResolver } from './caller.js';
import { SessionRegistry } from './sessions.js';
import { createControlApi, hostIdentityCheck, loadOrCreateControlSecret, type ControlApi } from './control.js';
import { AuthorityClient, UpstreamError, type GrantSelector, type HostSigningKey, type SelfLongPoll } from './upstream.js';
import {
  authorityUrlsOf,
  enrolHost,
  HostCredentialKeeper,
  loadHostCredential,
  machineSecret,
  refuseJoinTokenForEnrolledDir,
  type HostCredential,
} from './host-credential.js';
import { HostIdentities } from './identities.js';
import { JoinTokenFileWatch, readJoinTokenFile } from './join-token-file.js';
import { FederationAssertions } from './federation/assertions.js';
import { UpstreamExchange } from './federation/exchange.js';
import { FederatedTokenFiles, type TokenFileSpec } from './federation/token-files.js';
import { TokenCache } from './token-cache.js';
import { RateLimiter } from './rate-limit.js';
import { RequestGuard } from './guard.js';
import { digestOf, type SurfaceContext } from './surfaces/common.js';
import { ArcChallenges } from './surfaces/arc.js';
import { createAgentServer } from './server.js';
import { agentReadiness } from './health.js';
import { removeRunningAgent, writeRunningAgent } from '../shared/running-agent.js';

export interface AgentOptions {
  /** The agent's data dir (host key, credential record, machine secret). */
  dataDir: string;
  /** The authority origin; required for the first start, else taken from the saved credential. */
  authorityUrl?: string;
  /**
   * Several authorities (replicas of one installation; `--authority`, repeatable), in order of preference: the
   * agent uses the first that serves, fails over on connection errors and 5xx, and goes back when a more
   * preferred one is ready again (authority-pool.ts). Takes precedence over {@link authorityUrl}; absent, the
   * authorities saved at enrolment.
   */
  authorityUrls?: string[];
  /** Backoff of the readiness probes of a more preferred authority (default {@link AGENT_DEFAULTS}.authorityProbeMinMs/MaxMs). */
  authorityProbeMinMs?: number;
  authorityProbeMaxMs?: number;
  /** PEM file of the authority's CA; else the one saved at enrolment, else the system roots. */
  caFile?: string;
  /** Enrols the host on first start. Ignored (with a log line) when a credential is already saved. */
  joinToken?: string;
  /**
   * A file holding a join token (`--join-token-file`; not with {@link joinToken}): read at start like
   * `joinToken`, and re-read while the authority refuses the host, which is enrolled again (no restart) when the
   * file holds a token other than the last one tried (join-token-file.ts).
   */
  joinTokenFile?: string;
  /** How often the join token file is read while the host is refused (default {@link AGENT_DEFAULTS}.joinTokenFilePollMs). */
  joinTokenFilePollMs?: number;
  /** Listen address (default 127.0.0.1) and port (default 50342; 0 picks a free one). */
  host?: string;
  port?: number;
  /** Machine-wide surfaces: IMDS + Cloud Shell + Arc (`--no-imds` → false); App Service machine secret (`--no-app-service` → false). */
  imds?: boolean;
  appService?: boolean;
  /** Azure Arc challenge (opt-in); `arcTokenDir` overrides the fixed directory (tests only: clients insist on the default). */
  arc?: boolean;
  arcTokenDir?: string;
  identityPollMs?: number;
  /** The `self` long poll's wait in seconds (0: poll every `identityPollMs` instead); default {@link AGENT_DEFAULTS.identityLongPollSeconds}. */
  identityLongPollSeconds?: number;
  /** Prometheus metrics on a plain-HTTP listener of their own (`--metrics-port`; host default 127.0.0.1, port 0 picks one). */
  metrics?: { port: number; host?: string };
  /** `GET /readyz` turns unready when the authority has not answered for this long (default {@link AGENT_DEFAULTS.readyStaleMs}). */
  readyStaleMs?: number;
  rateLimit?: { perSecond: number; burst?: number };
  cacheMaxEntries?: number;
  retryAfterSeconds?: number;
  upstreamTimeoutMs?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** PEM file of a CA to trust for upstream Entra token endpoints (outbound federation), besides Node's roots. */
  upstreamCaFile?: string;
  /** Outbound federation token files: the agent keeps each linked identity's assertion in its file (token-files.ts). */
  federatedTokenFiles?: TokenFileSpec[];
  /** Extra peer addresses allowed besides loopback (only for the documented 169.254.169.254 DNAT setup). */
  allowedPeers?: string[];
  clock?: Clock;
  logger?: Logger;
  random?: () => number;
  /**
   * The seams. Defaults are the real ones: the spooled audit pipeline uploading to the authority
   * ({@link AgentAuditPipeline}), /proc caller attribution ({@link ProcCallerResolver}), and the
   * `openmsi run` session registry with its control API ({@link SessionRegistry}, {@link createControlApi}).
   * Passing `sessions` or `requestHook` replaces the control API.
   */
  auditSink?: AgentAuditSink;
  callerResolver?: CallerResolver;
  sessions?: SessionLookup;
  /** Sees every request that passed the guard before the surfaces do; returns true when it answered it. */
  requestHook?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** How the host's identities are read (default: the authority's `GET self`). */
  describeHost?: (upstream: AuthorityClient, key: HostSigningKey, poll?: SelfLongPoll, signal?: AbortSignal) => Promise<HostDescription>;
}

export interface Agent {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  server: Server;
  upstream: AuthorityClient;
  identities: HostIdentities;
  cache: TokenCache;
  credential: HostCredentialKeeper;
  /** Outbound federation: assertions from the authority, the upstream exchange, the token files. */
  federation: { assertions: FederationAssertions; exchange: UpstreamExchange; tokenFiles: FederatedTokenFiles | undefined };
  /** The longest an identity removed from the host keeps getting tokens (poll interval + one `self` call). */
  removalBoundMs: number;
  /** `http://host:port` of the metrics listener, when `metrics` was asked for. */
  metricsUrl: string | undefined;
  /** Whether the authority refused this host (revoked credential or deleted host). */
  readonly hostRefused: boolean;
  close(): Promise<void>;
}

export async function createAgent(options: AgentOptions): Promise<Agent> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger();
  const random = options.random ?? Math.random;
  const dataDir = resolvePath(options.dataDir);
  const timeoutMs = options.upstreamTimeoutMs ?? AGENT_DEFAULTS.upstreamTimeoutMs;
  const retryBaseMs = options.retryBaseMs ?? AGENT_DEFAULTS.retryBaseMs;
  const retryMaxMs = options.retryMaxMs ?? AGENT_DEFAULTS.retryMaxMs;

  let saved = await loadHostCredential(dataDir);
  const given = options.authorityUrls ?? (options.authorityUrl === undefined ? [] : [options.authorityUrl]);
  const authorityUrls = given.length > 0 ? given : saved === undefined ? [] : authorityUrlsOf(saved.record);
  if (authorityUrls.length === 0) throw new Error(`no host credential in ${dataDir}: the first start needs --authority URL and --join-token TOKEN`);
  const caFile = options.caFile === undefined ? saved?.record.caFile : resolvePath(options.caFile);
  const metrics = options.metrics === undefined ? undefined : new AgentMetrics({ authorities: [...new Set(authorityUrls.map((url) => new URL(url).origin))] });
  const upstream = new AuthorityClient({
    authorityUrls,
    ...(caFile === undefined ? {} : { caPem: readFileSync(caFile, 'utf8') }),
    clock,
    timeoutMs,
    random,
    ...(options.authorityProbeMinMs === undefined ? {} : { probeMinMs: options.authorityProbeMinMs }),
    ...(options.authorityProbeMaxMs === undefined ? {} : { probeMaxMs: options.authorityProbeMaxMs }),
    onSwitch: (event) => {
      metrics?.authoritySwitch(event.reason, event.to.index);
      if (event.reason === 'failover')
        logger.warn({ from: event.from.origin, to: event.to.origin }, 'the authority in use failed (connection error or 5xx): failed over to the next');
      else logger.info({ from: event.from.origin, to: event.to.origin }, 'a more preferred authority is ready again: using it');
    },
  });
  if (upstream.pool.endpoints.length > 1) logger.info({ authorities: upstream.origins }, 'authorities, in order of preference');
  if (options.joinToken !== undefined && options.joinTokenFile !== undefined) throw new Error('--join-token and --join-token-file: give one, not both');
  const joinTokenFile = options.joinTokenFile === undefined ? undefined : resolvePath(options.joinTokenFile);
  if (saved === undefined) {
    const joinToken = options.joinToken ?? (joinTokenFile === undefined ? undefined : readJoinTokenFile(joinTokenFile));
    if (joinToken === undefined) {
      throw new Error(
        joinTokenFile === undefined
          ? `no host credential in ${dataDir}: the first start needs --join-token TOKEN`
          : `no host credential in ${dataDir}, and the join token file ${joinTokenFile} is missing or empty`,
      );
    }
    saved = await enrolHost({ dataDir, upstream, joinToken, ...(caFile === undefined ? {} : { caFile }) });
    logger.info({ host: saved.record.hostResourceId, keyId: saved.record.keyId }, 'host enrolled');
  } else if (options.joinToken !== undefined) {
    refuseJoinTokenForEnrolledDir(dataDir, saved.record, options.joinToken);
    logger.info({ host: saved.record.hostResourceId }, 'this data dir already enrolled with this join token; the saved host credential is used');
  }
  const credentialAtStart: HostCredential = saved;

  let refused = false;
  // Set once the pieces below exist; a refusal before that (impossible: nothing runs yet) is a no-op.
  let stopServing: (err: UpstreamError) => void = () => undefined;
  const credential = new HostCredentialKeeper({
    dataDir,
    upstream,
    credential: credentialAtStart,
    logger,
    clock,
    random,
    retryBaseMs,
    retryMaxMs,
    onNotRecognised: (err) => stopServing(err),
  });
  const describe =
    options.describeHost ?? ((client: AuthorityClient, key: HostSigningKey, poll?: SelfLongPoll, signal?: AbortSignal) => client.self(key, poll, signal));
  const identities = new HostIdentities({
    describe: (poll, signal) => describe(upstream, credential.current.key, poll, signal),
    pollMs: options.identityPollMs ?? AGENT_DEFAULTS.identityPollMs,
    longPollSeconds: options.identityLongPollSeconds ?? AGENT_DEFAULTS.identityLongPollSeconds,
    reconcileMs: AGENT_DEFAULTS.identityReconcileMs,
    logger,
    clock,
    onRemoved: (objectIds) => {
      cache.dropIdentities(objectIds);
      assertions.drop(objectIds);
    },
    onUpstreamChanged: (objectIds) => {
      cache.dropIdentities(objectIds);
      assertions.drop(objectIds);
    },
    onHostNotRecognised: (err) => stopServing(err),
    // A host refused and then enrolled again under this agent's key serves again, without a restart.
    onHostRecognised: () => {
      if (!refused) return;
      refused = false;
      logger.info('the authority recognises this host again: serving tokens');
    },
  });
  // Outbound federation: a linked identity's tokens come from its upstream Entra, in exchange for openmsi's assertion.
  const assertions = new FederationAssertions({ fetch: (objectId) => upstream.federationAssertion(credential.current.key, objectId), clock });
  const exchange = new UpstreamExchange({
    ...(options.upstreamCaFile === undefined ? {} : { caPem: readFileSync(resolvePath(options.upstreamCaFile), 'utf8') }),
    timeoutMs,
    clock,
  });
  const cache: TokenCache = new TokenCache({
    fetch: async (identity, resource) => {
      if (identity.upstream !== undefined) {
        const grant = await assertions.get(identity.objectId);
        return exchange.token(identity.upstream, grant.assertion, resource);
      }
      const selector: GrantSelector = identity.type === 'SystemAssigned' ? { kind: 'system' } : { kind: 'mi_object_id', value: identity.objectId };
      const current = credential.current;
      return upstream.token(current.key, current.record.tokenEndpoint, selector, resource);
    },
    logger,
    clock,
    random,
    maxEntries: options.cacheMaxEntries ?? AGENT_DEFAULTS.cacheMaxEntries,
    retryBaseMs,
    retryMaxMs,
  });
  stopServing = (err) => {
    if (!refused)
      logger.error({ err: err.message }, 'the authority does not recognise this host (credential revoked or host deleted): cache cleared, serving no tokens');
    refused = true;
    cache.clear();
    assertions.clear();
    identities.clear();
  };

  // Audit, attribution and sessions: the real pipeline unless a test passes its own.
  const pipeline =
    options.auditSink === undefined
      ? await AgentAuditPipeline.open({
          dataDir,
          upload: async (records, signal) => {
            try {
              const { refused } = await upstream.audit(credential.current.key, records, signal);
              if (refused > 0) logger.warn({ refused, records: records.length }, 'the authority refused audit records and counted them as dropped');
            } catch (err) {
              // 400 / 413: the batch itself is refused, and would be again: the pipeline splits it.
              if (err instanceof UpstreamError && err.kind === 'refused' && (err.status === 400 || err.status === 413)) {
                throw new AuditBatchRefusedError(err.message, { cause: err });
              }
              throw err;
            }
          },
          clock,
          logger,
          random,
        })
      : undefined;
  const auditSink: AgentAuditSink = options.auditSink ?? (pipeline as AgentAuditPipeline);
  const callers: CallerResolver = options.callerResolver ?? new ProcCallerResolver({ logger });
  let control: ControlApi | undefined;
  let sessions: SessionLookup;
  let requestHook = options.requestHook;
  if (options.sessions === undefined && requestHook === undefined) {
    const registry = new SessionRegistry();
    control = createControlApi({
      controlSecret: loadOrCreateControlSecret(dataDir),
      sessions: registry,
      audit: auditSink,
      callers,
      logger,
      checkIdentities: hostIdentityCheck(identities),
    });
    sessions = registry;
    requestHook = control.handleControlRequest.bind(control);
  } else {
    sessions = options.sessions ?? new SessionRegistry();
  }

  const guard = new RequestGuard({ ...(options.allowedPeers === undefined ? {} : { allowedPeers: options.allowedPeers }) });
  const secret = machineSecret(dataDir);
  const ctx: SurfaceContext = {
    clock,
    logger,
    identities,
    cache,
    limiter: new RateLimiter({
      perSecond: options.rateLimit?.perSecond ?? AGENT_DEFAULTS.rateLimitPerSecond,
      burst: options.rateLimit?.burst ?? options.rateLimit?.perSecond ?? AGENT_DEFAULTS.rateLimitBurst,
      clock,
    }),
    audit: auditSink,
    callers,
    sessions,
    machineSecretDigest: digestOf(secret),
    imds: options.imds ?? true,
    appService: options.appService ?? true,
    retryAfterSeconds: options.retryAfterSeconds ?? AGENT_DEFAULTS.retryAfterSeconds,
    hostRefused: () => refused,
    onHostNotRecognised: (err) => stopServing(err),
    ...(metrics === undefined ? {} : { metrics }),
  };
  let arc: ArcChallenges | undefined;
  if (options.arc === true) {
    arc = new ArcChallenges({ dir: options.arcTokenDir ?? AGENT_DEFAULTS.arcTokenDir, clock, windowMs: AGENT_DEFAULTS.arcChallengeMs });
    try {
      arc.prepare();
    } catch (err) {
      throw new Error(`--arc needs ${arc.dir} (Azure Arc clients accept challenge files only there), which only root can create: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  const readiness = () =>
    agentReadiness({
      clock,
      credentialExpiresOn: () => credential.current.record.expiresOn,
      hostRefused: () => refused,
      lastAuthorityAnswerAt: () => identities.lastSuccessAt,
      pollMs: identities.pollMs,
      ...(options.readyStaleMs === undefined ? {} : { staleMs: options.readyStaleMs }),
    });
  const server = createAgentServer({ ctx, guard, readiness, ...(arc === undefined ? {} : { arc }), ...(requestHook === undefined ? {} : { requestHook }) });
  // Attribution starts when the connection opens, so even a one-request connection is attributed.
  server.on('connection', (socket) => callers.callerOf(socket));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? AGENT_DEFAULTS.port, options.host ?? AGENT_DEFAULTS.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  guard.setPort(port);
  let metricsListener: MetricsListener | undefined;
  if (metrics !== undefined && options.metrics !== undefined) {
    const host = options.metrics.host ?? METRICS_DEFAULTS.host;
    try {
      metricsListener = await listenMetrics(metrics.registry, host, options.metrics.port);
    } catch (err) {
      server.close();
      throw new Error(`cannot serve metrics on ${host}:${String(options.metrics.port)} (--metrics-host, --metrics-port): ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  const listenHost = options.host ?? AGENT_DEFAULTS.host;
  const url = `http://${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${String(port)}`;
  // Where `openmsi agent env` (and `openmsi run`) find the port: not secret.
  writeRunningAgent(dataDir, port, listenHost);

  // Identities first (a failure here is fine: the agent serves as soon as the authority answers).
  await identities.refresh().catch(() => undefined);
  identities.start();
  cache.start();
  credential.start();
  // `--join-token-file`: a refused host is enrolled again from the file (the file may already hold a newer token
  // than the saved credential's: it is used only if the authority refuses the host).
  const joinTokenWatch =
    joinTokenFile === undefined
      ? undefined
      : new JoinTokenFileWatch({
          path: joinTokenFile,
          pollMs: options.joinTokenFilePollMs ?? AGENT_DEFAULTS.joinTokenFilePollMs,
          usedDigest: credential.current.record.joinTokenDigest,
          refused: () => refused,
          logger,
          enrol: async (joinToken) => {
            const fresh = await enrolHost({ dataDir, upstream, joinToken, ...(caFile === undefined ? {} : { caFile }) });
            credential.adopt(fresh);
            // Nothing cached under the refused credential is served (the host may even be a new one).
            cache.clear();
            assertions.clear();
            identities.clear();
            refused = false;
            await identities.refresh().catch(() => undefined);
            logger.info({ host: fresh.record.hostResourceId, keyId: fresh.record.keyId }, 'host enrolled again from the join token file: serving tokens');
          },
        });
  joinTokenWatch?.start();
  // A saved credential refused at start: the file is looked at now, not a poll later.
  void joinTokenWatch?.check();
  const tokenFiles =
    options.federatedTokenFiles === undefined || options.federatedTokenFiles.length === 0
      ? undefined
      : new FederatedTokenFiles({
          specs: options.federatedTokenFiles,
          // A GUID names a client id first, an object id otherwise.
          resolve: async (selector) =>
            (await identities.resolveFresh(selector)) ??
            (selector.kind === 'client' ? identities.resolve({ kind: 'object', value: selector.value }) : undefined),
          assertion: (objectId) => upstream.federationAssertion(credential.current.key, objectId),
          logger,
          clock,
        });
  tokenFiles?.start();
  logger.info({ url, host: credentialAtStart.record.hostResourceId, imds: ctx.imds, appService: ctx.appService, arc: arc !== undefined }, 'agent listening');

  return {
    url,
    port,
    server,
    upstream,
    identities,
    cache,
    credential,
    federation: { assertions, exchange, tokenFiles },
    removalBoundMs: identities.removalBoundMs(timeoutMs),
    metricsUrl: metricsListener?.url,
    get hostRefused() {
      return refused;
    },
    async close() {
      identities.stop();
      cache.stop();
      credential.stop();
      joinTokenWatch?.stop();
      tokenFiles?.stop();
      arc?.close();
      control?.close();
      await metricsListener?.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      // The last window reaches the spool (and, if the authority answers quickly, the authority).
      await pipeline?.close({ uploadTimeoutMs: 2000 }).catch((err: unknown) => logger.warn({ err }, 'audit pipeline did not close cleanly'));
      upstream.close();
      exchange.close();
      removeRunningAgent(dataDir);
    },
  };
}
