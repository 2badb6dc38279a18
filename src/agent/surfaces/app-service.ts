/**
 * App Service at `/msi/token[/]` (any case, as `MSI_ENDPOINT` values like `/MSI/token/` are common):
 * - 2019-08-01: `X-IDENTITY-HEADER: <secret>`, `client_id | mi_res_id | object_id | principal_id`; an extra
 *   `Metadata` header and a Content-Type on GET are tolerated.
 * - 2017-09-01 / Azure ML: `secret: <secret>`, `clientid`.
 * The secret is the machine-wide one (unless `--no-app-service`) or a live `openmsi run` session's.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentSession } from '../contracts.js';
import type { AgentSurface } from '../../shared/host-protocol.js';
import { AgentErrors, header, refuse, secretMatches, selectorOf, serveToken, type SurfaceContext, requireResource } from './common.js';

/** Which App Service flavour a request is, by its secret header; undefined when it carries neither. */
export function appServiceFlavour(req: IncomingMessage): 'app-service' | 'app-service-2017' | undefined {
  if (req.headers['x-identity-header'] !== undefined) return 'app-service';
  if (req.headers['secret'] !== undefined) return 'app-service-2017';
  return undefined;
}

export function appServiceToken(
  ctx: SurfaceContext,
  req: IncomingMessage,
  res: ServerResponse,
  params: ReadonlyMap<string, string>,
  flavour: 'app-service' | 'app-service-2017' | undefined,
): void | Promise<void> {
  let surface: AgentSurface = flavour ?? 'app-service';
  try {
    const headerName = surface === 'app-service' ? 'X-IDENTITY-HEADER' : 'secret';
    const presented = header(req, surface === 'app-service' ? 'x-identity-header' : 'secret');
    if (presented === undefined || presented === '') throw AgentErrors.identityHeader(headerName);
    let session: AgentSession | undefined;
    if (!(ctx.appService && secretMatches(presented, ctx.machineSecretDigest))) {
      session = ctx.sessions.bySecret(presented);
      if (session === undefined) throw AgentErrors.identityHeader(headerName);
      surface = 'session';
    }
    const version = params.get('api-version');
    if (version === undefined || version === '') throw AgentErrors.missingParameter('api-version');
    const expected = flavour === 'app-service-2017' ? version === '2017-09-01' : /^\d{4}-\d{2}-\d{2}$/.test(version) && version >= '2019-08-01';
    if (!expected) throw AgentErrors.apiVersion(version);
    const resource = requireResource(params);
    return serveToken(ctx, req, res, { surface, selector: selectorOf(params), resource, ...(session === undefined ? {} : { session }) });
  } catch (err) {
    return refuse(ctx, req, res, surface, err, params.has('resource') ? { audience: params.get('resource') ?? '' } : {});
  }
}
