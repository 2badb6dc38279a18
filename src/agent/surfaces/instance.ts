/**
 * `/metadata/instance[/compute]` (`Metadata: true`; `format=json` or nothing): the compute fields a VM
 * exposes, from the host description the authority gives (`HostDescription`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HostDescription } from '../../shared/host-protocol.js';
import { AgentErrors, refuse, sendJson, type SurfaceContext } from './common.js';
import { requireMetadataHeader } from './imds.js';

export function computeOf(host: HostDescription): Record<string, string> {
  return {
    azEnvironment: 'AzurePublicCloud',
    location: host.location,
    name: host.name,
    osType: process.platform === 'win32' ? 'Windows' : 'Linux',
    provider: 'openmsi',
    resourceGroupName: host.resourceGroup,
    resourceId: host.hostResourceId,
    subscriptionId: host.subscriptionId,
    vmId: host.vmId,
  };
}

export async function instanceMetadata(
  ctx: SurfaceContext,
  req: IncomingMessage,
  res: ServerResponse,
  params: ReadonlyMap<string, string>,
  computeOnly: boolean,
): Promise<void> {
  try {
    if (!ctx.imds) throw AgentErrors.surfaceDisabled();
    requireMetadataHeader(req);
    const format = params.get('format');
    if (format !== undefined && format !== 'json') throw AgentErrors.format(format);
    let host = ctx.identities.host;
    if (host === undefined && !ctx.hostRefused()) {
      try {
        host = await ctx.identities.refresh();
      } catch {
        throw AgentErrors.unavailable(ctx.retryAfterSeconds);
      }
    }
    if (host === undefined || ctx.hostRefused()) throw AgentErrors.hostNotRecognised();
    const compute = computeOf(host);
    sendJson(res, 200, JSON.stringify(computeOnly ? compute : { compute, network: { interface: [] } }));
  } catch (err) {
    refuse(ctx, req, res, 'instance', err);
  }
}
