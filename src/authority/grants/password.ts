import type { Grant, TokenRequest } from './grant.js';
import type { AuthorityContext } from '../context.js';
import { OAuthError } from '../../shared/oauth-error.js';
import { TokenErrors } from '../errors.js';
import { requireParam } from '../token/form.js';
import { sourceKey, type ThrottleSubject } from '../token/throttle.js';
import { delegatedScope } from '../token/user-scope.js';
import { isPublicClient } from '../public-clients.js';
import { dummyPasswordHash, verifyPassword } from '../../directory/passwords.js';
import { issueUserTokens } from './user-tokens.js';
import type { User } from '../../store/types.js';

/** The public client a user-grant request names: a pre-registered one, else Entra's 400. */
export function publicClientOf(request: TokenRequest): string {
  const clientId = requireParam(request.params, 'client_id');
  if (!isPublicClient(clientId)) throw TokenErrors.notPublicClient(clientId);
  return clientId;
}

/** Password checks in flight, per authority (tests run several in one process) and key. */
const checks = new WeakMap<AuthorityContext, Map<string, Promise<unknown>>>();

/** Runs `fn` after every earlier call with the same key has settled: one password check at a time per (user, source). */
async function oneAtATime<T>(ctx: AuthorityContext, key: string, fn: () => Promise<T>): Promise<T> {
  let inFlight = checks.get(ctx);
  if (inFlight === undefined) checks.set(ctx, (inFlight = new Map<string, Promise<unknown>>()));
  const previous = inFlight.get(key) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  const settled = run.then(
    () => undefined,
    () => undefined,
  );
  inFlight.set(key, settled);
  try {
    return await run;
  } finally {
    if (inFlight.get(key) === settled) inFlight.delete(key);
  }
}

/** The client throttle's lock, as Entra answers a locked account. */
function checkLock(ctx: AuthorityContext, subject: ThrottleSubject): void {
  try {
    ctx.authThrottle.check(subject);
  } catch (err) {
    if (err instanceof OAuthError && err.aadsts === 50053) throw TokenErrors.userLocked(Number(err.headers['retry-after'] ?? '60'));
    throw err;
  }
}

/**
 * The resource-owner password grant (RFC 6749 §4.3), what `az login -u -p` and MSAL's
 * `acquire_token_by_username_password` send, for public clients. Wrong passwords count per (user, source)
 * and per source in the client throttle's windows (throttle.ts): ten in a minute lock the user for that
 * source until the window ends, so an attacker elsewhere cannot lock the user out where the user signs in,
 * and a lock never outlives its window. An unknown name is answered exactly like a wrong password, after as
 * long a check.
 */
export const passwordGrant: Grant = {
  grantType: 'password',
  async handle(ctx, request) {
    const clientId = publicClientOf(request);
    const username = requireParam(request.params, 'username');
    const password = requireParam(request.params, 'password');
    const scope = delegatedScope(request.params, request.endpoint);
    const user = await authenticatePassword(ctx, request, username, password, 'password');
    return issueUserTokens(ctx, request, { user, clientId, scope, amr: ['pwd'] });
  },
};

/**
 * Checks a user's password for a sign-in at `request`'s tenant from `request.source`, with the per-(user,
 * source) lockout: the user, or Entra's refusal (50126 wrong name or password, 50053 locked, 50057 disabled,
 * 50055 password expired). Wrong passwords and locks are audited under `grantType` (the sign-in page's
 * flows share this with the password grant).
 */
export async function authenticatePassword(
  ctx: AuthorityContext,
  request: Pick<TokenRequest, 'tenant' | 'source'>,
  username: string,
  password: string,
  grantType: string,
): Promise<User> {
  const { source, tenant } = request;
  await ctx.authThrottle.refresh({ source });
  checkLock(ctx, { source });

  const found = username.length <= 256 ? await ctx.store.users.getByUserPrincipalName(username) : undefined;
  const user = found?.tenantId.toLowerCase() === tenant.id.toLowerCase() ? found : undefined;
  const subject: ThrottleSubject = user === undefined ? { source } : { source, client: `user:${user.objectId}@${sourceKey(source)}` };
  const verified = await oneAtATime(ctx, subject.client ?? `source:${sourceKey(source)}`, async () => {
    await ctx.authThrottle.refresh(subject);
    checkLock(ctx, subject);
    const ok = await verifyPassword(password, user?.passwordHash ?? (await dummyPasswordHash()));
    if (ok && user !== undefined) return true;
    await ctx.authThrottle.failed(subject);
    return false;
  });
  if (!verified || user === undefined) {
    if (user !== undefined) await auditFailure(ctx, request, user.objectId, subject, grantType);
    throw TokenErrors.invalidUserCredentials();
  }
  if (!user.accountEnabled) throw TokenErrors.userDisabled();
  if (user.forceChangePasswordNextSignIn) throw TokenErrors.passwordExpired();
  return user;
}

/** A wrong password for a known user: one audit row, and a second when it locked the user for this source. */
async function auditFailure(
  ctx: AuthorityContext,
  request: Pick<TokenRequest, 'tenant' | 'source'>,
  userId: string,
  subject: ThrottleSubject,
  grantType: string,
): Promise<void> {
  let locked = false;
  try {
    ctx.authThrottle.check(subject);
  } catch {
    locked = true;
  }
  const base = { tenantId: request.tenant.id, actor: userId, target: userId, outcome: 'failure' as const };
  try {
    await ctx.audit.record({
      ...base,
      action: 'user.signInFailed',
      detail: { reason: 'invalid_password', aadsts: 50126, source: request.source, grantType },
    });
    if (locked) await ctx.audit.record({ ...base, action: 'user.locked', detail: { aadsts: 50053, source: request.source } });
  } catch {
    // The refusal goes out whatever the audit store does.
  }
}
