/**
 * Hosts: the machines an `openmsi agent` runs on, as `Microsoft.HybridCompute/machines` resources (what
 * Azure Arc calls them), their single-use join tokens and their credentials (public keys the agent
 * registered). No HTTP here: the host API (`src/authority/hosts/`) and the management API map the
 * {@link HostError} codes, which are the contract's `HostApiErrorCode`s, to statuses.
 *
 * - A join token is `omj_<id>.<secret>`: a 128-bit id to find the row and a 256-bit secret of which only
 *   the SHA-256 is stored. It is single use (compare-and-set in the store, safe across replicas) and
 *   expires ({@link JOIN_TOKEN_TTL_SECONDS}).
 * - Enrolment consumes the token and registers the host's public key (EC P-256 or RSA ≥ 2048, public
 *   members only) as a credential whose key id is its RFC 7638 thumbprint, valid for
 *   {@link HOST_CREDENTIAL_LIFETIME_SECONDS}.
 * - Renewal registers a new key for the same host. The previous credential is **not** revoked: it stays
 *   valid until its own expiry, so an agent whose renewal response was lost is not locked out (it keeps
 *   using the old key and renews again). An operator who wants it gone revokes it.
 * - A credential authenticates only while it is unexpired and unrevoked and its host exists. Deleting the
 *   host revokes its credentials (`deleteResource` in resources.ts), so a host deleted and created again
 *   under the same name starts with none.
 */
import { createHash, createPublicKey, randomBytes, timingSafeEqual } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import type { Clock } from '../shared/clock.js';
import { CodedError } from '../shared/coded-error.js';
import { HOST_CREDENTIAL_LIFETIME_SECONDS, JOIN_TOKEN_TTL_SECONDS } from '../shared/config.js';
import type { HostApiErrorCode, HostDescription, HostIdentity, PublicJwk } from '../shared/host-protocol.js';
import { armKey, formatArmResourceId, newGuid } from '../shared/ids.js';
import type { HostCredential, Repositories, Resource, Store } from '../store/types.js';
import { DirectoryErrors } from './errors.js';
import { atomically } from './principals.js';
import { getResource, putResource, requireSubscription } from './resources.js';

export const HOST_RESOURCE_TYPE = 'Microsoft.HybridCompute/machines';

/** Live (unrevoked, unexpired) credentials a host may hold at once; renewal beyond it is refused. */
export const MAX_LIVE_HOST_CREDENTIALS = 10;

/** A refusal of host enrolment or authentication, with the host API's stable code. */
export class HostError extends CodedError<HostApiErrorCode> {
  override readonly name = 'HostError';
  /** The host and tenant the refused request concerned, when known (for the audit trail). */
  readonly subject: { hostResourceId: string; tenantId: string } | undefined;

  constructor(code: HostApiErrorCode, message: string, subject?: { hostResourceId: string; tenantId: string }) {
    super(code, message);
    this.subject = subject;
  }

  /** The same refusal, naming the host and tenant it concerned. */
  about(subject: { hostResourceId: string; tenantId: string }): HostError {
    return new HostError(this.code, this.message, subject);
  }
}

const fail = (code: HostApiErrorCode, message: string) => new HostError(code, message);

/** The host errors; the messages never repeat what the caller presented. */
export const HostErrors = {
  joinTokenInvalid: (reason = 'The join token is not valid.') => fail('JoinTokenInvalid', reason),
  joinTokenUsed: () => fail('JoinTokenUsed', 'The join token was already used; create a new one with `openmsi host join-token create`.'),
  joinTokenExpired: () => fail('JoinTokenExpired', 'The join token has expired; create a new one with `openmsi host join-token create`.'),
  hostNotRecognised: (reason: string) => fail('HostNotRecognised', `The host is not recognised: ${reason}.`),
  invalidRequest: (reason: string) => fail('InvalidRequest', `The request is invalid: ${reason}.`),
  identityNotFound: () => fail('IdentityNotFound', 'The identity is not assigned to this host.'),
  notFederated: () => fail('NotFederated', 'The identity has no upstream link (openmsi identity federation link).'),
} as const;

// ---------------------------------------------------------------------------------------------------
// Join tokens
// ---------------------------------------------------------------------------------------------------

