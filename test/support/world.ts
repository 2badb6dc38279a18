/**
 * The shared "world" of the agent and client suites, on top of a real test authority (authority.ts): a host
 * resource with a system- and a user-assigned identity and its host credential registered directly in the
 * store (createTestHost; the enrolment path has its own suites), an in-process agent for it on a free loopback
 * port (startTestAgent), the host description read from the store, a recording audit sink, and a raw loopback
 * HTTP client that can send any header (Host included).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import type { TestAuthority } from './authority.js';
import { captureLogs } from './authority.js';
import { putResource, putResourceGroup, putUserAssignedIdentity } from '../../src/directory/resources.js';
import type { HostDescription, HostIdentity } from '../../src/shared/host-protocol.js';
import { saveHostCredential } from '../../src/agent/host-credential.js';
import { UpstreamError } from '../../src/agent/upstream.js';
import { createAgent, type Agent, type AgentOptions } from '../../src/agent/agent.js';
import type { AgentAuditEvent, AgentAuditSink } from '../../src/agent/contracts.js';
import { startFakeAuthority, type FakeAuthority, type FakeHost } from './fake-authority.js';

export interface TestHost {
  hostId: string;
  name: string;
  resourceGroup: string;
  keyId: string;
  dataDir: string;
  system: { clientId: string; objectId: string };
  uami: { id: string; clientId: string; objectId: string; name: string };
  uami2: { id: string; clientId: string; objectId: string; name: string };
  other: { id: string; clientId: string; objectId: string };
  cleanup(): void;
}

/** A machine with a system-assigned identity and two user-assigned ones, plus an identity not attached. */
export async function createTestHost(t: TestAuthority, name = `host-${randomUUID().slice(0, 8)}`): Promise<TestHost> {
  const store = t.ctx.store;
  const clock = t.ctx.clock;
  const resourceGroup = 'agent-hosts';
  await putResourceGroup(store, { subscriptionId: t.subscriptionId, name: resourceGroup, location: 'local', clock });
  const mk = async (n: string) => {
    const created = await putUserAssignedIdentity(store, { subscriptionId: t.subscriptionId, resourceGroup, name: n, clock });
    return { id: created.resource.id, clientId: created.principal.appId, objectId: created.principal.objectId, name: n };
  };
  const uami = await mk(`${name}-app`);
  const uami2 = await mk(`${name}-second`);
  const other = await mk(`${name}-other`);
  const host = await putResource(store, {
    subscriptionId: t.subscriptionId,
    resourceGroup,
    type: 'Microsoft.HybridCompute/machines',
    name,
    identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [uami.id]: {}, [uami2.id]: {} } },
    clock,
  });
  const systemPrincipal = (await store.servicePrincipals.getByObjectId(host.resource.systemPrincipalId!))!;
  const pair = await generateKeyPair('ES256', { extractable: true });
  const keyId = randomUUID();
  const now = clock.now();
  await store.hostCredentials.add({
    keyId,
    hostResourceId: host.resource.id,
    publicJwk: await exportJWK(pair.publicKey),
    createdAt: now,
    expiresAt: now + 24 * 3600_000,
    revokedAt: null,
  });
  const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-agent-'));
  await saveHostCredential(
    dataDir,
    {
      version: 1,
      keyId,
      hostResourceId: host.resource.id,
      tenantId: t.tenantId,
      tokenEndpoint: `${t.url}/${t.tenantId}/oauth2/token`,
      issuedOn: Math.floor(now / 1000),
      expiresOn: Math.floor(now / 1000) + 24 * 3600,
      authorityUrl: t.url,
      caFile: t.caPath,
    },
    await exportJWK(pair.privateKey),
  );
  return {
    hostId: host.resource.id,
    name,
    resourceGroup,
    keyId,
    dataDir,
    system: { clientId: systemPrincipal.appId, objectId: systemPrincipal.objectId },
    uami,
    uami2,
    other,
    cleanup: () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

/** What `GET self` will answer, read from the store (the same facts the grant checks). */
export function describeFromStore(
  authority: Pick<TestAuthority, 'ctx' | 'tenantId'> | (() => Pick<TestAuthority, 'ctx' | 'tenantId'>),
  host: TestHost,
): () => Promise<HostDescription> {
  return async () => {
    const t = typeof authority === 'function' ? authority() : authority;
    const store = t.ctx.store;
    const credential = await store.hostCredentials.get(host.keyId);
    const resource = await store.resources.get(host.hostId);
    if (credential === undefined || credential.revokedAt !== null || resource === undefined) {
      throw new UpstreamError('host-not-recognised', 'HostNotRecognised', { status: 401 });
    }
    const identities: HostIdentity[] = [];
    if (resource.systemPrincipalId !== null) {
      const sp = await store.servicePrincipals.getByObjectId(resource.systemPrincipalId);
      if (sp !== undefined) identities.push({ type: 'SystemAssigned', objectId: sp.objectId, clientId: sp.appId, resourceId: resource.id });
    }
    for (const id of resource.userAssignedIdentityIds) {
      const sp = await store.servicePrincipals.getByManagedIdentityResource(id, 'UserAssigned');
      if (sp?.managedIdentity != null)
        identities.push({ type: 'UserAssigned', objectId: sp.objectId, clientId: sp.appId, resourceId: sp.managedIdentity.resourceId });
    }
    for (const link of await store.federationLinks.getMany(identities.map((i) => i.objectId))) {
      const identity = identities.find((i) => i.objectId.toLowerCase() === link.ownerId);
      if (identity !== undefined) identity.upstream = { tenantId: link.tenantId, clientId: link.clientId, authorityHost: link.authorityHost };
    }
    return {
      tenantId: t.tenantId,
      hostResourceId: resource.id,
      subscriptionId: resource.subscriptionId,
      resourceGroup: resource.resourceGroup,
      name: resource.name,
      location: resource.location,
      vmId: '6f2c1c44-2b1f-4c1e-9a53-000000000001',
      identities,
      credential: { keyId: credential.keyId, expiresOn: Math.floor(credential.expiresAt / 1000) },
    };
  };
}

/** An audit sink that keeps every event. */
export function recordingAuditSink(): AgentAuditSink & { events: AgentAuditEvent[] } {
  const events: AgentAuditEvent[] = [];
  return { events, record: (event) => events.push(event) };
}

export interface TestAgent {
  agent: Agent;
  audit: ReturnType<typeof recordingAuditSink>;
  logLines: string[];
  /** The machine-wide secret (IDENTITY_HEADER). */
  secret: string;
  get(path: string, headers?: Record<string, string>): Promise<RawResponse>;
  post(path: string, body: string, headers?: Record<string, string>): Promise<RawResponse>;
}

export async function startTestAgent(t: TestAuthority, host: TestHost, options: Partial<AgentOptions> = {}): Promise<TestAgent> {
  return startAgentIn(host.dataDir, { describeHost: describeFromStore(t, host), ...options });
}

/**
 * An in-process agent for a host whose data dir already holds its credential (a world host, or a host of the
 * fake authority, test/support/fake-authority.ts, where the agent reads its identities with the real `GET self`).
 */
export async function startAgentIn(dataDir: string, options: Partial<AgentOptions> = {}): Promise<TestAgent> {
  const { logger, lines } = captureLogs();
  const audit = recordingAuditSink();
  const agent = await createAgent({
    dataDir,
    port: 0,
    logger,
    auditSink: audit,
    identityPollMs: 200,
    upstreamTimeoutMs: 3000,
    ...options,
  });
  const secret = readFileSync(join(dataDir, 'identity-header.secret'), 'utf8').trim();
  const port = agent.port;
  return {
    agent,
    audit,
    logLines: lines,
    secret,
    get: (path, headers = {}) => rawRequest(port, 'GET', path, headers),
    post: (path, body, headers = {}) => rawRequest(port, 'POST', path, headers, body),
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

/**
 * One request to 127.0.0.1:port with exactly these headers (Host defaults to 127.0.0.1:port), from
 * `localAddress` when given; bounded: it fails after `timeoutMs` (default 10 s) instead of hanging.
 */
export function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
  options: { localAddress?: string; timeoutMs?: number } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { host: `127.0.0.1:${String(port)}`, ...headers, ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) },
        agent: false,
        ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: <T>() => JSON.parse(text) as T });
        });
      },
    );
    const timeoutMs = options.timeoutMs ?? 10_000;
    const timer = setTimeout(() => req.destroy(new Error(`no complete answer to ${method} ${path.slice(0, 80)} within ${String(timeoutMs)} ms`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

export const VAULT = 'https://vault.azure.net';
export const IMDS_PATH = '/metadata/identity/oauth2/token';

/** A fake authority (test/support/fake-authority.ts), one host of it and an in-process agent for that host. */
export interface FakeWorld {
  t: FakeAuthority;
  host: FakeHost;
  a: TestAgent;
  /** Stops the agent and the fake authority and removes the host's data dir. */
  close(): Promise<void>;
}

/** Starts a {@link FakeWorld}: the agent's own suites test its decisions against it. */
export async function startFakeWorld(
  options: { authority?: Parameters<typeof startFakeAuthority>[0]; agent?: Partial<AgentOptions> } = {},
): Promise<FakeWorld> {
  const t = await startFakeAuthority(options.authority);
  const host = await t.addHost();
  const a = await startAgentIn(host.dataDir, options.agent);
  return {
    t,
    host,
    a,
    async close() {
      await a.agent.close();
      await t.close();
      host.cleanup();
    },
  };
}
