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
import { ProcCallerResolver } from '../../src/agent/caller.js';
import { createControlApi, loadOrCreateControlSecret, type ControlApi } from '../../src/agent/control.js';
import type { AgentAuditEvent } from '../../src/agent/contracts.js';
import { SessionRegistry } from '../../src/agent/sessions.js';
import { writeRunningAgent } from '../../src/shared/running-agent.js';

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

export async function startHarness(options: { heartbeatMs?: number } = {}): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-agent-'));
  const controlSecret = loadOrCreateControlSecret(dataDir);
  const sessions = new SessionRegistry();
  const events: AgentAuditEvent[] = [];
  const control = createControlApi({ controlSecret, sessions, audit: { record: (e) => events.push(e) }, callers: new ProcCallerResolver(), heartbeatMs: options.heartbeatMs ?? 0 });
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

/** Polls `predicate` every 10 ms until it holds (or throws after `timeoutMs`). */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
