import { randomBytes, randomInt, sign } from 'node:crypto';
import { epochSeconds, type Clock } from '../shared/clock.js';
import { checkTokenLifetime } from '../shared/config.js';
import type { KeyRing } from './keys/key-ring.js';
import type { AuthorityUrls } from './urls.js';
import type { ServicePrincipal } from '../store/types.js';

/** How the client proved itself: Entra's `appidacr` (1 = client secret, 2 = certificate, managed identity or federated assertion). */
export type ClientAuthMethod = 'secret' | 'certificate' | 'managed-identity' | 'federated';

export interface IssueRequest {
  tenantId: string;
  principal: ServicePrincipal;
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
    const claims: Record<string, unknown> = {
      aud: request.resource,
      iss: issuer,
      iat,
      nbf: iat,
      exp,
      appid: request.principal.appId,
      appidacr: request.authMethod === 'secret' ? '1' : '2',
      idp: issuer,
      idtyp: 'app',
      oid: request.principal.objectId,
      sub: request.principal.objectId,
      tid: request.tenantId,
      uti: tokenId,
      ver: '1.0',
    };
    if (request.managedIdentityResourceId !== undefined) claims['xms_mirid'] = request.managedIdentityResourceId;
    if (request.callerResourceId !== undefined) claims['xms_az_rid'] = request.callerResourceId;
    const header = { typ: 'JWT', alg: key.alg, kid: key.kid, x5t: key.x5t };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    // node:crypto's one-shot RS256 signature: a third more signatures per core than WebCrypto's thread-pool
    // jobs (bench/rs256-sign.mjs), and the issuer is CPU-bound on exactly this.
    const signature = sign('sha256', Buffer.from(signingInput), key.privateKey).toString('base64url');
    const accessToken = `${signingInput}.${signature}`;
    return { accessToken, tokenId, kid: key.kid, issuedAt: iat, notBefore: iat, expiresOn: exp, expiresIn: lifetime };
  }
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
