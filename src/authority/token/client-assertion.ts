import { createHash, X509Certificate } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, jwtVerify, errors as joseErrors, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import type { KeyObject, webcrypto } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import type { ReplayStore } from '../../store/types.js';
import { TokenErrors } from '../errors.js';

export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Algorithms we accept on client assertions: msal's RS256 (`x5t`) and @azure/identity's PS256 (`x5t#S256`). */
export const ASSERTION_ALGORITHMS = ['RS256', 'PS256'] as const;

/** Clock skew tolerated on assertion `nbf`/`exp`. */
const ASSERTION_SKEW_SECONDS = 300;
/** Longest-lived assertion we accept; a long-lived one is a reusable credential, which assertions must not be. */
const MAX_ASSERTION_LIFETIME_SECONDS = 24 * 60 * 60;

export interface DecodedAssertion {
  header: ProtectedHeaderParameters;
  payload: JWTPayload;
}

/** Decodes without verifying, so we can find the key; any structural problem is `invalid_request`. */
export function decodeAssertion(assertion: string): DecodedAssertion {
  if (assertion.split('.').length !== 3) throw TokenErrors.malformedAssertion('expected a compact JWS with three parts');
  try {
    return { header: decodeProtectedHeader(assertion), payload: decodeJwt(assertion) };
  } catch {
    throw TokenErrors.malformedAssertion('the header or payload is not base64url JSON');
  }
}

/** Checks the header's algorithm against the allow-list before any key is touched. */
export function assertionAlgorithm(header: ProtectedHeaderParameters): (typeof ASSERTION_ALGORITHMS)[number] {
  const alg = header.alg ?? 'none';
  const allowed = ASSERTION_ALGORITHMS.find((a) => a === alg);
  if (allowed === undefined) throw TokenErrors.unsupportedAssertionAlg(alg);
  return allowed;
}

export interface AssertionCheck {
  /** The client the assertion must be issued by and about (`iss` and `sub`). */
  clientId: string;
  /** Audiences we accept: this tenant's token endpoints and issuer. */
  audiences: readonly string[];
  key: KeyObject | webcrypto.CryptoKey;
  alg: string;
  clock: Clock;
  replay: ReplayStore;
}

/**
 * Verifies a client assertion's signature and claims, then records its `jti` so it cannot be used twice.
 * The replay record lives until the assertion expires (plus skew), across every replica sharing the store.
 */
export async function verifyAssertion(assertion: string, check: AssertionCheck): Promise<JWTPayload> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(assertion, check.key, {
      algorithms: [check.alg],
      currentDate: new Date(check.clock.now()),
      clockTolerance: ASSERTION_SKEW_SECONDS,
      requiredClaims: ['exp'],
    }));
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired || (err instanceof joseErrors.JWTClaimValidationFailed && (err.claim === 'nbf' || err.claim === 'iat'))) {
      throw TokenErrors.assertionExpired();
    }
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw TokenErrors.assertionSignatureInvalid('the signature does not verify with the registered key');
    if (err instanceof joseErrors.JWTClaimValidationFailed) throw TokenErrors.malformedAssertion(`claim '${err.claim}' is invalid`);
    throw TokenErrors.malformedAssertion('the assertion could not be verified');
  }
  if (payload.iss !== check.clientId || payload.sub !== check.clientId) throw TokenErrors.assertionClientMismatch();
  const audiences = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []);
  if (!audiences.some((aud) => check.audiences.includes(aud))) throw TokenErrors.assertionAudienceInvalid();
  const nowSeconds = Math.floor(check.clock.now() / 1000);
  const exp = payload.exp as number;
  if (exp - (typeof payload.nbf === 'number' ? payload.nbf : nowSeconds) > MAX_ASSERTION_LIFETIME_SECONDS) {
    throw TokenErrors.malformedAssertion('the assertion is valid for longer than 24 hours');
  }
  if (typeof payload.jti !== 'string' || payload.jti === '') throw TokenErrors.malformedAssertion("the 'jti' claim is required");
  const replayKey = createHash('sha256').update(check.clientId).update('\0').update(payload.jti).digest('base64url');
  // MSAL Python sends a fractional `exp` (time.time() + 600); the store keeps whole epoch milliseconds.
  const firstUse = await check.replay.remember(replayKey, Math.ceil((exp + ASSERTION_SKEW_SECONDS) * 1000));
  if (!firstUse) throw TokenErrors.assertionReplayed();
  return payload;
}

/** The public key of a DER certificate stored as base64, plus its validity window. */
export function certificateKey(certificateBase64: string): { key: KeyObject; notBefore: number; notAfter: number } {
  const cert = new X509Certificate(Buffer.from(certificateBase64, 'base64'));
  return { key: cert.publicKey, notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
}
