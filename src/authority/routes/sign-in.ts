import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthorityContext } from '../context.js';
import { OAuthError, oauthErrorHandler, toOAuthError } from '../../shared/oauth-error.js';
import { TOKEN_BODY_LIMIT, acceptFormsOnly, requireParam, type FormParams } from '../token/form.js';
import { delegatedScope } from '../token/user-scope.js';
import { resolveTenant } from './tenant.js';
import { RefusalAudit } from '../refusal-audit.js';
import { PUBLIC_CLIENTS, isPublicClient } from '../public-clients.js';
import { authenticatePassword } from '../grants/password.js';
import { newGuid } from '../../shared/ids.js';
import type { Tenant, User } from '../../store/types.js';
import { SignInErrors } from '../sign-in/errors.js';
import { isRegisteredRedirectUri } from '../sign-in/redirect-uri.js';
import { issueTicket, openTicket } from '../sign-in/csrf.js';
import { deviceLoginPage, messagePage, pageHeaders, signInPage } from '../sign-in/page.js';
import {
  AUTHORIZATION_CODE_LIFETIME_MS,
  DEVICE_CODE_INTERVAL_SECONDS,
  DEVICE_CODE_LIFETIME_MS,
  DEVICE_CODES_PER_SOURCE,
  DEVICE_CODE_WINDOW_MS,
  codeHash,
  newSecretCode,
  newUserCode,
  normaliseUserCode,
} from '../sign-in/codes.js';

/** What the authorize request asked for, sealed in the sign-in form's ticket until the person signs in. */
interface PendingAuthorization {
  tenantId: string;
  clientId: string;
  redirectUri: string;
  state?: string | undefined;
  nonce?: string | undefined;
  codeChallenge: string;
  codeChallengeMethod: 'S256' | 'plain';
  loginHint?: string | undefined;
}

/** RFC 7636 §4.2: the challenge (S256's base64url SHA-256, or a plain verifier) is 43 to 128 unreserved characters. */
const CHALLENGE = /^[A-Za-z0-9\-._~]{43,128}$/;
const MAX_PARAM = 2048;

interface HtmlConfig {
  html?: boolean;
}

/**
 * The interactive sign-in flows at the authority (issue 20): the authorization endpoint
 * (`/{tenant}/oauth2/v2.0/authorize`, v1 `/{tenant}/oauth2/authorize`) serving a sign-in page and redirecting
 * to the client's registered redirect URI with a single-use PKCE-bound code; the device authorization endpoint
 * (`/{tenant}/oauth2/v2.0/devicecode`, v1 `/{tenant}/oauth2/devicecode`) and its verification page
 * `/devicelogin`. The codes are redeemed at the token endpoint (grants/authorization-code.ts,
 * grants/device-code.ts). Pages carry no script, refuse framing, and accept a post only from themselves
 * (sign-in/csrf.ts).
 */
