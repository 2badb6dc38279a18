/**
 * A tiny orders service authorised by openmsi RBAC with the `openmsi/rbac` library (node:http).
 *
 *   GET  /stores/{store}/orders            data action Contoso.Orders/stores/orders/read
 *   POST /stores/{store}/orders/approve    data action Contoso.Orders/stores/orders/approve/action
 *
 * A store's scope is `/subscriptions/{sub}/resourceGroups/{group}/providers/Contoso.Orders/stores/{store}`, so a
 * role assigned at the resource group (or above) covers its stores. Callers present a token for this
 * service's audience (`api://contoso-orders`); the service reads RBAC state from the authority with its own
 * identity (Reader at `/`). See README.md for the role definition and the assignment commands.
 *
 * In your project, import from 'openmsi/rbac' and 'openmsi/verifier'.
 */
import http from 'node:http';
import { createAuthorizer, createRbacGuard, createRemoteRbacSource, clientSecretToken, rbacNodeHttp, type RbacRequirement } from '../../src/rbac/index.js';
import { remoteJwks } from '../../src/shared/token-verifier.js';

export const AUDIENCE = 'api://contoso-orders';
export const READ_ORDERS = 'Contoso.Orders/stores/orders/read';
export const APPROVE_ORDERS = 'Contoso.Orders/stores/orders/approve/action';

export interface OrdersServiceOptions {
  /** The authority's https origin. */
  authorityUrl: string;
  tenantId: string;
  subscriptionId: string;
  resourceGroup: string;
  /** The service's own identity (needs Reader at `/` to read RBAC state). */
  clientId: string;
  clientSecret: string;
  /** PEM of the authority's CA (`openmsi ca export`). */
  ca?: string;
  port?: number;
  /** How often to retry when the change long poll fails (the staleness bound then). */
  pollIntervalMs?: number;
}

export interface OrdersService {
  url: string;
  close(): Promise<void>;
}

export async function startOrdersService(options: OrdersServiceOptions): Promise<OrdersService> {
  const ca = options.ca;
  const source = createRemoteRbacSource({
    authorityUrl: options.authorityUrl,
    getToken: clientSecretToken({
      authorityUrl: options.authorityUrl,
      tenantId: options.tenantId,
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      ...(ca === undefined ? {} : { ca }),
    }),
    ...(ca === undefined ? {} : { ca }),
    pollIntervalMs: options.pollIntervalMs ?? 5000,
  });
  const authorizer = createAuthorizer({ source });
  const guard = createRbacGuard({
    verifierOptions: {
      jwks: remoteJwks(`${options.authorityUrl}/${options.tenantId}/discovery/keys`, { ...(ca === undefined ? {} : { ca }) }),
      issuers: [`${options.authorityUrl}/${options.tenantId}/`],
      audiences: [AUDIENCE],
    },
    authorizer,
    authorizationUri: `${options.authorityUrl}/${options.tenantId}`,
  });

  const storeScope = (store: string) =>
    `/subscriptions/${options.subscriptionId}/resourceGroups/${options.resourceGroup}/providers/Contoso.Orders/stores/${store}`;

  /** What each request needs: the route's data action at the store's scope. */
  const resolve = (req: http.IncomingMessage): RbacRequirement => {
    const url = new URL(req.url ?? '/', 'http://x');
    const match = /^\/stores\/([A-Za-z0-9-]{1,64})\/orders(\/approve)?$/.exec(url.pathname);
    const store = match?.[1] ?? '_';
    const approve = match?.[2] !== undefined;
    return { action: approve ? APPROVE_ORDERS : READ_ORDERS, isDataAction: true, scope: storeScope(store) };
  };

  const server = http.createServer(
    rbacNodeHttp(
      guard,
      resolve,
    )((req, res, { principal }) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const match = /^\/stores\/([A-Za-z0-9-]{1,64})\/orders(\/approve)?$/.exec(url.pathname);
      if (match === null) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NotFound', message: 'No such route.' } }));
        return;
      }
      const approve = match[2] !== undefined;
      if (approve !== (req.method === 'POST')) {
        res.writeHead(405, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'MethodNotAllowed', message: 'Method not allowed.' } }));
        return;
      }
      const body = approve ? { approved: true, by: principal.oid } : { value: [{ id: 'o-1', store: match[1], total: 42 }], caller: principal.oid };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    }),
  );
  await new Promise<void>((resolveListen) => server.listen(options.port ?? 0, '127.0.0.1', resolveListen));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${String(port)}`,
    async close() {
      await new Promise<void>((r) => server.close(() => r()));
      authorizer.close();
      source.close();
    },
  };
}
