/**
 * Workload identity federation at the token endpoint: an external token (a Kubernetes service-account token,
 * a GitHub Actions OIDC token, ...) as the `client_assertion` of a user-assigned identity or an application
 * that has a matching federated identity credential. Entra's validation pipeline, in its order, so each
 * failure carries Entra's code (spec federation-kubernetes-kv-references.md §2.2):
 *
 * 1. trim the assertion (Python sends the token file's trailing newline) and decode it;
 * 2. (the caller resolved `client_id`);
 * 3. the owner's credentials whose issuer is exactly `iss` (AADSTS700211);
 * 4. the issuer's key for the header's `kid` (AADSTS50166 when the issuer is unreachable, 7000272 when the
 *    key is unknown after one refetch);
 * 5. the signature, RS256 unless the issuer's setting allows ES256/PS256 (AADSTS700027);
 * 6. `iat` required and a lifetime of at most 25 h (AADSTS70023); `nbf`/`exp` with 300 s skew (AADSTS700024);
 * 7. one credential's audience in `aud` (AADSTS700212);
 * 8. `sub` exactly (case-sensitive; AADSTS7002138 when only the case differs, else 700213), or a flexible
 *    credential's expression.
 *
 * No `jti` single-use rule: SDKs legitimately present the same token file many times.
 */
import { constants, KeyObject, verify } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import type { AuthorityContext } from '../context.js';
import type { FederatedCredential, ServicePrincipal } from '../../store/types.js';
import { TokenErrors } from '../errors.js';
import { JWT_BEARER_ASSERTION_TYPE } from '../token/assertion.js';
import { requireParam, type FormParams } from '../token/form.js';
import { isEntraIssuer } from '../../directory/federated-credentials.js';
import { matchesClaims, parseClaimsExpression } from '../../directory/claims-expression.js';
import { IssuerUnavailableError, type VerificationKey } from './issuer-keys.js';

/** Clock skew tolerated on `nbf`, `exp` and `iat`. */
const SKEW_SECONDS = 300;
/** Entra's cap on an external token's lifetime: 1.01:00:00. */
const MAX_LIFETIME_SECONDS = 25 * 3600;
/** What an issuer may sign with unless its setting says otherwise. */
export const DEFAULT_FEDERATION_ALGORITHMS: readonly string[] = ['RS256'];
/** What an issuer's setting may add. */
export const FEDERATION_ALGORITHMS: readonly string[] = ['RS256', 'ES256', 'PS256'];

/**
 * Whether the request's assertion is an external token rather than one the client signed with a registered
 * certificate. Entra's rule: a certificate assertion is issued by the client about itself (`iss` = `sub` =
 * `client_id`); an external token is issued by an OIDC issuer, whose `iss` is an https URL (as every federated
 * credential's issuer must be). An assertion that is neither stays on the certificate path and is refused there.
 */
export function isFederatedAssertion(params: FormParams, clientId: string): boolean {
  const assertion = params['client_assertion']?.trim();
  if (assertion === undefined || assertion === '') return false;
  let payload: JWTPayload;
  try {
    payload = decodeJwt(assertion);
  } catch {
    return false;
  }
  const iss = payload.iss;
  if (typeof iss !== 'string' || iss.toLowerCase() === clientId.toLowerCase()) return false;
  return /^https:\/\//i.test(iss);
}

export interface FederatedAuthentication {
  credential: FederatedCredential;
  issuer: string;
  subject: string;
}

