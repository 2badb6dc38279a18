/**
 * The Graph-shaped directory API (`/v1.0/servicePrincipals...`): what `openmsi ad sp` (and az-like tools)
 * need to create application principals, manage their credentials and find any principal, managed
 * identities included.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { iso } from '../shared/clock.js';
import type { ClientCredential, ServicePrincipal } from '../store/types.js';
import type { ManagementContext } from './context.js';
import { addCertificateCredential, addPasswordCredential, removeCredential, resetCredentials } from '../directory/credentials.js';
import { createApplicationPrincipal, deleteApplicationPrincipal, findPrincipal, principalNames, validateDisplayName } from '../directory/principals.js';
import { DirectoryErrors } from '../directory/errors.js';
import { ManagementErrors } from './errors.js';
import { authenticate, callerOf, type Caller } from './authenticate.js';
import { authorizeGraph } from './authorize.js';
import { audited, jsonObject, params, route, singleQuery, type AuditedOutcome } from './common.js';

// ---------------------------------------------------------------------------------------------------
// Graph views
// ---------------------------------------------------------------------------------------------------

export interface GraphPasswordCredential {
  customKeyIdentifier: null;
  displayName: string;
  endDateTime: string;
  hint: string | null;
  keyId: string;
  secretText: null;
  startDateTime: string;
}

export interface GraphKeyCredential {
  customKeyIdentifier: string | null;
  displayName: string;
  endDateTime: string;
  key: null;
  keyId: string;
  startDateTime: string;
  type: 'AsymmetricX509Cert';
  usage: 'Verify';
}

export interface GraphServicePrincipal {
  id: string;
  appId: string;
  displayName: string;
  appDisplayName: string | null;
  servicePrincipalType: 'Application' | 'ManagedIdentity';
  appOwnerOrganizationId: string;
  appOwnerTenantId: string;
  servicePrincipalNames: string[];
  alternativeNames: string[];
  accountEnabled: true;
  createdDateTime: string;
  tags: string[];
  passwordCredentials: GraphPasswordCredential[];
  keyCredentials: GraphKeyCredential[];
}

/** Credential metadata in Graph's shape: never a secret, never the certificate bytes. */
export function graphCredentialViews(credentials: readonly ClientCredential[]): {
  passwordCredentials: GraphPasswordCredential[];
  keyCredentials: GraphKeyCredential[];
} {
  const passwordCredentials: GraphPasswordCredential[] = [];
  const keyCredentials: GraphKeyCredential[] = [];
  for (const c of credentials) {
    if (c.type === 'Password') {
      passwordCredentials.push({
        customKeyIdentifier: null,
        displayName: c.displayName,
        endDateTime: iso(c.endAt),
        hint: c.hint,
        keyId: c.keyId,
        secretText: null,
        startDateTime: iso(c.startAt),
      });
    } else {
      keyCredentials.push({
        customKeyIdentifier: c.thumbprintSha1 === null ? null : c.thumbprintSha1.toUpperCase(),
        displayName: c.displayName,
        endDateTime: iso(c.endAt),
        key: null,
        keyId: c.keyId,
        startDateTime: iso(c.startAt),
        type: 'AsymmetricX509Cert',
        usage: 'Verify',
      });
    }
  }
  return { passwordCredentials, keyCredentials };
}

/** A principal as Microsoft Graph shows a `servicePrincipal`. */
export function graphServicePrincipalView(sp: ServicePrincipal, credentials: readonly ClientCredential[] = []): GraphServicePrincipal {
  const mi = sp.managedIdentity;
  return {
    id: sp.objectId,
    appId: sp.appId,
    displayName: sp.displayName,
    appDisplayName: mi === null ? sp.displayName : null,
    servicePrincipalType: sp.kind,
    appOwnerOrganizationId: sp.tenantId,
    appOwnerTenantId: sp.tenantId,
    ...principalNames(sp),
    accountEnabled: true,
    createdDateTime: iso(sp.createdAt),
    tags: [],
    ...graphCredentialViews(credentials),
  };
}

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

const ODATA_CONTEXT = 'https://graph.microsoft.com/v1.0/$metadata#servicePrincipals';

/** The principal addressed by object id (or client id), in the caller's tenant; Graph's 404 otherwise. */
async function addressedPrincipal(ctx: ManagementContext, caller: Caller, id: string): Promise<ServicePrincipal> {
  const principal = await findPrincipal(ctx.store, id);
  if (principal === undefined || principal.tenantId.toLowerCase() !== caller.tenantId.toLowerCase()) throw DirectoryErrors.principalNotFound(id);
  return principal;
}