const TOKEN_PREFIX = 'omj_';
const TOKEN_SHAPE = /^omj_([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('base64url');
}

/** The join token's parts, or undefined when it is not one. */
function parseJoinToken(token: unknown): { id: string; secret: string } | undefined {
  if (typeof token !== 'string') return undefined;
  const match = TOKEN_SHAPE.exec(token);
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  return { id: match[1], secret: match[2] };
}

/** A `--ttl` in seconds within {@link JOIN_TOKEN_TTL_SECONDS}; anything else is `InvalidRequestContent`. */
export function checkJoinTokenTtl(ttlSeconds: unknown): number {
  if (ttlSeconds === undefined || ttlSeconds === null) return JOIN_TOKEN_TTL_SECONDS.default;
  const { min, max } = JOIN_TOKEN_TTL_SECONDS;
  if (typeof ttlSeconds !== 'number' || !Number.isInteger(ttlSeconds) || ttlSeconds < min || ttlSeconds > max) {
    throw DirectoryErrors.invalidProperties(
      `'ttlSeconds' must be a whole number of seconds from ${String(min)} (1 minute) to ${String(max)} (24 hours); the default is ${String(JOIN_TOKEN_TTL_SECONDS.default)}`,
    );
  }
  return ttlSeconds;
}

export interface CreateJoinTokenInput {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  /** Default {@link JOIN_TOKEN_TTL_SECONDS}.default. */
  ttlSeconds?: unknown;
  /** Object id of the caller. */
  createdBy: string;
  clock: Clock;
  /**
   * Called in the token's transaction with the machine as stored (undefined when it is about to be
   * created), before anything is written; it throws to refuse (the management API's check that the caller
   * may hand over the machine's identities, made before the transaction, still holds).
   */
  guard?: (machine: Resource | undefined) => void;
}

export interface CreatedJoinToken {
  /** The token: shown once, never stored. */
  token: string;
  /** Its public id (for the audit trail; useless without the secret). */
  tokenId: string;
  /** Epoch milliseconds. */
  expiresOn: number;
  tenantId: string;
  machine: Resource;
  /** True when this call created the machine resource. */
  machineCreated: boolean;
}

/**
 * Creates a join token for the machine `name` in the group, creating the machine (with a system-assigned
 * identity and a `properties.vmId`) when it does not exist, and enabling the system-assigned identity or
 * adding a `vmId` when it exists without one. Everything else about an existing machine is kept.
 */
export async function createJoinToken(repos: Repositories | Store, input: CreateJoinTokenInput): Promise<CreatedJoinToken> {
  const ttlSeconds = checkJoinTokenTtl(input.ttlSeconds);
  return atomically(repos, async (tx) => {
    const subscription = await requireSubscription(tx, input.subscriptionId, { forWrite: true });
    const group = await tx.resourceGroups.get(subscription.id, input.resourceGroup);
    if (group === undefined) throw DirectoryErrors.resourceGroupNotFound(input.resourceGroup);
    const id = formatArmResourceId({ subscriptionId: subscription.id, resourceGroup: group.name, type: HOST_RESOURCE_TYPE, name: input.name });
    const existing = await tx.resources.get(id);
    input.guard?.(existing);
    let machine = existing;
    if (existing === undefined || existing.systemPrincipalId === null || vmIdOf(existing) === undefined) {
      const userAssigned = existing?.userAssignedIdentityIds ?? [];
      const written = await putResource(tx, {
        subscriptionId: subscription.id,
        resourceGroup: group.name,
        type: HOST_RESOURCE_TYPE,
        name: existing?.name ?? input.name,
        ...(existing === undefined ? {} : { location: existing.location, tags: existing.tags }),
        properties: { ...existing?.properties, vmId: (existing === undefined ? undefined : vmIdOf(existing)) ?? newGuid() },
        identity:
          userAssigned.length === 0
            ? { type: 'SystemAssigned' }
            : { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: Object.fromEntries(userAssigned.map((u) => [u, {}])) },
        clock: input.clock,
      });
      machine = written.resource;
    }
    if (machine === undefined) throw new TypeError('the machine was neither found nor written');

    const tokenId = randomBytes(16).toString('base64url');
    const secret = randomBytes(32).toString('base64url');
    const now = input.clock.now();
    const expiresOn = now + ttlSeconds * 1000;
    await tx.joinTokens.create({
      id: tokenId,
      secretHash: hashSecret(secret),
      tenantId: subscription.tenantId,
      hostResourceId: machine.id,
      createdBy: input.createdBy,
      createdAt: now,
      expiresAt: expiresOn,
      usedAt: null,
    });
    return {
      token: `${TOKEN_PREFIX}${tokenId}.${secret}`,
      tokenId,
      expiresOn,
      tenantId: subscription.tenantId,
      machine,
      machineCreated: existing === undefined,
    };
  });
}

/** A machine's `properties.vmId`, when it has a non-empty one. */
export function vmIdOf(resource: Resource): string | undefined {
  const vmId = resource.properties['vmId'];
  return typeof vmId === 'string' && vmId !== '' ? vmId : undefined;
}

// ---------------------------------------------------------------------------------------------------
// Public keys
// ---------------------------------------------------------------------------------------------------

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/**
 * The public key of an enrolment or renewal, reduced to its public members: EC P-256 (`kty`, `crv`, `x`,
 * `y`) or RSA of at least 2048 bits (`kty`, `n`, `e`). Private members, other curves, other key types and
 * keys that do not parse are `InvalidRequest`.
 */
export function checkPublicJwk(value: unknown): PublicJwk {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw HostErrors.invalidRequest("'publicJwk' must be a JSON Web Key object");
  const jwk = value as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) throw HostErrors.invalidRequest("'publicJwk' holds private key material; send the public key only");
  const str = (name: string): string => {
    const v = jwk[name];
    if (typeof v !== 'string' || v === '' || !/^[A-Za-z0-9_-]+$/.test(v)) throw HostErrors.invalidRequest(`'publicJwk.${name}' must be a base64url string`);
    return v;
  };
  let key: PublicJwk;
  if (jwk['kty'] === 'EC') {
    if (jwk['crv'] !== 'P-256') throw HostErrors.invalidRequest("an EC 'publicJwk' must be on curve P-256 (ES256)");
    key = { kty: 'EC', crv: 'P-256', x: str('x'), y: str('y') };
  } else if (jwk['kty'] === 'RSA') {
    key = { kty: 'RSA', n: str('n'), e: str('e') };
  } else {
    throw HostErrors.invalidRequest("'publicJwk.kty' must be 'EC' (P-256) or 'RSA' (2048 bits or more)");
  }
  let details: { modulusLength?: number | undefined } | undefined;
  try {
    details = createPublicKey({ key: { ...key }, format: 'jwk' }).asymmetricKeyDetails;
  } catch {
    throw HostErrors.invalidRequest("'publicJwk' is not a valid public key");
  }
  if (key.kty === 'RSA' && (details?.modulusLength ?? 0) < 2048) throw HostErrors.invalidRequest('an RSA key must have at least 2048 bits');
  return key;
}

