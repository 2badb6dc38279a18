/**
 * The agent's HTTP server (node:http, keep-alive): guard, then routing by path (case-insensitive, trailing
 * slash optional) to the surfaces. Paths:
 * - `/metadata/identity/oauth2/token` IMDS (Arc when `--arc` and an Arc api-version)
 * - `/metadata/identity/getplatformmetadata` 404 (no IMDSv2)
 * - `/metadata/instance`, `/metadata/instance/compute`
 * - `/msi/token` App Service 2019-08-01 / 2017-09-01
 * - `/oauth2/token` Cloud Shell (or App Service when it carries the App Service secret headers)
 * - `/healthz`, `/readyz` liveness and readiness (health.ts), past the same guard
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AgentSurface } from '../shared/host-protocol.js';
import { AgentErrors, parseParams, refuse, sendJson, type SurfaceContext } from './surfaces/common.js';
import { imdsToken } from './surfaces/imds.js';
import { appServiceFlavour, appServiceToken } from './surfaces/app-service.js';
import { cloudShellToken } from './surfaces/cloud-shell.js';
import { instanceMetadata } from './surfaces/instance.js';
import { ARC_API_VERSIONS, arcToken, type ArcChallenges } from './surfaces/arc.js';
import type { RequestGuard } from './guard.js';
import type { AgentReadinessReport } from './health.js';

export interface AgentServerOptions {
  ctx: SurfaceContext;
  guard: RequestGuard;
  arc?: ArcChallenges;
  /** Runs after the guard, before routing; returns true when it answered the request (e.g. the control API). */
  requestHook?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** What `GET /readyz` answers (health.ts). */
  readiness: () => AgentReadinessReport;
}

const LIVE_BODY = JSON.stringify({ status: 'ok' });

function normalisePath(path: string): string {
  const lower = path.toLowerCase();
  return lower.length > 1 && lower.endsWith('/') ? lower.slice(0, -1) : lower;
}

function surfaceOfPath(path: string): AgentSurface {
  if (path.startsWith('/msi')) return 'app-service';
  if (path.startsWith('/oauth2')) return 'cloud-shell';
  if (path.startsWith('/metadata/instance')) return 'instance';
  return 'imds';
}

export function createAgentServer(options: AgentServerOptions): Server {
  const { ctx, guard, arc, requestHook, readiness } = options;

  function handle(req: IncomingMessage, res: ServerResponse): void | Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = normalisePath(q < 0 ? url : url.slice(0, q));
    const surface = surfaceOfPath(path);
    const refused = guard.check(req);
    if (refused !== undefined) return refuse(ctx, req, res, surface, refused);
    if (requestHook?.(req, res) === true) return;
    let params: Map<string, string>;
    try {
      params = parseParams(q < 0 ? '' : url.slice(q + 1));
    } catch (err) {
      return refuse(ctx, req, res, surface, err);
    }
    const method = req.method ?? 'GET';
    switch (path) {
      case '/metadata/identity/oauth2/token':
        if (method !== 'GET') return refuse(ctx, req, res, surface, AgentErrors.methodNotAllowed('GET'));
        if (arc !== undefined && ARC_API_VERSIONS.has(params.get('api-version') ?? '')) return arcToken(ctx, arc, req, res, params);
        return imdsToken(ctx, req, res, params);
      case '/msi/token':
        if (method !== 'GET') return refuse(ctx, req, res, surface, AgentErrors.methodNotAllowed('GET'));
        return appServiceToken(ctx, req, res, params, appServiceFlavour(req));
      case '/oauth2/token': {
        const flavour = appServiceFlavour(req);
        if (flavour !== undefined && method === 'GET') return appServiceToken(ctx, req, res, params, flavour);
        if (method !== 'GET' && method !== 'POST') return refuse(ctx, req, res, surface, AgentErrors.methodNotAllowed('GET, POST'));
        return cloudShellToken(ctx, req, res, params);
      }
      case '/metadata/instance':
      case '/metadata/instance/compute':
        if (method !== 'GET') return refuse(ctx, req, res, surface, AgentErrors.methodNotAllowed('GET'));
        return instanceMetadata(ctx, req, res, params, path.endsWith('/compute'));
      case '/healthz':
        if (method !== 'GET') return refuse(ctx, req, res, surface, AgentErrors.methodNotAllowed('GET'));
        return sendJson(res, 200, LIVE_BODY);
      case '/readyz': {
        if (method !== 'GET') return refuse(ctx, req, res, surface, AgentErrors.methodNotAllowed('GET'));
        const report = readiness();
        return sendJson(res, report.status === 'ready' ? 200 : 503, JSON.stringify(report));
      }
      default:
        return refuse(ctx, req, res, surface, AgentErrors.notFound());
    }
  }

  const server = createServer({ keepAliveTimeout: 65_000, headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
    try {
      const pending = handle(req, res);
      if (pending !== undefined) {
        pending.catch((err: unknown) => {
          ctx.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'unexpected failure answering a request');
          if (!res.headersSent) refuse(ctx, req, res, 'imds', AgentErrors.internal());
        });
      }
    } catch (err) {
      ctx.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'unexpected failure answering a request');
      if (!res.headersSent) refuse(ctx, req, res, 'imds', AgentErrors.internal());
    }
  });
  return server;
}
