/**
 * Cloud Shell at `/oauth2/token[/]` (`MSI_ENDPOINT` alone): `POST` with a form body `resource=…` (what
 * msrestazure's `get_msi_token`, i.e. Debian's azure-cli 2.45, sends, optionally with one of
 * `client_id`/`object_id`/`msi_res_id`) or `GET ?resource=…`, both with `Metadata: true`. No api-version.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AgentErrors, parseParams, refuse, selectorOf, serveToken, type SurfaceContext, requireResource } from './common.js';
import { requireMetadataHeader } from './imds.js';

const MAX_BODY = 8 * 1024;

export async function cloudShellToken(ctx: SurfaceContext, req: IncomingMessage, res: ServerResponse, query: ReadonlyMap<string, string>): Promise<void> {
  let params = query;
  try {
    if (!ctx.imds) throw AgentErrors.surfaceDisabled();
    requireMetadataHeader(req);
    if (req.method === 'POST') {
      const form = parseParams(await readBody(req));
      const merged = new Map(query);
      for (const [name, value] of form) {
        if (merged.has(name)) throw AgentErrors.duplicateParameter(name);
        merged.set(name, value);
      }
      params = merged;
    }
    const resource = requireResource(params);
    await serveToken(ctx, req, res, { surface: 'cloud-shell', selector: selectorOf(params), resource });
  } catch (err) {
    refuse(ctx, req, res, 'cloud-shell', err, params.has('resource') ? { audience: params.get('resource') ?? '' } : {});
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(AgentErrors.bodyTooLarge());
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
