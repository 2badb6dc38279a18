/**
 * A fake authority for the agent's own suites: a loopback HTTP server that speaks the agent ↔ authority wire
 * contract of `src/shared/host-protocol.ts` (the managed-identity grant at `/{tenant}/oauth2/token`, `GET self`,
 * `POST renew`, `POST audit`) from a few in-memory facts, with no store, no directory and no RBAC.
 *
 * It is what the agent suites need to test the agent's decisions (cache, single flight, refresh, outages,
 * revocation) with the authority's behaviour under the test's control: answer 503, answer slowly, refuse the
 * host, drop an identity, count every call. It still checks what the real authority checks of the agent's
 * requests (the host assertion's signature with the registered key, `iss` = `sub` = the host, `aud`, lifetime,
 * single-use `jti`), so an agent that signed wrongly fails here too. The real authority and agent meet in the
 * end-to-end suites under `test/clients/agent/`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { SignJWT, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, jwtVerify, type CryptoKey, type JWK } from 'jose';
import { systemClock, type Clock } from '../../src/shared/clock.js';
import {
  AUTHORITY_READY_PATH,
  HOST_API_BASE,
  HOST_API_PATHS,
  HOST_ASSERTION_MAX_LIFETIME_SECONDS,
  type AgentAuditRecord,
  type HostDescription,
  type HostIdentity,
} from '../../src/shared/host-protocol.js';
import { saveHostCredential } from '../../src/agent/host-credential.js';
import { MANAGED_IDENTITY_GRANT_TYPE } from '../../src/agent/upstream.js';
import type { TestHost } from './world.js';

/** One identity the fake knows, with the ids the agent may select it by. */
export interface FakeIdentity {
  /** The user-assigned identity's ARM id, or the host's for its system-assigned identity. */
  id: string;
  name: string;
  clientId: string;
  objectId: string;
}

/** A host registered with the fake: the world's `TestHost` (test/support/world.ts), every identity with its name. */
export interface FakeHost extends TestHost {
  uami: FakeIdentity;
  uami2: FakeIdentity;
  /** An identity that exists but is not assigned to the host. */
  other: FakeIdentity;
}

/** What the fake does with the next requests, set by the test. */
export interface FakeBehaviour {
  /** Answer every request with this status (a 5xx or 429 is an outage to the agent). */
  status?: number;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Close the connection without an answer. */
  drop?: boolean;
}

export interface FakeAuthority {
  /** `http://127.0.0.1:<port>` */
  url: string;
  tenantId: string;
  subscriptionId: string;
  /** Calls received, by kind (counted before any injected behaviour applies). */
  calls: { token: number; self: number; renew: number; audit: number };
  /** Every audit record uploaded, in order. */
  auditRecords: AgentAuditRecord[];
  /** Injected behaviour for every endpoint; reset it with `{}`. */
  behaviour: FakeBehaviour;
  /** Registers a host with a system- and two user-assigned identities (plus one not assigned) and writes its agent data dir. */
  addHost(name?: string): Promise<FakeHost>;
  /** Assigns or removes a user-assigned identity of `host`. Applies to the next grant and `self`. */
  setAssigned(host: FakeHost, identity: FakeIdentity, assigned: boolean): void;
  /** Refuses the host from now on, as the real authority does for a revoked credential or a deleted host. */
  revoke(host: FakeHost): void;
  /** Decoded claims of the last token issued. */
  lastIssued: Record<string, unknown> | undefined;
  /** Readiness probes (`GET /readyz`) received. */
  readyProbes: number;
  /** What replicas of one installation share (hosts, keys, used `jti`s, audit records): pass it as `replicaOf`. */
  readonly installation: FakeInstallation;
  /** Stops listening (connections are then refused, as from a killed replica) until {@link restart}. */
  stop(): Promise<void>;
  /** Whether it listens now. */
  isUp(): boolean;
  /** Listens again on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** The state replicas of one fake installation share, as real replicas share their store. */
export interface FakeInstallation {
  readonly tenantId: string;
  readonly subscriptionId: string;
  readonly signing: CryptoKeyPair;
  readonly hosts: Map<string, HostState>;
  readonly seenJti: Set<string>;
  readonly auditRecords: AgentAuditRecord[];
}

interface CryptoKeyPair {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

export interface HostState {
  host: FakeHost;
  keys: Map<string, { publicKey: CryptoKey; expiresOn: number }>;
  assigned: Set<string>;
  revoked: boolean;
}

class Refusal extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, body: unknown) {
    super(JSON.stringify(body));
    this.status = status;
    this.body = body;
  }
}