async function fullView(ctx: ManagementContext, principal: ServicePrincipal) {
  const credentials = principal.kind === 'Application' ? await ctx.store.credentials.listByApp(principal.appId) : [];
  return graphServicePrincipalView(principal, credentials);
}

/** `servicePrincipals(appId='...')` as one path segment; undefined for anything else. */
function alternateKey(segment: string): string | undefined {
  const m = /^servicePrincipals\(appId='([^']*)'\)$/i.exec(segment);
  return m?.[1];
}

function parseEndDateTime(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = typeof value === 'string' ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) throw ManagementErrors.invalidGraphProperty('endDateTime', 'an ISO-8601 date and time');
  return ms;
}

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw ManagementErrors.invalidGraphProperty(name, 'a string');
  return value;
}

function optionalBoolean(value: unknown, name: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw ManagementErrors.invalidGraphProperty(name, 'true or false');
  return value;
}

function optionalYears(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number') throw ManagementErrors.invalidGraphProperty('years', 'a number');
  return value;
}

function optionalObject(value: unknown, name: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw ManagementErrors.invalidGraphProperty(name, 'an object');
  return value as Record<string, unknown>;
}

export function principalRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  // Graph is not ARM RBAC in Azure (Entra roles): reads need a read right at `/`, changes Owner or User Access Administrator at `/`.
  const onRequest = [authenticate(ctx, 'graph'), authorizeGraph(ctx, 'servicePrincipals')];
  const actorOf = (caller: Caller) => caller.principal.objectId;

  route(app, {
    method: 'GET',
    url: '/v1.0/servicePrincipals',
    onRequest,
    handler: async (request) => {
      const caller = callerOf(request);
      const filter = singleQuery(request, '$filter', 'graph');
      const topText = singleQuery(request, '$top', 'graph');
      const top = topText === undefined ? undefined : Number(topText);
      if (top !== undefined && (!Number.isInteger(top) || top < 1 || top > 999)) {
        throw ManagementErrors.invalidPageSize(topText ?? '');
      }
      const predicate = filter === undefined ? () => true : parseServicePrincipalFilter(filter);
      const principals = await ctx.store.servicePrincipals.list({ tenantId: caller.tenantId });
      const matching = principals.filter(predicate);
      const page = top === undefined ? matching : matching.slice(0, top);
      return { '@odata.context': ODATA_CONTEXT, value: await Promise.all(page.map((p) => fullView(ctx, p))) };
    },
  });

  route(app, {
    method: 'POST',
    url: '/v1.0/servicePrincipals',
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const principal = await audited(
        ctx,
        { tenantId: caller.tenantId, actor: actorOf(caller), action: 'servicePrincipal.created', target: 'servicePrincipals' },
        async () => {
          const body = jsonObject(request.body);
          if (body['appId'] !== undefined) {
            throw ManagementErrors.appIdNotAccepted();
          }
          const displayName = validateDisplayName(body['displayName']);
          const created = await createApplicationPrincipal(ctx.store, { tenantId: caller.tenantId, displayName, clock: ctx.clock });
          return { result: created, target: created.appId, detail: { objectId: created.objectId, displayName: created.displayName } };
        },
      );
      return reply.code(201).send({ '@odata.context': `${ODATA_CONTEXT}/$entity`, ...graphServicePrincipalView(principal) });
    },
  });

  const getOne = async (request: FastifyRequest, id: string) => fullView(ctx, await addressedPrincipal(ctx, callerOf(request), id));

  const deleteOne = async (request: FastifyRequest, reply: FastifyReply, id: string) => {
    const caller = callerOf(request);
    await audited(ctx, { tenantId: caller.tenantId, actor: actorOf(caller), action: 'servicePrincipal.deleted', target: id }, async () => {
      const principal = await addressedPrincipal(ctx, caller, id);
      if (principal.objectId === caller.principal.objectId) {
        throw ManagementErrors.selfDeletion();
      }
      await deleteApplicationPrincipal(ctx.store, principal.objectId);
      return { result: undefined, target: principal.appId, detail: { objectId: principal.objectId, displayName: principal.displayName } };
    });
    return reply.code(204).send();
  };

  route(app, { method: 'GET', url: '/v1.0/servicePrincipals/:id', onRequest, handler: (request) => getOne(request, params(request)['id'] ?? '') });
  route(app, {
    method: 'DELETE',
    url: '/v1.0/servicePrincipals/:id',
    onRequest,
    handler: (request, reply) => deleteOne(request, reply, params(request)['id'] ?? ''),
  });

  // `/v1.0/me[/...]` is users.ts's (the signed-in user, or Graph's 400 to an app-only token).

  // `GET/DELETE /v1.0/servicePrincipals(appId='{appId}')`: Graph's alternate-key addressing.
  const altKey = (request: FastifyRequest): string => {
    const segment = params(request)['segment'] ?? '';
    const appId = alternateKey(segment);
    if (appId === undefined) throw ManagementErrors.unknownSegment(segment);
    return appId;
  };
  route(app, { method: 'GET', url: '/v1.0/:segment', onRequest, handler: (request) => getOne(request, altKey(request)) });
  route(app, { method: 'DELETE', url: '/v1.0/:segment', onRequest, handler: (request, reply) => deleteOne(request, reply, altKey(request)) });

  /** `POST /v1.0/servicePrincipals/{id}/{name}`: an action on one principal, audited against the id as sent. */
  const principalAction = <T>(
    name: string,
    action: string,
    status: 200 | 204,
    run: (request: FastifyRequest, caller: Caller, id: string) => Promise<AuditedOutcome<T>>,
  ): void =>
    route(app, {
      method: 'POST',
      url: `/v1.0/servicePrincipals/:id/${name}`,
      onRequest,
      handler: async (request, reply) => {
        const caller = callerOf(request);
        const id = params(request)['id'] ?? '';
        const result = await audited(ctx, { tenantId: caller.tenantId, actor: actorOf(caller), action, target: id }, () => run(request, caller, id));
        return status === 204 ? reply.code(204).send() : result;
      },
    });

  principalAction('addPassword', 'credential.added', 200, async (request, caller, id) => {
    const body = jsonObject(request.body, { optional: true });
    const input = optionalObject(body['passwordCredential'], 'passwordCredential');
    const principal = await addressedPrincipal(ctx, caller, id);
    const endAt = parseEndDateTime(input['endDateTime']);
    const displayName = optionalString(input['displayName'], 'displayName');
    const created = await addPasswordCredential(ctx.store, ctx.masterKey, {
      appId: principal.appId,
      ...(displayName === undefined ? {} : { displayName }),
      ...(endAt === undefined ? {} : { endAt }),
      clock: ctx.clock,
    });
    return {
      result: { customKeyIdentifier: null, ...created },
      target: principal.appId,
      // Never the secret, nor its hint.
      detail: { type: 'Password', keyId: created.keyId, endDateTime: created.endDateTime },
    };
  });

  principalAction('addKey', 'credential.added', 200, async (request, caller, id) => {
    const body = jsonObject(request.body);
    const keyCredential = optionalObject(body['keyCredential'], 'keyCredential');
    const type = keyCredential['type'];
    if (type !== undefined && type !== 'AsymmetricX509Cert') throw ManagementErrors.unsupportedKeyCredentialType();
    const usage = keyCredential['usage'];
    if (usage !== undefined && usage !== 'Verify') throw ManagementErrors.unsupportedKeyCredentialUsage();
    const key = keyCredential['key'];
    if (typeof key !== 'string') throw ManagementErrors.invalidGraphProperty('keyCredential.key', 'the certificate, base64 encoded');
    const principal = await addressedPrincipal(ctx, caller, id);
    const displayName = optionalString(keyCredential['displayName'], 'displayName');
    const created = await addCertificateCredential(ctx.store, {
      appId: principal.appId,
      certificatePem: key,
      ...(displayName === undefined ? {} : { displayName }),
      clock: ctx.clock,
    });
    return {
      result: {
        customKeyIdentifier: created.customKeyIdentifier,
        displayName: created.displayName,
        endDateTime: created.endDateTime,
        key: null,
        keyId: created.keyId,
        startDateTime: created.startDateTime,
        type: created.type,
        usage: created.usage,
      },
      target: principal.appId,
      detail: { type: 'AsymmetricX509Cert', keyId: created.keyId, thumbprint: created.customKeyIdentifier, endDateTime: created.endDateTime },
    };
  });

  for (const action of ['removePassword', 'removeKey'] as const) {
    principalAction(action, 'credential.removed', 204, async (request, caller, id) => {
      const body = jsonObject(request.body);
      const keyId = body['keyId'];
      if (typeof keyId !== 'string' || keyId === '') throw ManagementErrors.missingGraphProperty('keyId');
      const principal = await addressedPrincipal(ctx, caller, id);
      const removed = await removeCredential(ctx.store, {
        appId: principal.appId,
        keyId,
        type: action === 'removePassword' ? 'Password' : 'AsymmetricX509Cert',
      });
      if (!removed) throw ManagementErrors.credentialNotFound(action === 'removePassword' ? 'password' : 'key', keyId);
      return { result: undefined, target: principal.appId, detail: { keyId } };
    });
  }

  // openmsi extension: `az ad sp credential reset` in one transaction.
  principalAction('resetCredentials', 'credentials.reset', 200, async (request, caller, id) => {
    const body = jsonObject(request.body, { optional: true });
    const principal = await addressedPrincipal(ctx, caller, id);
    const append = optionalBoolean(body['append'], 'append');
    const years = optionalYears(body['years']);
    const displayName = optionalString(body['displayName'], 'displayName');
    const certificate = optionalString(body['certificate'], 'certificate');
    const endAt = parseEndDateTime(body['endDateTime']);
    const result = await resetCredentials(ctx.store, ctx.masterKey, {
      appId: principal.appId,
      ...(append === undefined ? {} : { append }),
      ...(years === undefined ? {} : { years }),
      ...(endAt === undefined ? {} : { endAt }),
      ...(displayName === undefined ? {} : { displayName }),
      ...(certificate === undefined ? {} : { certificatePem: certificate }),
      clock: ctx.clock,
    });
    const credential = result.password ?? result.certificate;
    return {
      result: {
        appId: principal.appId,
        objectId: principal.objectId,
        displayName: principal.displayName,
        tenant: principal.tenantId,
        password: result.password?.secretText ?? null,
        keyId: credential?.keyId ?? null,
        startDateTime: credential?.startDateTime ?? null,
        endDateTime: credential?.endDateTime ?? null,
        certificateThumbprint: result.certificate?.customKeyIdentifier ?? null,
        removedCredentials: result.removed,
      },
      target: principal.appId,
      detail: {
        type: result.password === null ? 'AsymmetricX509Cert' : 'Password',
        keyId: credential?.keyId ?? null,
        append: append ?? false,
        removedCredentials: result.removed,
      },
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// $filter
// ---------------------------------------------------------------------------------------------------

type Predicate = (sp: ServicePrincipal) => boolean;

const unsupported = ManagementErrors.unsupportedFilter;

/** Splits an OData `$filter` on ` and ` outside quotes and parentheses. */
export function splitAnd(filter: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < filter.length; i++) {
    const c = filter[i];
    if (c === "'") quoted = !quoted;
    else if (!quoted && c === '(') depth++;
    else if (!quoted && c === ')') depth--;
    else if (!quoted && depth === 0 && /^\s+and\s+/i.test(filter.slice(i))) {
      const m = /^\s+and\s+/i.exec(filter.slice(i));
      parts.push(filter.slice(start, i));
      i += (m?.[0].length ?? 1) - 1;
      start = i + 1;
    }
  }
  if (quoted || depth !== 0) throw unsupported('unbalanced quotes or parentheses');
  parts.push(filter.slice(start));
  return parts.map((p) => p.trim());
}

const STRING = "'((?:[^']|'')*)'";
const unquote = (s: string) => s.replace(/''/g, "'");
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

function clause(text: string): Predicate {
  let m = new RegExp(`^(displayName|appId|id|servicePrincipalType)\\s+eq\\s+${STRING}$`, 'i').exec(text);
  if (m) {
    const property = m[1]!.toLowerCase();
    const value = unquote(m[2]!);
    switch (property) {
      case 'displayname':
        return (sp) => same(sp.displayName, value);
      case 'appid':
        return (sp) => same(sp.appId, value);
      case 'id':
        return (sp) => same(sp.objectId, value);
      default:
        return (sp) => same(sp.kind, value);
    }
  }
  m = new RegExp(`^startswith\\(\\s*displayName\\s*,\\s*${STRING}\\s*\\)$`, 'i').exec(text);
  if (m) {
    const prefix = unquote(m[1]!).toLowerCase();
    return (sp) => sp.displayName.toLowerCase().startsWith(prefix);
  }
  m = new RegExp(`^(alternativeNames|servicePrincipalNames)/any\\(\\s*(\\w+)\\s*:\\s*(\\w+)\\s+eq\\s+${STRING}\\s*\\)$`, 'i').exec(text);
  if (m && m[2] === m[3]) {
    const collection = m[1]!.toLowerCase() === 'alternativenames' ? 'alternativeNames' : 'servicePrincipalNames';
    const value = unquote(m[4]!);
    return (sp) => principalNames(sp)[collection].some((name) => same(name, value));
  }
  throw unsupported(`'${text.slice(0, 200)}'`);
}

/** Parses the subset of OData `$filter` that az and the openmsi CLI send. */
export function parseServicePrincipalFilter(filter: string): Predicate {
  if (filter.length > 2048) throw unsupported('the filter is too long');
  const predicates = splitAnd(filter.trim()).map(clause);
  return (sp) => predicates.every((p) => p(sp));
}
