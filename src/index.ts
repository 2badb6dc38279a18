/**
 * openmsi's public library surface. Services that accept openmsi tokens import the verifier from here
 * (or from `openmsi/verifier`); everything else is reached through the `openmsi` command.
 *
 * @example
 * ```ts
 * import { createTokenVerifier, remoteJwks } from 'openmsi';
 * const verifier = createTokenVerifier({
 *   jwks: remoteJwks('https://localhost:8443/<tenant>/discovery/v2.0/keys'),
 *   issuers: ['https://localhost:8443/<tenant>/'],
 *   audiences: ['https://my-api.example'],
 * });
 * const { claims } = await verifier.verify(bearerToken);
 * ```
 */
export {
  createTokenVerifier,
  discoverJwks,
  localJwks,
  remoteJwks,
  TokenVerificationError,
  type AccessTokenClaims,
  type JwksSource,
  type RemoteJwksOptions,
  type TokenVerificationErrorCode,
  type TokenVerifier,
  type TokenVerifierOptions,
  type VerifiedToken,
} from './shared/token-verifier.js';
export { systemClock, FakeClock, type Clock } from './shared/clock.js';