/** Runs the pipeline for `principal` (an application or a user-assigned identity of the request's tenant). */
export async function verifyFederatedAssertion(ctx: AuthorityContext, params: FormParams, principal: ServicePrincipal): Promise<FederatedAuthentication> {
  if (params['client_assertion_type'] !== JWT_BEARER_ASSERTION_TYPE) throw TokenErrors.invalidAssertionType();
  const assertion = requireParam(params, 'client_assertion').trim();
  let header: ProtectedHeaderParameters;
  let payload: JWTPayload;
  try {
    if (assertion.split('.').length !== 3) throw new Error('not a compact JWS');
    header = decodeProtectedHeader(assertion);
    payload = decodeJwt(assertion);
  } catch {
    throw TokenErrors.malformedAssertion('expected a compact JWS whose header and payload are base64url JSON');
  }
  const issuer = payload.iss;
  if (typeof issuer !== 'string' || issuer === '') throw TokenErrors.malformedAssertion("the 'iss' claim is required");
  if (isEntraIssuer(issuer)) throw TokenErrors.federatedEntraIssuer();

  // 3. Credentials for exactly this issuer (read now: a change applies at once, on every replica).
  const candidates = await ctx.store.federatedCredentials.listByIssuer(principal.objectId, issuer);
  if (candidates.length === 0) throw TokenErrors.federatedIssuerNotMatched(issuer);

  // 4-5. The issuer's key, and the signature.
  const setting = await ctx.store.federationIssuers.get(issuer);
  const algorithms = setting?.algorithms ?? DEFAULT_FEDERATION_ALGORITHMS;
  const alg = header.alg ?? 'none';
  if (!algorithms.includes(alg)) {
    throw TokenErrors.federatedSignatureInvalid(`the algorithm '${alg.slice(0, 20)}' is not accepted for this issuer; it accepts ${algorithms.join(', ')}`);
  }
  const kid = typeof header.kid === 'string' ? header.kid : undefined;
  let key;
  try {
    key = await ctx.federation.getKey(
      { issuer, jwks: setting?.jwks ?? null, jwksUri: setting?.jwksUri ?? null, ca: setting?.ca ?? null, version: setting?.updatedAt ?? 0 },
      kid,
      alg,
    );
  } catch (err) {
    if (err instanceof IssuerUnavailableError) {
      ctx.logger.warn({ issuer, err: { message: err.message } }, 'federated issuer unavailable');
      throw TokenErrors.federatedIssuerUnavailable();
    }
    throw err;
  }
  if (key === undefined) throw TokenErrors.federatedKeyNotFound(kid ?? '', issuer);
  if (!verifySignature(assertion, key, alg)) throw TokenErrors.federatedSignatureInvalid("the signature does not verify with the issuer's key");

  // 6. Times.
  const { iat, exp, nbf } = payload;
  if (typeof iat !== 'number' || typeof exp !== 'number' || exp - iat > MAX_LIFETIME_SECONDS) {
    throw TokenErrors.federatedLifetime(typeof iat === 'number' ? iat : 0, typeof exp === 'number' ? exp : 0);
  }
  const now = ctx.clock.now() / 1000;
  if (exp <= now - SKEW_SECONDS || iat > now + SKEW_SECONDS || (typeof nbf === 'number' && nbf > now + SKEW_SECONDS)) throw TokenErrors.assertionExpired();

  // 7. Audience.
  const audiences = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud.filter((a) => typeof a === 'string') : [];
  const forAudience = candidates.filter((c) => c.audiences.some((a) => audiences.includes(a)));
  if (forAudience.length === 0) throw TokenErrors.federatedAudienceNotMatched(audiences);

  // 8. Subject.
  const subject = typeof payload.sub === 'string' ? payload.sub : '';
  const match = forAudience.find((c) =>
    c.subject !== null
      ? c.subject === subject
      : c.claimsMatchingExpression !== null && matchesClaims(parseClaimsExpression(c.claimsMatchingExpression.value), payload),
  );
  if (match === undefined) {
    const lower = subject.toLowerCase();
    if (forAudience.some((c) => c.subject?.toLowerCase() === lower)) throw TokenErrors.federatedSubjectCaseMismatch(subject);
    throw TokenErrors.federatedSubjectNotMatched(subject);
  }
  return { credential: match, issuer, subject };
}

/**
 * The JWS signature over `header.payload`, with node:crypto's one-shot verify: the grant's hot path, where
 * WebCrypto's thread-pool round trip costs more than the RSA operation itself. `alg` is already allow-listed.
 */
function verifySignature(assertion: string, key: VerificationKey, alg: string): boolean {
  const dot = assertion.lastIndexOf('.');
  const input = Buffer.from(assertion.slice(0, dot), 'ascii');
  const signature = Buffer.from(assertion.slice(dot + 1), 'base64url');
  const keyObject = key instanceof KeyObject ? key : KeyObject.from(key);
  try {
    switch (alg) {
      case 'RS256':
        return keyObject.asymmetricKeyType === 'rsa' && verify('sha256', input, keyObject, signature);
      case 'PS256':
        return (
          keyObject.asymmetricKeyType === 'rsa' &&
          verify('sha256', input, { key: keyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature)
        );
      case 'ES256':
        return keyObject.asymmetricKeyType === 'ec' && verify('sha256', input, { key: keyObject, dsaEncoding: 'ieee-p1363' }, signature);
      default:
        return false;
    }
  } catch {
    return false;
  }
}
