/**
 * IMDS: `GET /metadata/identity/oauth2/token[/]?api-version=…&resource=…[&selector]` with `Metadata: true`
 * (exactly, lower case). Every api-version from 2018-02-01 on is accepted (clients send 2018-02-01).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AgentErrors, header, refuse, selectorOf, serveToken, type SurfaceContext, requireResource } from './common.js';

const API_VERSION = /^\d{4}-\d{2}-\d{2}(-preview)?$/;

/** Checks an IMDS-family api-version (2018-02-01 or later). */
export function checkImdsApiVersion(params: ReadonlyMap<string, string>): void {
  const version = params.get('api-version');
  if (version === undefined || version === '') throw AgentErrors.missingParameter('api-version');
  if (!API_VERSION.test(version) || version < '2018-02-01') throw AgentErrors.apiVersion(version);
}

export function requireMetadataHeader(req: IncomingMessage): void {
  if (header(req, 'metadata') !== 'true') throw AgentErrors.metadataHeader();
}

export function imdsToken(ctx: SurfaceContext, req: IncomingMessage, res: ServerResponse, params: ReadonlyMap<string, string>): void | Promise<void> {
  try {
    if (!ctx.imds) throw AgentErrors.surfaceDisabled();
    requireMetadataHeader(req);
    checkImdsApiVersion(params);
    const resource = requireResource(params);
    return serveToken(ctx, req, res, { surface: 'imds', selector: selectorOf(params), resource });
  } catch (err) {
    return refuse(ctx, req, res, 'imds', err, params.has('resource') ? { audience: params.get('resource') ?? '' } : {});
  }
}
