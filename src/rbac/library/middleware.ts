/**
 * Ready middleware over {@link RbacGuard}: a fastify `onRequest` hook and a `node:http` handler wrapper. Both
 * answer a refusal themselves, with the guard's status, headers and ARM's error body (401 with
 * `WWW-Authenticate: Bearer`, 403 `AuthorizationFailed`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RbacGuardError } from './errors.js';
import type { RbacGuard, RbacGuardResult, RbacRequirement } from './guard.js';

const results = new WeakMap<object, RbacGuardResult>();

/** The guard's result for a request the hook or wrapper admitted (fastify request or `IncomingMessage`). */
export function rbacResultOf(request: FastifyRequest | IncomingMessage): RbacGuardResult | undefined {
  return results.get(request);
}

function sendRefusal(res: ServerResponse, err: RbacGuardError): void {
  const body = JSON.stringify(err.body);
  res.writeHead(err.status, { ...err.headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * A fastify `onRequest` hook: `app.addHook('onRequest', rbacFastifyHook(guard, (request) => ({ action, scope })))`,
 * or per route (`onRequest: [rbacFastifyHook(...)]`). The admitted caller is `rbacResultOf(request)`.
 */
export function rbacFastifyHook(
  guard: RbacGuard,
  resolve: (request: FastifyRequest) => RbacRequirement | Promise<RbacRequirement>,
): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  return async (request, reply) => {
    try {
      results.set(request, await guard.authorize(request.headers.authorization, await resolve(request)));
      return undefined;
    } catch (err) {
      if (!(err instanceof RbacGuardError)) throw err;
      // Returning the reply ends the request here: no later hook or handler runs.
      return reply.code(err.status).headers(err.headers).type('application/json; charset=utf-8').send(err.body);
    }
  };
}

export type RbacNodeHandler = (req: IncomingMessage, res: ServerResponse, result: RbacGuardResult) => void | Promise<void>;

/**
 * For `node:http`: `http.createServer(rbacNodeHttp(guard, resolve)(handler))`. The handler runs only for an
 * admitted caller, with the guard's result; a refusal is answered here; any other failure is a 500.
 */
export function rbacNodeHttp(
  guard: RbacGuard,
  resolve: (req: IncomingMessage) => RbacRequirement | Promise<RbacRequirement>,
): (handler: RbacNodeHandler) => (req: IncomingMessage, res: ServerResponse) => void {
  return (handler) => (req, res) => {
    void (async () => {
      let result: RbacGuardResult;
      try {
        result = await guard.authorize(req.headers.authorization, await resolve(req));
      } catch (err) {
        if (err instanceof RbacGuardError) return sendRefusal(res, err);
        throw err;
      }
      results.set(req, result);
      await handler(req, res, result);
    })().catch(() => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ error: { code: 'InternalServerError', message: 'The request failed.' } }));
      } else res.destroy();
    });
  };
}
