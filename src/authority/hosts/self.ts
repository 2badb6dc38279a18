import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { describeHost, HostErrors } from '../../directory/hosts.js';
import { HOST_API_PATHS, HOST_SELF_LONG_POLL, type HostDescription } from '../../shared/host-protocol.js';
import { armKey } from '../../shared/ids.js';
import { hostChangeKey } from '../../store/types.js';
import { authenticateHost, reauthenticateHost } from './authenticate.js';
import type { HostApiContext } from './common.js';

const VERSION = /^[A-Za-z0-9_-]{1,64}$/;
const WAIT = /^\d{1,6}$/;

/** The description's version: a digest of its JSON (the server builds it in a fixed member order). */
export function descriptionVersion(description: HostDescription): string {
  return createHash('sha256').update(JSON.stringify(description)).digest('base64url').slice(0, 22);
}

/** What a description depends on, as {@link hostChangeKey}s: the host, its credential, each identity and its resource. */
export function descriptionDependencies(description: HostDescription): string[] {
  const keys = [hostChangeKey.resource(armKey(description.hostResourceId)), hostChangeKey.credential(description.credential.keyId)];
  for (const identity of description.identities) {
    keys.push(hostChangeKey.identity(identity.objectId));
    if (identity.type === 'UserAssigned') keys.push(hostChangeKey.resource(armKey(identity.resourceId)));
  }
  return keys;
}

/** `since` and `wait` of the long poll, or `400 InvalidRequest`. No `since`: an ordinary read. */
function longPoll(request: FastifyRequest): { since: string | undefined; waitMs: number } {
  const query = request.query as Record<string, unknown>;
  const since = query[HOST_SELF_LONG_POLL.since];
  const wait = query[HOST_SELF_LONG_POLL.wait];
  if (since !== undefined && (typeof since !== 'string' || !VERSION.test(since))) throw HostErrors.invalidRequest(`'since' must be a version 'self' answered`);
  if (wait !== undefined && (typeof wait !== 'string' || !WAIT.test(wait))) throw HostErrors.invalidRequest(`'wait' must be a whole number of seconds`);
  const seconds = wait === undefined ? 0 : Math.min(Number(wait), HOST_SELF_LONG_POLL.maxWaitSeconds);
  return { since, waitMs: since === undefined ? 0 : seconds * 1000 };
}

/**
 * `GET /openmsi/hosts/self` (host assertion) → 200 `HostDescription` with its `version`: the host and its
 * identities, read now. With `?since={version}&wait={seconds}` (a long poll), the answer waits while the
 * description is still `since`: it is read again on each change notice that concerns it (from any replica)
 * and sent once it differs, or when `wait` (at most 30 s) runs out. A credential revoked or a host deleted
 * while it waits is refused (`401 HostNotRecognised`) at once.
 */
export function selfRoute(app: FastifyInstance, { ctx, hostChanges }: HostApiContext): void {
  app.route({
    method: 'GET',
    url: HOST_API_PATHS.self,
    handler: async (request, reply) => {
      const { since, waitMs } = longPoll(request);
      let caller = await authenticateHost(ctx, request);
      const deadline = performance.now() + waitMs;
      // A caller that hangs up ends the wait (the socket closes; the request object does not say so).
      const hangUp = new AbortController();
      const socket = request.raw.socket;
      const onClose = () => hangUp.abort();
      socket.once('close', onClose);
      try {
        for (let first = true; ; first = false) {
          // Taken before the reads: a notice arriving while they run makes the wait below return at once.
          const sequence = hostChanges.sequence;
          if (!first) caller = await reauthenticateHost(ctx, caller);
          const description = await describeHost(ctx.store, caller.host, caller.credential);
          const version = descriptionVersion(description);
          const remaining = deadline - performance.now();
          if (since === undefined || version !== since || remaining <= 0 || hangUp.signal.aborted || hostChanges.closed) {
            return reply.header('cache-control', 'no-store').send({ ...description, version });
          }
          // Woken or timed out, the loop reads again: the answer at the deadline is the description then.
          await hostChanges.wait(descriptionDependencies(description), sequence, remaining, hangUp.signal);
        }
      } finally {
        socket.off('close', onClose);
      }
    },
  });
}
