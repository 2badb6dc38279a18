/**
 * A test harness for the agent-runtime modules (not a stand-in for the agent): a loopback node:http server
 * that mounts the control API and answers `/msi/token` by looking the `X-IDENTITY-HEADER` (or 2017's
 * `secret`) up in the session registry, with an audit sink that keeps every event.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcCallerResolver } from '../../../src/agent/caller.js';
import { createControlApi, hostIdentityCheck, loadOrCreateControlSecret, type ControlApi } from '../../../src/agent/control.js';
import type { AgentAuditEvent } from '../../../src/agent/contracts.js';
import { SessionRegistry } from '../../../src/agent/sessions.js';
import type { HostDescription } from '../../../src/shared/host-protocol.js';
import { writeRunningAgent } from '../../../src/shared/running-agent.js';
import { untilTrue } from '../../support/poll.js';

/** A host with a system-assigned identity and the user-assigned identity `app-id`, for {@link startHarness}'s `host`. */
export function harnessHost(): HostDescription {
  const rg = '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/hosts-rg';
  return {
    tenantId: '00000000-0000-0000-0000-0000000000aa',
    hostResourceId: `${rg}/providers/Microsoft.Compute/virtualMachines/build-01`,
    subscriptionId: '00000000-0000-0000-0000-000000000001',
    resourceGroup: 'hosts-rg',
    name: 'build-01',
    location: 'local',
    vmId: '00000000-0000-0000-0000-0000000000bb',
    identities: [
      {
        type: 'SystemAssigned',
        objectId: '11111111-1111-1111-1111-111111111111',
        clientId: '22222222-2222-2222-2222-222222222222',
        resourceId: `${rg}/providers/Microsoft.Compute/virtualMachines/build-01`,
      },
      {
        type: 'UserAssigned',
        objectId: '33333333-3333-3333-3333-333333333333',
        clientId: '44444444-4444-4444-4444-444444444444',
        resourceId: `${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-id`,
      },
    ],
    credential: { keyId: 'k1', expiresOn: 4102444800 },
  };
}

export interface Harness {
  dataDir: string;
  url: string;
  port: number;
  controlSecret: string;
  sessions: SessionRegistry;
  events: AgentAuditEvent[];
  control: ControlApi;
  server: Server;
  /** GET /msi/token with this secret: the status and body. */
  token(secret: string): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

/**
 * `host`: the host the control API checks session selectors against (as the agent does with the authority's
 * `self`); without it, every selector is accepted.
 */
export async function startHarness(options: { heartbeatMs?: number; host?: HostDescription } = {}): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-agent-'));
  const controlSecret = loadOrCreateControlSecret(dataDir);
  const sessions = new SessionRegistry();
  const events: AgentAuditEvent[] = [];
  const host = options.host;
  const control = createControlApi({
    controlSecret,
    sessions,
    audit: { record: (e) => events.push(e) },
    callers: new ProcCallerResolver(),
    heartbeatMs: options.heartbeatMs ?? 0,
    ...(host === undefined ? {} : { checkIdentities: hostIdentityCheck({ host, refresh: () => Promise.resolve(host) }) }),
  });
  const server = createServer((req, res) => {
    if (control.handleControlRequest(req, res)) return;
    if ((req.url ?? '').split('?')[0] === '/msi/token') {
      const header = req.headers['x-identity-header'] ?? req.headers.secret;
      const session = typeof header === 'string' ? sessions.bySecret(header) : undefined;
      res.writeHead(session === undefined ? 401 : 200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(session === undefined ? { error: 'unauthorized' } : { identities: session.identities, session: session.id }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  writeRunningAgent(dataDir, port);
  const url = `http://127.0.0.1:${String(port)}`;
  return {
    dataDir,
    url,
    port,
    controlSecret,
    sessions,
    events,
    control,
    server,
    async token(secret) {
      const res = await fetch(`${url}/msi/token?resource=https://vault.azure.net&api-version=2019-08-01`, { headers: { 'X-IDENTITY-HEADER': secret } });
      return { status: res.status, body: await res.text() };
    },
    async close() {
      control.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `predicate` every 10 ms until it holds (or throws after `timeoutMs`): test/support/poll.ts's untilTrue. */
export function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  return untilTrue(what, predicate, timeoutMs, 10);
}
