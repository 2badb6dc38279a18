/**
 * The Key Vault-compatible data plane as its own fastify app (spec §6). Per request, in `onRequest` (before
 * the body is read): the vault from the Host header (cached), the bearer token (cached verification; 401 with
 * the challenge), the api-version, the secret name, and the authorisation (cached decisions). Handlers then do
 * one indexed store read or write. Every operation is audited in `onSend`: writes awaited, reads folded.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { apiNotFoundHandler } from '../shared/api-error.js';
import { RequestLogController } from '../shared/logger.js';
import { requireApiVersion } from './api-version.js';
import { VaultAudit } from './audit.js';
import { authenticate, TokenCache } from './authenticate.js';
import { authorize } from './authorize.js';
import { vaultNameFromHost, type BuildVaultApp, type VaultContext } from './contracts.js';
import { VaultErrors, vaultErrorHandler } from './errors.js';
import { createSecretCipher } from './secret-cipher.js';
import { secretNameOf } from './secrets/common.js';
import { secretsRoutes } from './secrets/index.js';
import { keyNameOf } from './keys/common.js';
import { keysRoutes, type OpenedKey } from './keys/index.js';
import { setState, stateOf, type VaultRouteConfig } from './state.js';
import { VaultCache } from './vault-cache.js';
import { SecretCache, VaultObjectCache } from './secret-cache.js';

/** Room for a 25 KB value JSON-escaped, tags and attributes. */
export const VAULT_BODY_LIMIT = 256 * 1024;
/** What `x-ms-keyvault-service-version` says (clients only log it). */
export const VAULT_SERVICE_VERSION = '1.9.0.0-openmsi';

/**
 * Operations audited folded (spec: reads add no write of their own): reads, and the key operations that change
 * nothing (a decrypt is a use of the key, as a secret read is a use of the secret).
 */
const READ_OPERATIONS: ReadonlySet<string> = new Set([
  'get',
  'list',
  'listVersions',
  'listDeleted',
  'getDeleted',
  'getRotationPolicy',
  'encrypt',
  'decrypt',
  'wrapKey',
  'unwrapKey',
  'sign',
  'verify',
  'randomBytes',
]);

function routeConfigOf(request: FastifyRequest): VaultRouteConfig | undefined {
  const config = request.routeOptions.config as Partial<VaultRouteConfig> | undefined;
  return config?.op === undefined || config.target === undefined ? undefined : { op: config.op, target: config.target };
}

async function admit(ctx: VaultContext, vaults: VaultCache, tokens: TokenCache, request: FastifyRequest): Promise<void> {
  const host = request.headers.host ?? '';
  const name = vaultNameFromHost(host, ctx.vaultDomain);
  const vault = name === undefined ? undefined : await vaults.get(name);
  if (vault === undefined) throw VaultErrors.vaultNotFound(host);
  const state = setStateFor(request, vault);
  state.caller = await authenticate(ctx, tokens, request, vault);
  const route = routeConfigOf(request);
  if (route === undefined) return; // no such path: the not-found handler answers
  state.route = route;
  state.apiVersion = requireApiVersion(request);
  let scope = vault.resourceId;
  if (route.target !== 'vault') {
    state.objectName = route.target === 'secret' ? secretNameOf(request) : keyNameOf(request);
    scope = `${vault.resourceId}/${route.op.objects}/${state.objectName}`;
  }
  try {
    await authorize(ctx, vault, state.caller, route.op, scope);
    state.decision = 'allowed';
  } catch (err) {
    state.decision = 'denied';
    throw err;
  }
}

/**
 * True when the request announced a body that has not been read whole: it was refused before its body was read
 * (every refusal of {@link admit} is, as the challenge flow needs). Node would then read and discard the rest
 * to keep the connection alive, however large it is announced (10 MiB, or unbounded when chunked); instead the
 * response asks to close the connection, so what is read is bounded by what is already in flight, as the
 * authority's endpoints close a connection whose body goes over their limit. An empty body (the challenge
 * request of every SDK) keeps the connection.
 */
export function bodyLeftUnread(request: FastifyRequest): boolean {
  const { headers } = request;
  const announced = headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
  return announced && request.raw.complete !== true;
}

