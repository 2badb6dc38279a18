/**
 * The host API (`/openmsi/hosts/...`, the contract in src/shared/host-protocol.ts): what `openmsi agent`
 * calls to enrol, renew its credential, read its host and identities, and upload audit records. One file
 * per endpoint; errors in the API family with the contract's codes (errors.ts). Every enrolment, renewal
 * and refusal is audited, never with a join token secret or an assertion.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HostError } from '../../directory/hosts.js';
import { apiErrorHandler, type ApiError } from '../../shared/api-error.js';
import { ENROLMENT_FAILURE_LIMIT } from '../../shared/config.js';
import { HOST_API_PATHS } from '../../shared/host-protocol.js';
import type { AuthorityContext } from '../context.js';
import { RefusalAudit } from '../refusal-audit.js';
import { auditRoute } from './audit.js';
import { HOST_API_BODY_LIMIT, type HostApiContext } from './common.js';
import { enrolRoute } from './enrol.js';
import { federationAssertionRoute } from './federation-assertion.js';
import { translateHostFailure } from './errors.js';
import { EnrolmentThrottle } from './rate-limit.js';
import { HostChanges } from './changes.js';
import { renewRoute } from './renew.js';
import { selfRoute } from './self.js';

/** The host API as a fastify plugin: `app.register(hostRoutes, { ctx })`. */
export async function hostRoutes(app: FastifyInstance, opts: { ctx: AuthorityContext }): Promise<void> {
  const { ctx } = opts;
  const enrolmentFailures = new EnrolmentThrottle({
    store: ctx.store.enrolmentFailures,
    clock: ctx.clock,
    limit: { failures: ENROLMENT_FAILURE_LIMIT.failures, windowMs: ENROLMENT_FAILURE_LIMIT.windowSeconds * 1000 },
    onError: (err: unknown) => ctx.logger.warn({ err: { message: (err as Error).message } }, 'counting a failed enrolment in the store failed'),
  });
  // Refusals that name no known host (an unknown join token or key, a rate-limited address) are counted per
  // source and reason, not written one row each, so a flood cannot grow the audit store without bound.
  const onAuditError = (err: unknown) => ctx.logger.warn({ err: { message: (err as Error).message } }, 'host refusal audit write failed');
  const counted = {
    enrol: new RefusalAudit({ record: (e) => ctx.audit.record(e), clock: ctx.clock, action: 'host.enrolment.refused', onError: onAuditError }),
    request: new RefusalAudit({ record: (e) => ctx.audit.record(e), clock: ctx.clock, action: 'host.request.refused', onError: onAuditError }),
  };
  for (const refusals of Object.values(counted)) refusals.start();
  app.addHook('onClose', async () => {
    await Promise.all(Object.values(counted).map((r) => r.close()));
  });

  const isEnrol = (request: FastifyRequest) => request.routeOptions.url === HOST_API_PATHS.enrol;

  const onError = async (request: FastifyRequest, error: ApiError): Promise<void> => {
    if (error.status >= 500) return;
    if (isEnrol(request) && error.status !== 429) await enrolmentFailures.recordFailure(request.ip);
    const cause = error.cause;
    const subject = cause instanceof HostError ? cause.subject : undefined;
    if (subject === undefined) {
      (isEnrol(request) ? counted.enrol : counted.request).count({ source: request.ip, reason: error.code });
      return;
    }
    await ctx.audit
      .record({
        tenantId: subject.tenantId,
        actor: subject.hostResourceId,
        action: isEnrol(request) ? 'host.enrolment.refused' : 'host.request.refused',
        target: subject.hostResourceId,
        outcome: 'failure',
        detail: { code: error.code, path: request.routeOptions.url, source: request.ip },
      })
      .catch(onAuditError);
  };

  app.setErrorHandler(apiErrorHandler({ bodyLimit: HOST_API_BODY_LIMIT, translate: translateHostFailure, logMessage: 'host API request failed', onError }));
  // JSON only: a text/plain body is refused, not a string a handler has to reject.
  app.removeContentTypeParser('text/plain');
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-ms-request-id', request.id);
  });

  const hostChanges = new HostChanges(ctx.store.notifications);
  // Before the server waits for its open requests to end: waiting long polls answer now.
  app.addHook('preClose', async () => {
    hostChanges.close();
    return Promise.resolve();
  });
  // Long polls hear other replicas' changes only once LISTEN is up on the channels just subscribed.
  await ctx.store.notifications.ready();
  const deps: HostApiContext = { ctx, enrolmentFailures, hostChanges };
  enrolRoute(app, deps);
  renewRoute(app, deps);
  selfRoute(app, deps);
  auditRoute(app, deps);
  federationAssertionRoute(app, deps);
}
