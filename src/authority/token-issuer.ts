import { randomBytes, randomInt, sign } from 'node:crypto';
import { epochSeconds, type Clock } from '../shared/clock.js';
import { checkTokenLifetime } from '../shared/config.js';
import type { KeyRing } from './keys/key-ring.js';
import type { AuthorityUrls } from './urls.js';
import type { ServicePrincipal } from '../store/types.js';

/**
 * How the client proved itself: Entra's `appidacr` (0 = a public client, which proves nothing; 1 = client
 * secret; 2 = certificate, managed identity or federated assertion).
 */
export type ClientAuthMethod = 'public' | 'secret' | 'certificate' | 'managed-identity' | 'federated';

/** The person a delegated (user) token is for, signed in through a public client. */
export interface TokenUser {
  objectId: string;
  userPrincipalName: string;
  displayName: string;
  /** The delegated permissions granted (`scp`), space-separated. */
  scp: string;
  /** How the user signed in (`amr`): `pwd` for a password. */
  amr: readonly string[];
}

export interface IssueRequest {
  tenantId: string;
  /** The caller: the service principal itself, or for a user token the public client it signed in with (`appid`). */
  principal: Pick<ServicePrincipal, 'objectId' | 'appId'>;
  /** For a delegated token: the signed-in user (the token then names the user as `oid`, `idtyp=user`). */
  user?: TokenUser;
  /** The resource (audience) exactly as requested, trailing slash included. */
  resource: string;
  authMethod: ClientAuthMethod;
  /** For managed identities: ARM id for `xms_mirid`. */
  managedIdentityResourceId?: string;
  /** For managed identities: ARM id of the calling compute resource, `xms_az_rid`. */
  callerResourceId?: string;
}

export interface IssuedToken {
  accessToken: string;
  /** Unique token id (`uti`), safe to log and audit. */
  tokenId: string;
  kid: string;
  issuedAt: number;
  notBefore: number;
  expiresOn: number;
  expiresIn: number;
}

/**
 * Mints Entra-shaped v1 access tokens (RS256, `kid` and `x5t` in the header). Azure's first-party
 * resources (ARM, Key Vault) receive v1 tokens whichever endpoint was called, so both token endpoints
 * issue this shape.
 */
export class TokenIssuer {
  readonly #keyRing: KeyRing;
  readonly #urls: AuthorityUrls;
  readonly #clock: Clock;
  readonly #lifetimeSeconds: number;

  constructor(options: { keyRing: KeyRing; urls: AuthorityUrls; clock: Clock; lifetimeSeconds: number }) {
    checkTokenLifetime(options.lifetimeSeconds, 'the token lifetime');
    this.#keyRing = options.keyRing;
    this.#urls = options.urls;
    this.#clock = options.clock;
    this.#lifetimeSeconds = options.lifetimeSeconds;
  }

  issue(request: IssueRequest): IssuedToken {
    const key = this.#keyRing.current();
    const iat = epochSeconds(this.#clock);
    // Up to 10% shorter than configured, so a fleet that started together does not refresh together.
    const lifetime = this.#lifetimeSeconds - randomInt(0, Math.floor(this.#lifetimeSeconds / 10) + 1);
    const exp = iat + lifetime;
    const issuer = this.#urls.v1Issuer(request.tenantId);
    const tokenId = randomBytes(16).toString('base64url');
    const user = request.user;
    const claims: Record<string, unknown> = {
      aud: request.resource,
      iss: issuer,
      iat,
      nbf: iat,
      exp,
      ...(user === undefined ? {} : { acr: '1', amr: [...user.amr] }),
      appid: request.principal.appId,
      appidacr: request.authMethod === 'public' ? '0' : request.authMethod === 'secret' ? '1' : '2',
      idp: issuer,
      idtyp: user === undefined ? 'app' : 'user',
      ...(user === undefined ? {} : { name: user.displayName }),
      oid: user?.objectId ?? request.principal.objectId,
      ...(user === undefined ? {} : { preferred_username: user.userPrincipalName, scp: user.scp }),
      sub: user?.objectId ?? request.principal.objectId,
      tid: request.tenantId,
      ...(user === undefined ? {} : { unique_name: user.userPrincipalName, upn: user.userPrincipalName }),
      uti: tokenId,
      ver: '1.0',
    };
    if (request.managedIdentityResourceId !== undefined) claims['xms_mirid'] = request.managedIdentityResourceId;
    if (request.callerResourceId !== undefined) claims['xms_az_rid'] = request.callerResourceId;
    const accessToken = this.#sign(claims);
    return { accessToken, tokenId, kid: key.kid, issuedAt: iat, notBefore: iat, expiresOn: exp, expiresIn: lifetime };
  }

  /**
   * An OpenID Connect ID token for a signed-in user (Entra's v2 shape: `aud` is the client id, `iss` the
   * issuer of the discovery document the client read, which MSAL compares exactly). Lives an hour, as Entra's.
   */
  idToken(request: {
    tenantId: string;
    clientId: string;
    issuer: string;
    user: Pick<TokenUser, 'objectId' | 'userPrincipalName' | 'displayName'>;
    version: '1.0' | '2.0';
    /** The OIDC `nonce` of the authorize request (code flow): MSAL checks the ID token echoes it. */
    nonce?: string | undefined;
  }): string {
    const iat = epochSeconds(this.#clock);
    return this.#sign({
      aud: request.clientId,
      iss: request.issuer,
      iat,
      nbf: iat,
      exp: iat + 3600,
      name: request.user.displayName,
      oid: request.user.objectId,
      preferred_username: request.user.userPrincipalName,
      sub: request.user.objectId,
      tid: request.tenantId,
      upn: request.user.userPrincipalName,
      uti: randomBytes(16).toString('base64url'),
      ver: request.version,
      ...(request.nonce === undefined ? {} : { nonce: request.nonce }),
    });
  }

  #sign(claims: Record<string, unknown>): string {
    const key = this.#keyRing.current();
    const header = { typ: 'JWT', alg: key.alg, kid: key.kid, x5t: key.x5t };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    // node:crypto's one-shot RS256 signature: a third more signatures per core than WebCrypto's thread-pool
    // jobs (bench/rs256-sign.mjs), and the issuer is CPU-bound on exactly this.
    const signature = sign('sha256', Buffer.from(signingInput), key.privateKey).toString('base64url');
    return `${signingInput}.${signature}`;
  }
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