function setStateFor(request: FastifyRequest, vault: Parameters<typeof setState>[1]['vault']): NonNullable<ReturnType<typeof stateOf>> {
  const state = { vault };
  setState(request, state);
  return state;
}

/**
 * The fastify instance every vault app runs on (exported so that bench/vault-read.mjs measures its baseline on
 * exactly this server stack): case-insensitive, slash-tolerant routing, request ids, no request logging above
 * debug.
 */
export function vaultServer(logger: VaultContext['logger'], tls: { cert: string; key: string } | undefined): FastifyInstance {
  return Fastify({
    ...(tls === undefined ? {} : { https: { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' as const } }),
    loggerInstance: logger,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    bodyLimit: VAULT_BODY_LIMIT,
    // Paths are case-insensitive; SDKs add trailing slashes (`/secrets/x/`) and old ones double them (`//secrets`).
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, caseSensitive: false, maxParamLength: 512 },
    keepAliveTimeout: 65_000,
    logController: new RequestLogController(),
    return503OnClosing: true,
  }) as unknown as FastifyInstance;
}

/** The headers of every vault response (Key Vault's, and the security headers of every openmsi service). */
export function setVaultHeaders(request: FastifyRequest, reply: FastifyReply, region: string | undefined): void {
  reply.header('x-ms-request-id', request.id);
  reply.header('x-ms-keyvault-service-version', VAULT_SERVICE_VERSION);
  if (region !== undefined) reply.header('x-ms-keyvault-region', region);
  reply.header('cache-control', 'no-cache');
  reply.header('x-content-type-options', 'nosniff');
  reply.header('strict-transport-security', 'max-age=31536000;includeSubDomains');
}
/** Builds the data plane: `const app = await buildVaultApp(ctx, { tls })`, then `app.listen(...)` or `app.inject(...)`. */
export const buildVaultApp: BuildVaultApp = async (ctx, options) => {
  const tls = options?.tls;
  const app = vaultServer(ctx.logger, tls);

  const vaults = new VaultCache(ctx.store, ctx.clock);
  const tokens = new TokenCache(ctx);
  const audit = new VaultAudit(ctx.audit, ctx.clock, ctx.logger);
  const cipher = createSecretCipher(ctx.masterKey);
  const secrets = new SecretCache(ctx.store, ctx.clock);
  const keys = new VaultObjectCache<OpenedKey>(ctx.store, ctx.clock, 'keys');

  app.setErrorHandler(vaultErrorHandler(VAULT_BODY_LIMIT));
  app.setNotFoundHandler(apiNotFoundHandler);

  // JSON only, and an empty body is no body: challenge requests and bodiless POST/DELETE may still name a type.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch {
      done(VaultErrors.badParameter('The request body is not valid JSON.'), undefined);
    }
  });

  app.addHook('onRequest', async (request) => admit(ctx, vaults, tokens, request));

  app.addHook('onSend', async (request, reply) => {
    const state = stateOf(request);
    setVaultHeaders(request, reply, state?.vault.location);
    if (bodyLeftUnread(request)) reply.header('connection', 'close');
    if (state?.caller === undefined || state.route === undefined) return;
    const { objects } = state.route.op;
    const outcome = {
      tenantId: state.caller.tenantId,
      objectId: state.caller.objectId,
      appId: state.caller.appId,
      action: `vault.${objects}.${state.route.op.name}`,
      vault: state.vault.name,
      target: state.objectName === undefined ? state.vault.resourceId : `${state.vault.resourceId}/${objects}/${state.objectName}`,
      object: state.objectName === undefined ? undefined : { kind: objects === 'secrets' ? ('secret' as const) : ('key' as const), name: state.objectName },
      decision: state.decision ?? ('denied' as const),
      status: reply.statusCode,
    };
    if (READ_OPERATIONS.has(state.route.op.name)) {
      audit.read(outcome);
      return;
    }
    await audit.write(outcome).catch((err: unknown) => {
      request.log.error({ err: { message: (err as Error).message } }, 'vault audit write failed');
    });
  });

  app.addHook('onClose', async () => {
    vaults.close();
    tokens.close();
    secrets.close();
    keys.close();
    await audit.close();
  });

  secretsRoutes(app, { ctx, cipher, secrets });
  keysRoutes(app, { ctx, cipher, keys });
  return Promise.resolve(app);
};
