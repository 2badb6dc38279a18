/**
 * The one JWT-bearer assertion check (RFC 7523), shared by every caller that authenticates with a signed
 * assertion: applications with a certificate (`client-auth.ts`) and hosts with a registered key (the
 * managed-identity grant). Callers differ only in the algorithms they accept, how a header names a key,
 * which audiences count, and which errors they report; each passes those in an {@link AssertionPolicy}.
 */
import { createHash } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, jwtVerify, errors as joseErrors, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import type { KeyObject, webcrypto } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import type { OAuthError } from '../../shared/oauth-error.js';
import type { ReplayStore } from '../../store/types.js';
import { TokenErrors } from '../errors.js';
import { requireParam, type FormParams } from './form.js';

export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Clock skew tolerated on assertion `nbf`/`exp`. */
const ASSERTION_SKEW_SECONDS = 300;
/** Longest-lived assertion we accept; a long-lived one is a reusable credential, which assertions must not be. */
const MAX_ASSERTION_LIFETIME_SECONDS = 24 * 60 * 60;

/** An assertion decoded but not yet verified: enough to find its key, nothing to trust. */
export interface DecodedAssertion {
  header: ProtectedHeaderParameters;
  payload: JWTPayload;
  /** The header's algorithm, already checked against the caller's list. */
  alg: string;
}

/** The key a caller found for an assertion, and who the assertion must then be from. */
export interface ResolvedAssertionKey<T> {
  key: KeyObject | webcrypto.CryptoKey;
  /** The value `iss` and `sub` must both hold; also scopes the `jti` replay record. */
  issuer: string;
  /** Whatever the caller found along with the key (a credential, a host), handed back after verification. */
  subject: T;
}

/** The errors a failed check reports; {@link ENTRA_ASSERTION_ERRORS} are Entra's codes and messages. */
export interface AssertionErrors {
  invalidType(): OAuthError;
  malformed(reason: string): OAuthError;
  unsupportedAlg(alg: string, allowed: readonly string[]): OAuthError;
  expired(): OAuthError;
  badSignature(reason: string): OAuthError;
  issuerMismatch(): OAuthError;
  audienceInvalid(): OAuthError;
  replayed(): OAuthError;
}

/** Entra's client-assertion errors (AADSTS 50027, 5002738, 700024, 700027, 700021, 50013, 700229). */
export const ENTRA_ASSERTION_ERRORS: AssertionErrors = {
  invalidType: TokenErrors.invalidAssertionType,
  malformed: TokenErrors.malformedAssertion,
  unsupportedAlg: TokenErrors.unsupportedAssertionAlg,
  expired: TokenErrors.assertionExpired,
  badSignature: TokenErrors.assertionSignatureInvalid,
  issuerMismatch: TokenErrors.assertionClientMismatch,
  audienceInvalid: TokenErrors.assertionAudienceInvalid,
  replayed: TokenErrors.assertionReplayed,
};

/** What one kind of caller accepts. */
export interface AssertionPolicy<T> {
  /** Header algorithms accepted, checked before any key is looked up; error messages list them. */
  algorithms: readonly string[];
  /** Accepted `aud` values (this tenant's advertised token endpoints and issuers); one match suffices. */
  audiences: readonly string[];
  /** Finds the key the assertion names, throwing the caller's own error when there is none or it is unusable. */
  resolveKey(decoded: DecodedAssertion): Promise<ResolvedAssertionKey<T>>;
  clock: Clock;
  replay: ReplayStore;
  /** Default {@link ENTRA_ASSERTION_ERRORS}. */
  errors?: AssertionErrors;
}

/** A verified assertion: its claims, and what the caller's key resolution found. */
export interface VerifiedAssertion<T> {
  payload: JWTPayload;
  subject: T;
}

/**
 * Verifies the `client_assertion` of a token request: its type; compact shape; algorithm against the
 * caller's list before any key is touched; the key the caller resolves; signature; `exp` (required) and
 * `nbf` with skew; `iss` = `sub` = the resolved issuer; `aud` among the accepted; a lifetime cap; and a
 * required `jti`, recorded so the assertion cannot be used twice. The replay record lives until the
 * assertion expires (plus skew), across every replica sharing the store.
 */
export async function verifyAssertion<T>(params: FormParams, policy: AssertionPolicy<T>): Promise<VerifiedAssertion<T>> {
  const errors = policy.errors ?? ENTRA_ASSERTION_ERRORS;
  if (params['client_assertion_type'] !== JWT_BEARER_ASSERTION_TYPE) throw errors.invalidType();
  const assertion = requireParam(params, 'client_assertion');
  const { header, payload: unverified } = decode(assertion, errors);
  const alg = header.alg ?? 'none';
  if (!policy.algorithms.includes(alg)) throw errors.unsupportedAlg(alg, policy.algorithms);
  const { key, issuer, subject } = await policy.resolveKey({ header, payload: unverified, alg });

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(assertion, key, {
      algorithms: [alg],
      currentDate: new Date(policy.clock.now()),
      clockTolerance: ASSERTION_SKEW_SECONDS,
      requiredClaims: ['exp'],
    }));
  } catch (err) {
    throw joseFailure(err, errors);
  }
  if (payload.iss !== issuer || payload.sub !== issuer) throw errors.issuerMismatch();
  const audiences = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []);
  if (!audiences.some((aud) => policy.audiences.includes(aud))) throw errors.audienceInvalid();
  const nowSeconds = Math.floor(policy.clock.now() / 1000);
  const exp = payload.exp as number;
  if (exp - (typeof payload.nbf === 'number' ? payload.nbf : nowSeconds) > MAX_ASSERTION_LIFETIME_SECONDS) {
    throw errors.malformed('the assertion is valid for longer than 24 hours');
  }
  if (typeof payload.jti !== 'string' || payload.jti === '') throw errors.malformed("the 'jti' claim is required");
  const replayKey = createHash('sha256').update(issuer).update('\0').update(payload.jti).digest('base64url');
  // MSAL Python sends a fractional `exp` (time.time() + 600); the store keeps whole epoch milliseconds.
  const firstUse = await policy.replay.remember(replayKey, Math.ceil((exp + ASSERTION_SKEW_SECONDS) * 1000));
  if (!firstUse) throw errors.replayed();
  return { payload, subject };
}

/** Decodes without verifying, so the key can be found; any structural problem is `invalid_request`. */
function decode(assertion: string, errors: AssertionErrors): Omit<DecodedAssertion, 'alg'> {
  if (assertion.split('.').length !== 3) throw errors.malformed('expected a compact JWS with three parts');
  try {
    return { header: decodeProtectedHeader(assertion), payload: decodeJwt(assertion) };
  } catch {
    throw errors.malformed('the header or payload is not base64url JSON');
  }
}

function joseFailure(err: unknown, errors: AssertionErrors): OAuthError {
  if (err instanceof joseErrors.JWTExpired || (err instanceof joseErrors.JWTClaimValidationFailed && (err.claim === 'nbf' || err.claim === 'iat'))) {
    return errors.expired();
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return errors.badSignature('the signature does not verify with the registered key');
  if (err instanceof joseErrors.JWTClaimValidationFailed) return errors.malformed(`claim '${err.claim}' is invalid`);
  return errors.malformed('the assertion could not be verified');
}
