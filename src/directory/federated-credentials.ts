/**
 * Federated identity credentials (workload identity federation, inbound): Entra's rules for the object, for
 * both owners that may hold one, a user-assigned identity (ARM) and an application (Graph). The token
 * endpoint's side is src/authority/federation/.
 */
import type { Clock } from '../shared/clock.js';
import { newGuid } from '../shared/ids.js';
import type { ClaimsMatchingExpression, FederatedCredential, Repositories, ServicePrincipal, Store } from '../store/types.js';
import { ClaimsExpressionError, parseClaimsExpression } from './claims-expression.js';
import { DirectoryErrors } from './errors.js';
import { atomically } from './principals.js';

/** Entra's limit per application or user-assigned identity. */
export const MAX_FEDERATED_CREDENTIALS = 20;
/** The audience Entra recommends, and the default of `az` and of the CLI. */
export const TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{2,119}$/;
const MAX_VALUE = 600;
/** Entra's own issuers: its tokens may not be used for federation (AADSTS700222). */
const ENTRA_HOSTS = ['login.microsoftonline.com', 'login.windows.net', 'login.microsoft.com', 'sts.windows.net'];

export type Family = 'arm' | 'graph';

/** Whether `issuer` is one of Entra's own (its host or a subdomain of one). */
export function isEntraIssuer(issuer: string): boolean {
  let host: string;
  try {
    host = new URL(issuer).hostname.toLowerCase();
  } catch {
    return false;
  }
  return ENTRA_HOSTS.some((entra) => host === entra || host.endsWith(`.${entra}`));
}

/** The fields a caller sets, validated. */
export interface FederatedCredentialFields {
  issuer: string;
  subject: string | null;
  claimsMatchingExpression: ClaimsMatchingExpression | null;
  audiences: string[];
  description: string | null;
}

export function validateFederatedCredentialName(name: unknown, family: Family): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw DirectoryErrors.invalidFederatedCredential(
      family,
      `The federated identity credential name '${String(name).slice(0, 130)}' is invalid: it must have 3 to 120 characters, letters, digits, '-' and '_', and start with a letter or digit.`,
    );
  }
  return name;
}

function boundedString(value: unknown, name: string, family: Family): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_VALUE) {
    throw DirectoryErrors.invalidFederatedCredential(family, `'${name}' must be a string of 1 to ${String(MAX_VALUE)} characters.`);
  }
  return value;
}

/**
 * Validates the settable fields, in Entra's words: an absolute `https://` issuer that is not Entra's, exactly
 * one audience, a subject or (applications only) a `claimsMatchingExpression` but not both.
 */
export function validateFederatedCredentialFields(body: Record<string, unknown>, family: Family, options: { flexible: boolean }): FederatedCredentialFields {
  const issuer = boundedString(body['issuer'], 'issuer', family);
  let url: URL | undefined;
  try {
    url = new URL(issuer);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'https:' || issuer.trim() !== issuer) {
    throw DirectoryErrors.invalidFederatedCredential(
      family,
      `The issuer '${issuer.slice(0, 600)}' must be an absolute https:// URL without surrounding whitespace.`,
    );
  }
  if (isEntraIssuer(issuer)) {
    throw DirectoryErrors.invalidFederatedCredential(
      family,
      'AAD-issued tokens may not be used for federated identity flows: the issuer must not be Microsoft Entra ID.',
    );
  }
  const audiences = body['audiences'];
  if (!Array.isArray(audiences) || audiences.length !== 1) {
    throw DirectoryErrors.invalidFederatedCredential(family, 'Federated identity credentials must have exactly one audience.');
  }
  const audience = boundedString(audiences[0], 'audiences', family);
  const rawSubject = body['subject'];
  const rawExpression = body['claimsMatchingExpression'];
  const hasSubject = rawSubject !== undefined && rawSubject !== null && rawSubject !== '';
  const hasExpression = rawExpression !== undefined && rawExpression !== null;
  if (hasExpression && !options.flexible) {
    throw DirectoryErrors.invalidFederatedCredential(family, "'claimsMatchingExpression' is supported on applications only.");
  }
  if (hasSubject === hasExpression) {
    throw DirectoryErrors.invalidFederatedCredential(family, "A federated identity credential needs exactly one of 'subject' and 'claimsMatchingExpression'.");
  }
  const subject = hasSubject ? boundedString(rawSubject, 'subject', family) : null;
  const claimsMatchingExpression = hasExpression ? validateExpression(rawExpression, family) : null;
  const description = body['description'];
  if (description !== undefined && description !== null && (typeof description !== 'string' || description.length > MAX_VALUE)) {
    throw DirectoryErrors.invalidFederatedCredential(family, `'description' must be a string of at most ${String(MAX_VALUE)} characters.`);
  }
  return { issuer, subject, claimsMatchingExpression, audiences: [audience], description: typeof description === 'string' ? description : null };
}

