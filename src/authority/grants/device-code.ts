import type { Grant, TokenRequest } from './grant.js';
import type { AuthorityContext } from '../context.js';
import { requireParam } from '../token/form.js';
import { delegatedScope } from '../token/user-scope.js';
import { publicClientOf } from './password.js';
import { issueUserTokens } from './user-tokens.js';
import { SignInErrors } from '../sign-in/errors.js';
import { codeHash } from '../sign-in/codes.js';

/** RFC 8628's grant type (MSAL Python). */
export const DEVICE_CODE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';

async function redeemDeviceCode(ctx: AuthorityContext, request: TokenRequest, deviceCode: string): ReturnType<Grant['handle']> {
  const clientId = publicClientOf(request);
  const record = deviceCode.length <= 256 ? await ctx.store.deviceCodes.getByDeviceCode(codeHash(deviceCode)) : undefined;
  if (record === undefined || record.clientId !== clientId.toLowerCase() || record.tenantId.toLowerCase() !== request.tenant.id.toLowerCase())
    throw SignInErrors.invalidDeviceCode();
  const now = ctx.clock.now();
  if (now >= record.expiresAt) throw SignInErrors.deviceCodeExpired();
  if (record.status === 'declined') throw SignInErrors.deviceCodeDeclined();
  if (record.status === 'redeemed') throw SignInErrors.codeRedeemed();
  // RFC 8628 §3.5: a device polling faster than its interval is told to slow down (and it adds 5 s).
  if (!(await ctx.store.deviceCodes.recordPoll(record.deviceCodeHash, now))) throw SignInErrors.slowDown(record.intervalSeconds);
  if (record.status === 'pending' || record.userId === null) throw SignInErrors.authorizationPending();

  const user = await ctx.store.users.getByObjectId(record.userId);
  if (user === undefined || !user.accountEnabled) throw SignInErrors.invalidDeviceCode();
  // The scope is the one the person approved, whatever the poll says.
  const scope = delegatedScope(request.endpoint === 'v1' ? { resource: record.scope } : { scope: record.scope }, request.endpoint);
  const result = await ctx.store.transaction(async (tx) => {
    if (!(await tx.deviceCodes.redeem(record.deviceCodeHash))) return undefined;
    return issueUserTokens(ctx, request, { user, clientId, scope, amr: ['pwd'], tx });
  });
  if (result === undefined) throw SignInErrors.codeRedeemed();
  return result;
}

/**
 * The device authorization grant (RFC 8628 §3.4): the device polls with its device code until the person
 * approved it on the verification page (`authorization_pending` until then, `slow_down` when polling faster
 * than the interval, `authorization_declined`, `expired_token`); the approved code is redeemed once.
 */
export const deviceCodeGrant: Grant = {
  grantType: DEVICE_CODE_GRANT_TYPE,
  handle: (ctx, request) => redeemDeviceCode(ctx, request, requireParam(request.params, 'device_code')),
};

/** The short spelling of the same grant: MSAL JS/Node send it with `device_code`, ADAL (v1) with `code`. */
export const adalDeviceCodeGrant: Grant = {
  grantType: 'device_code',
  handle: (ctx, request) => redeemDeviceCode(ctx, request, request.params['device_code'] ?? requireParam(request.params, 'code')),
};