/** The key id of a host credential: the key's RFC 7638 JWK thumbprint (SHA-256, base64url). */
export function hostKeyId(jwk: PublicJwk): Promise<string> {
  return calculateJwkThumbprint({ ...jwk }, 'sha256');
}

// ---------------------------------------------------------------------------------------------------
// Enrolment and renewal
// ---------------------------------------------------------------------------------------------------

export interface EnrolHostInput {
  joinToken: unknown;
  publicJwk: unknown;
  clock: Clock;
  /** Default {@link HOST_CREDENTIAL_LIFETIME_SECONDS}. */
  credentialLifetimeSeconds?: number;
}

export interface RegisteredHostCredential {
  credential: HostCredential;
  host: Resource;
  tenantId: string;
  /** The join token's public id (enrolment only), for the audit trail. */
  joinTokenId?: string;
}

/**
 * Enrols a host: checks the join token (secret compared in constant time; then unused, unexpired), consumes
 * it, and registers the public key, all in one transaction (a failure leaves the token unused).
 */
export async function enrolHost(store: Store, input: EnrolHostInput): Promise<RegisteredHostCredential> {
  const publicJwk = checkPublicJwk(input.publicJwk);
  const keyId = await hostKeyId(publicJwk);
  const parsed = parseJoinToken(input.joinToken);
  if (parsed === undefined) throw HostErrors.joinTokenInvalid('The join token is malformed.');
  return store.transaction(async (tx) => {
    const row = await tx.joinTokens.get(parsed.id);
    const presented = Buffer.from(hashSecret(parsed.secret));
    if (row === undefined || !sameBytes(presented, Buffer.from(row.secretHash))) throw HostErrors.joinTokenInvalid();
    const now = input.clock.now();
    const subject = { hostResourceId: row.hostResourceId, tenantId: row.tenantId };
    if (row.usedAt !== null) throw HostErrors.joinTokenUsed().about(subject);
    if (now >= row.expiresAt) throw HostErrors.joinTokenExpired().about(subject);
    if (!(await tx.joinTokens.consume(row.id, now))) throw HostErrors.joinTokenUsed().about(subject);
    const host = await tx.resources.get(row.hostResourceId);
    if (host === undefined) throw HostErrors.joinTokenInvalid('The host this join token was created for no longer exists.').about(subject);
    if ((await tx.hostCredentials.get(keyId)) !== undefined) {
      throw HostErrors.invalidRequest('this public key is already registered; make a new key pair').about(subject);
    }
    const credential = newCredential(keyId, host, publicJwk, now, input.credentialLifetimeSeconds);
    await tx.hostCredentials.add(credential);
    return { credential, host, tenantId: row.tenantId, joinTokenId: row.id };
  });
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function newCredential(keyId: string, host: Resource, publicJwk: PublicJwk, now: number, lifetimeSeconds = HOST_CREDENTIAL_LIFETIME_SECONDS): HostCredential {
  return { keyId, hostResourceId: host.id, publicJwk: { ...publicJwk }, createdAt: now, expiresAt: now + lifetimeSeconds * 1000, revokedAt: null };
}

export interface RenewHostCredentialInput {
  /** The authenticated host (see {@link authenticatedHost}). */
  host: Resource;
  publicJwk: unknown;
  clock: Clock;
  credentialLifetimeSeconds?: number;
}

/**
 * Registers a new key for an authenticated host. The credential it authenticated with stays valid until its
 * own expiry (see the module comment). Sending a key already registered to this host and still usable
 * returns that credential unchanged (a retry after a lost response); a key registered elsewhere, or
 * revoked, is `InvalidRequest`, as is a host that already holds {@link MAX_LIVE_HOST_CREDENTIALS}.
 */
export async function renewHostCredential(store: Store, input: RenewHostCredentialInput): Promise<RegisteredHostCredential & { renewed: boolean }> {
  const publicJwk = checkPublicJwk(input.publicJwk);
  const keyId = await hostKeyId(publicJwk);
  try {
    return await registerRenewal(store, input, publicJwk, keyId);
  } catch (err) {
    if (err instanceof HostError) throw err;
    // Two renewals racing with the same new key (a retry overtaking the original): the loser's insert fails
    // on the key id; once the winner committed, the loser gets the same credential.
    const registered = await store.hostCredentials.get(keyId);
    if (registered === undefined || armKey(registered.hostResourceId) !== armKey(input.host.id) || !isLive(registered, input.clock.now())) throw err;
    return { credential: registered, host: input.host, tenantId: await tenantOf(store, input.host), renewed: false };
  }
}

async function registerRenewal(
  store: Store,
  input: RenewHostCredentialInput,
  publicJwk: PublicJwk,
  keyId: string,
): Promise<RegisteredHostCredential & { renewed: boolean }> {
  return store.transaction(async (tx) => {
    const host = await tx.resources.get(input.host.id);
    if (host === undefined) throw HostErrors.hostNotRecognised('the host no longer exists');
    const tenantId = await tenantOf(tx, host);
    const now = input.clock.now();
    const existing = await tx.hostCredentials.get(keyId);
    if (existing !== undefined) {
      if (armKey(existing.hostResourceId) === armKey(host.id) && isLive(existing, now)) return { credential: existing, host, tenantId, renewed: false };
      throw HostErrors.invalidRequest('this public key is already registered; make a new key pair');
    }
    const live = (await tx.hostCredentials.listByHost(host.id)).filter((c) => isLive(c, now));
    if (live.length >= MAX_LIVE_HOST_CREDENTIALS) {
      throw HostErrors.invalidRequest(`the host already holds ${String(MAX_LIVE_HOST_CREDENTIALS)} live credentials; an operator must revoke some first`);
    }
    const credential = newCredential(keyId, host, publicJwk, now, input.credentialLifetimeSeconds);
    await tx.hostCredentials.add(credential);
    return { credential, host, tenantId, renewed: true };
  });
}

function isLive(credential: HostCredential, now: number): boolean {
  return credential.revokedAt === null && now < credential.expiresAt;
}

/** The host a credential authenticates, read now: undefined when the credential is revoked or expired, or its host is gone. */
export async function authenticatedHost(repos: Repositories, credential: HostCredential | undefined, now: number): Promise<Resource | undefined> {
  if (credential === undefined || !isLive(credential, now)) return undefined;
  return repos.resources.get(credential.hostResourceId);
}

async function tenantOf(repos: Repositories, host: Resource): Promise<string> {
  const subscription = await repos.subscriptions.get(host.subscriptionId);
  if (subscription === undefined) throw HostErrors.hostNotRecognised("the host's subscription no longer exists");
  return subscription.tenantId;
}

// ---------------------------------------------------------------------------------------------------
// What a host sees of itself
// ---------------------------------------------------------------------------------------------------

/** `GET self`: the host, and every identity assigned to it now (system-assigned first). */
export async function describeHost(repos: Repositories, host: Resource, credential: HostCredential): Promise<HostDescription> {
  const tenantId = await tenantOf(repos, host);
  const identities: HostIdentity[] = [];
  if (host.systemPrincipalId !== null) {
    const principal = await repos.servicePrincipals.getByObjectId(host.systemPrincipalId);
    if (principal !== undefined) identities.push({ type: 'SystemAssigned', objectId: principal.objectId, clientId: principal.appId, resourceId: host.id });
  }
  for (const id of host.userAssignedIdentityIds) {
    const principal = await repos.servicePrincipals.getByManagedIdentityResource(id, 'UserAssigned');
    if (principal?.managedIdentity == null) continue;
    identities.push({ type: 'UserAssigned', objectId: principal.objectId, clientId: principal.appId, resourceId: principal.managedIdentity.resourceId });
  }
  const links = await repos.federationLinks.getMany(identities.map((i) => i.objectId));
  for (const link of links) {
    const identity = identities.find((i) => i.objectId.toLowerCase() === link.ownerId);
    if (identity !== undefined) identity.upstream = { tenantId: link.tenantId, clientId: link.clientId, authorityHost: link.authorityHost };
  }
  return {
    tenantId,
    hostResourceId: host.id,
    subscriptionId: host.subscriptionId,
    resourceGroup: host.resourceGroup,
    name: host.name,
    location: host.location,
    vmId: vmIdOf(host) ?? '',
    identities,
    credential: { keyId: credential.keyId, expiresOn: Math.floor(credential.expiresAt / 1000) },
  };
}

// ---------------------------------------------------------------------------------------------------
// Operators: credentials of a host, revocation
// ---------------------------------------------------------------------------------------------------

/** The machine's credentials, oldest first (`ResourceGroupNotFound` / `ResourceNotFound` when there is no machine). */
export async function listHostCredentials(
  repos: Repositories,
  address: { subscriptionId: string; resourceGroup: string; name: string },
): Promise<{ host: Resource; credentials: HostCredential[] }> {
  const host = await getResource(repos, { ...address, type: HOST_RESOURCE_TYPE });
  return { host, credentials: await repos.hostCredentials.listByHost(host.id) };
}

/** The credential with this key id and the tenant of its host's subscription (undefined when either is unknown). */
export async function findHostCredential(
  repos: Repositories,
  keyId: string,
): Promise<{ credential: HostCredential; tenantId: string | undefined } | undefined> {
  const credential = await repos.hostCredentials.get(keyId);
  if (credential === undefined) return undefined;
  const subscriptionId = /^\/subscriptions\/([^/]+)\//i.exec(credential.hostResourceId)?.[1];
  const subscription = subscriptionId === undefined ? undefined : await repos.subscriptions.get(subscriptionId);
  return { credential, tenantId: subscription?.tenantId };
}

/** Revokes a credential now; its next use is refused. False when it was already revoked. */
export async function revokeHostCredential(repos: Repositories, keyId: string, clock: Clock): Promise<boolean> {
  return repos.hostCredentials.revoke(keyId, clock.now());
}