function validateExpression(value: unknown, family: Family): ClaimsMatchingExpression {
  const expression = value as { value?: unknown; languageVersion?: unknown };
  if (typeof value !== 'object' || value === null || typeof expression.value !== 'string' || expression.languageVersion !== 1) {
    throw DirectoryErrors.invalidFederatedCredential(family, '\'claimsMatchingExpression\' must be {"value": "...", "languageVersion": 1}.');
  }
  try {
    parseClaimsExpression(expression.value);
  } catch (err) {
    if (err instanceof ClaimsExpressionError)
      throw DirectoryErrors.invalidFederatedCredential(family, `The claims matching expression is invalid: ${err.message}.`);
    throw err;
  }
  return { value: expression.value, languageVersion: 1 };
}

/** The principals that may hold federated credentials: applications and user-assigned identities. */
export function canFederate(principal: ServicePrincipal): boolean {
  return principal.kind === 'Application' || principal.managedIdentity?.type === 'UserAssigned';
}

/**
 * Creates or replaces the owner's credential `name`, in one transaction holding the owner's lock: at most
 * {@link MAX_FEDERATED_CREDENTIALS} per owner, and issuer + subject unique per owner.
 */
export async function putFederatedCredential(
  repos: Repositories | Store,
  input: { owner: ServicePrincipal; name: string; fields: FederatedCredentialFields; family: Family; clock: Clock; mustExist?: boolean },
): Promise<{ credential: FederatedCredential; created: boolean }> {
  const { owner, fields, family } = input;
  const name = validateFederatedCredentialName(input.name, family);
  return atomically(repos, async (tx) => {
    // Concurrent creates for one owner must not all pass the limit check before any inserts (PostgreSQL, READ COMMITTED).
    await tx.federatedCredentials.lockOwner(owner.objectId);
    const existing = await tx.federatedCredentials.list(owner.objectId);
    const current = existing.find((c) => c.name.toLowerCase() === name.toLowerCase());
    if (current === undefined && input.mustExist === true) throw DirectoryErrors.federatedCredentialNotFound(family, name);
    const others = existing.filter((c) => c !== current);
    if (current === undefined && others.length >= MAX_FEDERATED_CREDENTIALS) {
      throw DirectoryErrors.invalidFederatedCredential(
        family,
        `The limit of ${String(MAX_FEDERATED_CREDENTIALS)} federated identity credentials per application or identity is reached.`,
      );
    }
    if (fields.subject !== null && others.some((c) => c.issuer === fields.issuer && c.subject === fields.subject)) {
      throw DirectoryErrors.invalidFederatedCredential(family, 'Issuer and subject combination already exists for this application or identity.');
    }
    const now = input.clock.now();
    const credential: FederatedCredential = {
      id: current?.id ?? newGuid(),
      ownerId: owner.objectId.toLowerCase(),
      name: current?.name ?? name,
      ...fields,
      createdAt: current?.createdAt ?? now,
      updatedAt: now,
    };
    const outcome = await tx.federatedCredentials.put(credential);
    return { credential, created: outcome === 'created' };
  });
}