export function signInRoutes(app: FastifyInstance, opts: { ctx: AuthorityContext }): Promise<void> {
  const { ctx } = opts;
  const refusals = new RefusalAudit({
    record: (event) => ctx.audit.record(event),
    clock: ctx.clock,
    onError: (err: unknown) => ctx.logger.warn({ err: { message: (err as Error).message } }, 'refusal audit write failed'),
  });
  refusals.start();
  app.addHook('onClose', async () => {
    await refusals.close();
  });

  acceptFormsOnly(app);

  const jsonErrors = oauthErrorHandler({
    clock: ctx.clock,
    bodyLimit: TOKEN_BODY_LIMIT,
    headers: { 'cache-control': 'no-store, no-cache', pragma: 'no-cache' },
    logMessage: 'sign-in request failed',
    onError: (request, error) => {
      refusals.count({ source: request.ip, reason: `${error.error}/${String(error.aadsts)}` });
      return Promise.resolve();
    },
  });
  // The pages show their errors as pages (never redirecting to an unverified URI); the device endpoint answers JSON.
  app.setErrorHandler(async (err, request, reply) => {
    if ((request.routeOptions.config as HtmlConfig).html !== true) return jsonErrors(err, request, reply);
    const error = toOAuthError(err, { bodyLimit: TOKEN_BODY_LIMIT });
    if (error.status >= 500) ctx.logger.error({ err: { message: (err as Error).message } }, 'sign-in page failed');
    refusals.count({ source: request.ip, reason: `${error.error}/${String(error.aadsts)}` });
    return reply
      .code(error.status)
      .headers({ ...pageHeaders(), ...error.headers })
      .send(messagePage('Sign in failed', error.description));
  });

  /** The origin this request came to: a page's own posts carry it as `Origin`. */
  const pageOrigin = (request: FastifyRequest) => `${request.protocol}://${request.headers.host ?? ''}`;
  /** The origin to advertise (the device-login URL): the name the client used when it is one of ours. */
  const ownOrigin = (request: FastifyRequest) => ctx.urls.forHost(request.headers.host).origin;
  const html = { config: { html: true } satisfies HtmlConfig };

  // --- authorization code ---------------------------------------------------------------------------------

  const authorizeGet = async (request: FastifyRequest<{ Params: { tenant: string }; Querystring: unknown }>, reply: FastifyReply) => {
    const query = queryOf(request.query);
    const tenant = await resolveTenant(ctx, request.params.tenant, { forGrant: true });
    const clientId = requireParam(query, 'client_id');
    if (!isPublicClient(clientId)) throw SignInErrors.unknownClient(clientId);
    const redirectUri = requireParam(query, 'redirect_uri');
    if (!isRegisteredRedirectUri(clientId, redirectUri)) throw SignInErrors.redirectUriMismatch(redirectUri, clientId);
    // From here on the redirect URI is the client's own: errors go back to it, as Entra sends them.
    const state = query['state'];
    try {
      const responseType = requireParam(query, 'response_type');
      if (responseType !== 'code') throw SignInErrors.unsupportedResponseType(responseType);
      const mode = query['response_mode'];
      if (mode !== undefined && mode !== 'query') throw SignInErrors.unsupportedResponseMode(mode);
      const challenge = query['code_challenge'];
      if (challenge === undefined) throw SignInErrors.pkceRequired();
      const method = query['code_challenge_method'] ?? 'plain';
      if (method !== 'S256' && method !== 'plain') throw SignInErrors.badChallengeMethod(method);
      if (!CHALLENGE.test(challenge)) throw SignInErrors.badChallenge();
      const pending: PendingAuthorization = {
        tenantId: tenant.id,
        clientId: clientId.toLowerCase(),
        redirectUri,
        state,
        nonce: query['nonce'],
        codeChallenge: challenge,
        codeChallengeMethod: method,
        loginHint: query['login_hint'],
      };
      return sendSignInPage(request, reply, pending, 200);
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      refusals.count({ source: request.ip, reason: `${err.error}/${String(err.aadsts)}` });
      return reply.redirect(withParams(redirectUri, { error: err.error, error_description: err.description, ...(state === undefined ? {} : { state }) }), 302);
    }
  };

  const sendSignInPage = (request: FastifyRequest, reply: FastifyReply, pending: PendingAuthorization, status: number, error?: string) => {
    const hidden = issueTicket(ctx.masterKey, request, reply, 'authorize', pending, ctx.clock.now());
    return reply
      .code(status)
      .headers(pageHeaders([new URL(pending.redirectUri).origin]))
      .send(
        signInPage({
          action: request.url.split('?')[0] ?? '',
          appName: PUBLIC_CLIENTS.get(pending.clientId)?.displayName ?? pending.clientId,
          hidden,
          loginHint: pending.loginHint,
          error,
        }),
      );
  };

  const authorizePost = async (request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply) => {
    const form = formOf(request);
    const pending = openTicket<PendingAuthorization>(ctx.masterKey, request, form, 'authorize', ctx.clock.now(), pageOrigin(request));
    const tenant = await resolveTenant(ctx, pending.tenantId, { forGrant: true });
    const user = await signIn(request, tenant, form, 'authorization_code');
    if (!(user instanceof OAuthError)) {
      const code = newSecretCode();
      const now = ctx.clock.now();
      await ctx.store.authorizationCodes.create({
        codeHash: codeHash(code),
        tenantId: tenant.id,
        clientId: pending.clientId,
        redirectUri: pending.redirectUri,
        codeChallenge: pending.codeChallenge,
        codeChallengeMethod: pending.codeChallengeMethod,
        userId: user.objectId,
        nonce: pending.nonce ?? null,
        familyId: newGuid(),
        createdAt: now,
        expiresAt: now + AUTHORIZATION_CODE_LIFETIME_MS,
        usedAt: null,
      });
      await auditSignIn(tenant, user, pending.clientId, 'authorization_code', request.ip);
      const params: Record<string, string> = { code };
      if (pending.state !== undefined) params['state'] = pending.state;
      return reply.headers({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }).redirect(withParams(pending.redirectUri, params), 302);
    }
    return sendSignInPage(request, reply, { ...pending, loginHint: form['username'] }, user.status, user.description);
  };

  /** The user the form's name and password sign in, or the refusal to show on the page. */
  const signIn = async (request: FastifyRequest, tenant: Tenant, form: FormParams, flow: string): Promise<User | OAuthError> => {
    try {
      return await authenticatePassword(ctx, { tenant, source: request.ip }, requireParam(form, 'username'), requireParam(form, 'password'), flow);
    } catch (err) {
      if (err instanceof OAuthError && err.status < 500) return err;
      throw err;
    }
  };

  const auditSignIn = async (tenant: Tenant, user: User, clientId: string, flow: string, source: string) => {
    await ctx.audit.record({
      tenantId: tenant.id,
      actor: user.objectId,
      action: 'user.signedIn',
      target: clientId,
      outcome: 'success',
      detail: { flow, source, userPrincipalName: user.userPrincipalName },
    });
  };

  for (const path of ['/:tenant/oauth2/v2.0/authorize', '/:tenant/oauth2/authorize']) {
    app.get(path, html, authorizeGet);
    app.post(path, { ...html, bodyLimit: TOKEN_BODY_LIMIT }, authorizePost);
  }

  // --- device code ----------------------------------------------------------------------------------------

  const deviceCode = (endpoint: 'v1' | 'v2') => async (request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply) => {
    const form = formOf(request);
    const tenant = await resolveTenant(ctx, request.params.tenant, { forGrant: true });
    const clientId = requireParam(form, 'client_id');
    if (!isPublicClient(clientId)) throw SignInErrors.unknownClient(clientId);
    const scope = delegatedScope(form, endpoint);
    const requested = endpoint === 'v1' ? scope.resource : (form['scope'] ?? '').trim();
    const now = ctx.clock.now();
    if ((await ctx.store.deviceCodes.countFromSource(request.ip, now - DEVICE_CODE_WINDOW_MS)) >= DEVICE_CODES_PER_SOURCE)
      throw SignInErrors.deviceCodeRateLimited(Math.ceil(DEVICE_CODE_WINDOW_MS / 1000));
    const deviceCode = newSecretCode();
    const userCode = newUserCode();
    await ctx.store.deviceCodes.create({
      deviceCodeHash: codeHash(deviceCode),
      userCode,
      tenantId: tenant.id,
      clientId: clientId.toLowerCase(),
      scope: requested,
      source: request.ip,
      status: 'pending',
      userId: null,
      intervalSeconds: DEVICE_CODE_INTERVAL_SECONDS,
      lastPollAt: null,
      createdAt: now,
      expiresAt: now + DEVICE_CODE_LIFETIME_MS,
    });
    const verification = `${ownOrigin(request)}/devicelogin`;
    const message = `To sign in, use a web browser to open the page ${verification} and enter the code ${userCode} to authenticate.`;
    const expires = DEVICE_CODE_LIFETIME_MS / 1000;
    const body =
      endpoint === 'v1'
        ? {
            user_code: userCode,
            device_code: deviceCode,
            verification_url: verification,
            expires_in: String(expires),
            interval: String(DEVICE_CODE_INTERVAL_SECONDS),
            message,
          }
        : {
            user_code: userCode,
            device_code: deviceCode,
            verification_uri: verification,
            expires_in: expires,
            interval: DEVICE_CODE_INTERVAL_SECONDS,
            message,
          };
    return reply.code(200).headers({ 'cache-control': 'no-store, no-cache', pragma: 'no-cache' }).send(body);
  };
  app.post('/:tenant/oauth2/v2.0/devicecode', { bodyLimit: TOKEN_BODY_LIMIT }, deviceCode('v2'));
  app.post('/:tenant/oauth2/devicecode', { bodyLimit: TOKEN_BODY_LIMIT }, deviceCode('v1'));

  const sendDevicePage = (request: FastifyRequest, reply: FastifyReply, status: number, userCode?: string, error?: string) => {
    const hidden = issueTicket(ctx.masterKey, request, reply, 'devicelogin', {}, ctx.clock.now());
    return reply
      .code(status)
      .headers(pageHeaders())
      .send(deviceLoginPage({ action: '/devicelogin', hidden, userCode, error }));
  };

  app.get('/devicelogin', html, (request, reply) => sendDevicePage(request, reply, 200));

  app.post('/devicelogin', { ...html, bodyLimit: TOKEN_BODY_LIMIT }, async (request, reply) => {
    const form = formOf(request);
    openTicket(ctx.masterKey, request, form, 'devicelogin', ctx.clock.now(), pageOrigin(request));
    const typed = form['user_code'] ?? '';
    // Wrong codes count as failed authentications of the source: guessing codes locks the guesser out.
    await ctx.authThrottle.refresh({ source: request.ip });
    ctx.authThrottle.check({ source: request.ip });
    const userCode = normaliseUserCode(typed);
    const record = userCode === undefined ? undefined : await ctx.store.deviceCodes.getByUserCode(userCode);
    const now = ctx.clock.now();
    if (record === undefined || record.status !== 'pending' || now >= record.expiresAt) {
      await ctx.authThrottle.failed({ source: request.ip });
      const error = record !== undefined && now >= record.expiresAt ? SignInErrors.deviceCodeExpired() : SignInErrors.badUserCode();
      return sendDevicePage(request, reply, 400, typed.slice(0, 32), error.description);
    }
    const appName = PUBLIC_CLIENTS.get(record.clientId)?.displayName ?? record.clientId;
    if (form['decision'] === 'decline') {
      await ctx.store.deviceCodes.decide(record.userCode, { status: 'declined' }, now);
      return reply
        .code(200)
        .headers(pageHeaders())
        .send(messagePage('Sign-in declined', `You declined to sign in to ${appName} on your device.`));
    }
    const tenant = await resolveTenant(ctx, record.tenantId, { forGrant: true });
    const user = await signIn(request, tenant, form, 'device_code');
    if (user instanceof OAuthError) return sendDevicePage(request, reply, user.status, record.userCode, user.description);
    if (!(await ctx.store.deviceCodes.decide(record.userCode, { status: 'approved', userId: user.objectId }, ctx.clock.now())))
      return sendDevicePage(request, reply, 400, record.userCode, SignInErrors.badUserCode().description);
    await auditSignIn(tenant, user, record.clientId, 'device_code', request.ip);
    return reply
      .code(200)
      .headers(pageHeaders())
      .send(messagePage('Signed in', `You have signed in to the ${appName} application on your device. You may now close this window.`));
  });
  return Promise.resolve();
}

/** The query as single strings: a parameter sent twice is refused, as the token endpoint refuses it. */
function queryOf(query: unknown): FormParams {
  const out: Record<string, string> = {};
  if (query === null || typeof query !== 'object') return out;
  for (const [name, value] of Object.entries(query as Record<string, unknown>)) {
    if (typeof value !== 'string') throw SignInErrors.duplicateParameter(name);
    if (value.length > MAX_PARAM) throw SignInErrors.parameterTooLong(name);
    out[name] = value;
  }
  return out;
}

function formOf(request: FastifyRequest): FormParams {
  const body = request.body;
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) throw SignInErrors.signInExpired();
  return body as FormParams;
}

function withParams(uri: string, params: Readonly<Record<string, string>>): string {
  const url = new URL(uri);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.toString();
}