const oauthRefusal = (status: number, error: string, description: string) => new Refusal(status, { error, error_description: description });
const apiRefusal = (status: number, code: string, message: string) => new Refusal(status, { error: { code, message } });
const hostNotRecognised = () => oauthRefusal(401, 'invalid_client', 'The host credential is unknown, revoked or expired, or its host no longer exists.');

/**
 * Starts a fake authority on a free loopback port. Tokens it issues are ES256 JWTs with the claims agents and
 * clients read. With `replicaOf`, it is another replica of that fake's installation (its own origin, behaviour
 * and call counts; the same hosts, keys, used `jti`s and audit records).
 */
export async function startFakeAuthority(options: { clock?: Clock; tokenLifetimeSeconds?: number; replicaOf?: FakeAuthority } = {}): Promise<FakeAuthority> {
  const clock = options.clock ?? systemClock;
  const lifetime = options.tokenLifetimeSeconds ?? 3600;
  const installation: FakeInstallation = options.replicaOf?.installation ?? {
    tenantId: randomUUID(),
    subscriptionId: randomUUID(),
    signing: await generateKeyPair('ES256'),
    hosts: new Map<string, HostState>(),
    seenJti: new Set<string>(),
    auditRecords: [],
  };
  const { tenantId, subscriptionId, signing, hosts, seenJti } = installation;
  const now = () => Math.floor(clock.now() / 1000);
  let origin = '';
  let port = 0;

  const fake: FakeAuthority = {
    url: '',
    tenantId,
    subscriptionId,
    calls: { token: 0, self: 0, renew: 0, audit: 0 },
    auditRecords: installation.auditRecords,
    behaviour: {},
    lastIssued: undefined,
    readyProbes: 0,
    installation,
    async addHost(name = `host-${randomUUID().slice(0, 8)}`) {
      const resourceGroup = 'agent-hosts';
      const rg = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`;
      const hostId = `${rg}/providers/Microsoft.HybridCompute/machines/${name}`;
      const identity = (n: string): FakeIdentity => ({
        id: `${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${n}`,
        name: n,
        clientId: randomUUID(),
        objectId: randomUUID(),
      });
      const pair = await generateKeyPair('ES256', { extractable: true });
      const keyId = randomUUID();
      const issuedOn = now();
      const expiresOn = issuedOn + 24 * 3600;
      const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-agent-'));
      const host: FakeHost = {
        hostId,
        name,
        resourceGroup,
        keyId,
        dataDir,
        system: { clientId: randomUUID(), objectId: randomUUID() },
        uami: identity(`${name}-app`),
        uami2: identity(`${name}-second`),
        other: identity(`${name}-other`),
        cleanup: () => rmSync(dataDir, { recursive: true, force: true }),
      };
      await saveHostCredential(
        dataDir,
        { version: 1, keyId, hostResourceId: hostId, tenantId, tokenEndpoint: `${origin}/${tenantId}/oauth2/token`, issuedOn, expiresOn, authorityUrl: origin },
        await exportJWK(pair.privateKey),
      );
      hosts.set(hostId.toLowerCase(), {
        host,
        keys: new Map([[keyId, { publicKey: pair.publicKey, expiresOn }]]),
        assigned: new Set([host.uami.id, host.uami2.id].map((id) => id.toLowerCase())),
        revoked: false,
      });
      return host;
    },
    setAssigned(host, identity, assigned) {
      const state = stateOf(host);
      if (assigned) state.assigned.add(identity.id.toLowerCase());
      else state.assigned.delete(identity.id.toLowerCase());
    },
    revoke(host) {
      stateOf(host).revoked = true;
    },
    stop: () =>
      new Promise((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        // Keep-alive connections from an agent under test must not hold close() open.
        server.closeAllConnections();
      }),
    isUp: () => server.listening,
    restart: () => new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port }, resolve)),
    close: () => fake.stop(),
  };

  function stateOf(host: FakeHost): HostState {
    const state = hosts.get(host.hostId.toLowerCase());
    if (state === undefined) throw new Error(`host ${host.hostId} is not registered with this fake authority`);
    return state;
  }

  /** The host assertion checks of the real authority (src/authority/token/assertion.ts, hosts/authenticate.ts). */
  async function authenticate(assertion: string | undefined, audience: string, refuse: () => Refusal): Promise<HostState> {
    if (assertion === undefined) throw refuse();
    let kid: unknown;
    try {
      kid = decodeProtectedHeader(assertion).kid;
    } catch {
      throw refuse();
    }
    const state = [...hosts.values()].find((s) => typeof kid === 'string' && s.keys.has(kid));
    const key = typeof kid === 'string' ? state?.keys.get(kid) : undefined;
    if (state === undefined || key === undefined || state.revoked || key.expiresOn <= now()) throw refuse();
    try {
      const { payload } = await jwtVerify(assertion, key.publicKey, {
        algorithms: ['ES256'],
        audience,
        issuer: state.host.hostId,
        subject: state.host.hostId,
        currentDate: new Date(clock.now()),
        requiredClaims: ['jti', 'iat', 'exp'],
        clockTolerance: 5,
      });
      if ((payload.exp ?? 0) - (payload.iat ?? 0) > HOST_ASSERTION_MAX_LIFETIME_SECONDS) throw refuse();
      if (seenJti.has(payload.jti ?? '')) throw refuse();
      seenJti.add(payload.jti ?? '');
    } catch (err) {
      if (err instanceof Refusal) throw err;
      throw refuse();
    }
    return state;
  }

  function identitiesOf(state: HostState): HostIdentity[] {
    const { host } = state;
    const system: HostIdentity = { type: 'SystemAssigned', objectId: host.system.objectId, clientId: host.system.clientId, resourceId: host.hostId };
    const users = [host.uami, host.uami2, host.other]
      .filter((i) => state.assigned.has(i.id.toLowerCase()))
      .map((i): HostIdentity => ({ type: 'UserAssigned', objectId: i.objectId, clientId: i.clientId, resourceId: i.id }));
    return [system, ...users];
  }

  async function grant(body: URLSearchParams): Promise<Record<string, string>> {
    if (body.get('grant_type') !== MANAGED_IDENTITY_GRANT_TYPE)
      throw oauthRefusal(400, 'unsupported_grant_type', 'Only the managed-identity grant is served here.');
    const state = await authenticate(body.get('client_assertion') ?? undefined, `${origin}/${tenantId}/oauth2/token`, hostNotRecognised);
    const resource = body.get('resource');
    if (resource === null || resource === '') throw oauthRefusal(400, 'invalid_resource', 'The resource is missing.');
    const identities = identitiesOf(state);
    const selectors = (['mi_client_id', 'mi_object_id', 'mi_res_id'] as const).filter((s) => body.has(s));
    if (selectors.length > 1) throw oauthRefusal(400, 'invalid_request', 'Only one identity selector may be given.');
    const selector = selectors[0];
    const value = selector === undefined ? undefined : (body.get(selector) ?? '').toLowerCase();
    const identity =
      selector === undefined
        ? identities[0]
        : identities.find((i) =>
            selector === 'mi_client_id' ? i.clientId === value : selector === 'mi_object_id' ? i.objectId === value : i.resourceId.toLowerCase() === value,
          );
    if (identity === undefined) throw oauthRefusal(400, 'invalid_request', 'Identity not found');
    const iat = now();
    const claims = { aud: resource, tid: tenantId, oid: identity.objectId, sub: identity.objectId, appid: identity.clientId, xms_mirid: identity.resourceId };
    const accessToken = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
      .setIssuer(`${origin}/${tenantId}/`)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + lifetime)
      .setJti(randomUUID())
      .sign(signing.privateKey);
    fake.lastIssued = { ...claims, iat, nbf: iat, exp: iat + lifetime };
    return {
      token_type: 'Bearer',
      expires_in: String(lifetime),
      ext_expires_in: String(lifetime),
      expires_on: String(iat + lifetime),
      not_before: String(iat),
      resource,
      access_token: accessToken,
    };
  }

  async function hostCall(req: IncomingMessage, path: string, body: string): Promise<unknown> {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const state = await authenticate(bearer, origin + HOST_API_BASE, () =>
      apiRefusal(401, 'HostNotRecognised', 'The host credential is unknown, revoked or expired, or its host no longer exists.'),
    );
    const { host } = state;
    if (req.method === 'GET' && path === HOST_API_PATHS.self) {
      fake.calls.self++;
      const [kid, key] = [...state.keys][state.keys.size - 1] ?? [];
      const description: HostDescription = {
        tenantId,
        hostResourceId: host.hostId,
        subscriptionId,
        resourceGroup: host.resourceGroup,
        name: host.name,
        location: 'local',
        vmId: '6f2c1c44-2b1f-4c1e-9a53-000000000001',
        identities: identitiesOf(state),
        credential: { keyId: kid ?? host.keyId, expiresOn: key?.expiresOn ?? 0 },
      };
      return description;
    }
    if (req.method === 'POST' && path === HOST_API_PATHS.renew) {
      fake.calls.renew++;
      const { publicJwk } = JSON.parse(body) as { publicJwk: JWK };
      const keyId = randomUUID();
      const issuedOn = now();
      const expiresOn = issuedOn + 24 * 3600;
      state.keys.set(keyId, { publicKey: (await importJWK({ ...publicJwk, alg: 'ES256' }, 'ES256')) as CryptoKey, expiresOn });
      return { tenantId, hostResourceId: host.hostId, keyId, issuedOn, expiresOn, tokenEndpoint: `${origin}/${tenantId}/oauth2/token` };
    }
    if (req.method === 'POST' && path === HOST_API_PATHS.audit) {
      fake.calls.audit++;
      const { records } = JSON.parse(body) as { records: AgentAuditRecord[] };
      fake.auditRecords.push(...records);
      return { accepted: records.length, refused: 0 };
    }
    throw apiRefusal(404, 'NotFound', `${String(req.method)} ${path} is not served by the fake authority`);
  }

  async function answer(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
    const path = new URL(req.url ?? '/', origin).pathname;
    const isToken = req.method === 'POST' && path === `/${tenantId}/oauth2/token`;
    if (isToken) fake.calls.token++;
    const isReady = req.method === 'GET' && path === AUTHORITY_READY_PATH;
    if (isReady) fake.readyProbes++;
    const { status, delayMs, drop } = fake.behaviour;
    if (delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (drop === true) {
      req.socket.destroy();
      return;
    }
    let code = 200;
    let payload: unknown;
    if (status !== undefined) {
      code = status;
      payload = { error: 'temporarily_unavailable', error_description: `injected ${String(status)}` };
    } else {
      try {
        payload = isReady ? { status: 'ready' } : isToken ? await grant(new URLSearchParams(body)) : await hostCall(req, path, body);
      } catch (err) {
        if (!(err instanceof Refusal)) throw err;
        code = err.status;
        payload = err.body;
      }
    }
    res.writeHead(code, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(payload));
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      answer(req, res, Buffer.concat(chunks).toString('utf8')).catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'server_error', error_description: String(err) }));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${String(port)}`;
  fake.url = origin;
  return fake;
}
