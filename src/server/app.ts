import Fastify, { type FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { ServerContext } from './context.js';
import { tokenRoutes } from '../authority/routes/token.js';
import { discoveryRoutes } from '../authority/routes/discovery.js';
import { signInRoutes } from '../authority/routes/sign-in.js';
import { managementRoutes } from '../management/index.js';
import { hostRoutes } from '../authority/hosts/index.js';
import { apiNotFoundHandler } from '../shared/api-error.js';
import { RequestLogController } from '../shared/logger.js';
import { healthRoutes } from './health-routes.js';

export interface ServerTls {
  cert: string;
  key: string;
}

/** Another application served on the same listener, for requests whose `Host` it claims (the vault's hosts). */
export interface HostRoute {
  matches(host: string | undefined): boolean;
  /** A node request handler, e.g. another fastify app's `routing` (after its `ready()`). */
  handle(request: IncomingMessage, response: ServerResponse): void;
}

/**
 * Builds the authority's HTTPS application: Entra endpoints (discovery, JWKS, token) and the management
 * API (ARM- and Graph-shaped), and the host API the agent calls (`/openmsi/hosts/...`). Each family is its own encapsulated plugin with its own error serializer.
 */
export async function buildServerApp(ctx: ServerContext, tls: ServerTls | undefined, otherHosts: readonly HostRoute[] = []): Promise<FastifyInstance> {
  const app = Fastify({
    // One listener for every host: vault hosts (`{name}.{vaultDomain}`) go to the vault's app, all else to this one.
    serverFactory: (handler) => {
      const dispatch = (request: IncomingMessage, response: ServerResponse): void => {
        const route = otherHosts.find((r) => r.matches(request.headers.host));
        if (route === undefined) handler(request, response);
        else route.handle(request, response);
      };
      const server = tls === undefined ? http.createServer(dispatch) : https.createServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, dispatch);
      // Above the 60 s idle timeout of common load balancers and SDK connection pools.
      server.keepAliveTimeout = 65_000;
      return server;
    },
    loggerInstance: ctx.logger,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    bodyLimit: 256 * 1024,
    // ARM paths are case-insensitive and SDKs add trailing slashes (`/token/`, `/secrets/x/`).
    routerOptions: { ignoreTrailingSlash: true, caseSensitive: false, maxParamLength: 512 },
    keepAliveTimeout: 65_000,
    // Per-request lines at debug only; by method and path, never with bodies or headers (see shared/logger.ts).
    logController: new RequestLogController(),
    return503OnClosing: true,
  }) as unknown as FastifyInstance;

  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('strict-transport-security', 'max-age=31536000');
  });

  await app.register(healthRoutes, { readiness: ctx.readiness });
  await app.register(discoveryRoutes, { ctx });
  await app.register(tokenRoutes, { ctx });
  await app.register(signInRoutes, { ctx });
  await app.register(managementRoutes, { ctx });
  await app.register(hostRoutes, { ctx });

  app.setNotFoundHandler(apiNotFoundHandler);
  return app;
}
