/**
 * Client credentials of application principals: generated secrets (stored only as a keyed hash, shown
 * once) and X.509 certificates (stored as DER with their thumbprints), with `az ad sp credential reset`
 * semantics.
 */
import { X509Certificate, randomInt } from 'node:crypto';
import { iso, type Clock } from '../shared/clock.js';
import { thumbprints } from '../pki/ca.js';
import { addYears, MAX_CREDENTIAL_YEARS } from '../pki/client-certificate.js';
import { newGuid } from '../shared/ids.js';
import type { MasterKey } from '../pki/master-key.js';
import type { ClientCredential, Repositories, ServicePrincipal, Store } from '../store/types.js';
import { DirectoryErrors } from './errors.js';
import { atomically, findPrincipal, hasControlCharacters } from './principals.js';

const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-';
/** Entra's secrets carry a version marker after the three-character hint. */
const SECRET_MARKER = '8Q~';
const HINT_LENGTH = 3;
/**
 * Random characters after the marker: 43 * log2(66) = 259.9 bits, so the secret keeps more than 256 bits
 * of entropy even after its (random) three-character hint is shown.
 */
const SECRET_TAIL_LENGTH = 43;
const MAX_CREDENTIAL_DISPLAY_NAME = 256;

/**
 * A new client secret shaped like Entra's (`abc8Q~...`): a random three-character hint, the marker and
 * 43 random characters from `[A-Za-z0-9_.~-]`, drawn without modulo bias.
 */
export function generateClientSecret(): string {
  let out = '';
  for (let i = 0; i < HINT_LENGTH; i++) out += SECRET_ALPHABET[randomInt(SECRET_ALPHABET.length)];
  out += SECRET_MARKER;
  for (let i = 0; i < SECRET_TAIL_LENGTH; i++) out += SECRET_ALPHABET[randomInt(SECRET_ALPHABET.length)];
  return out;
}

/** What `addPassword` returns: the only time the secret is ever shown. */
export interface PasswordCredentialResult {
  keyId: string;
  secretText: string;
  hint: string;
  displayName: string;
  startDateTime: string;
  endDateTime: string;
}

/** Certificate credential metadata (Graph's `keyCredential`, without the key bytes). */
export interface CertificateCredentialResult {
  keyId: string;
  displayName: string;
  type: 'AsymmetricX509Cert';
  usage: 'Verify';
  /** SHA-1 thumbprint, upper-case hex (what the portal and Graph's `customKeyIdentifier` show). */
  customKeyIdentifier: string;
  thumbprintSha256: string;
  startDateTime: string;
  endDateTime: string;
}

interface CredentialTiming {
  /** Validity in whole years from now (default 1), as `az ad sp credential reset --years`. */
  years?: number;
  /** Explicit end, epoch ms; overrides `years`. */
  endAt?: number;
}

export interface AddPasswordCredentialInput extends CredentialTiming {
  /** Client id of an application principal. */
  appId: string;
  displayName?: string;
  clock: Clock;
}

/** Adds a generated secret to an application. Stores `masterKey.hashSecret(secret)` only. */
export async function addPasswordCredential(
  repos: Repositories | Store,
  masterKey: MasterKey,
  input: AddPasswordCredentialInput,
): Promise<PasswordCredentialResult> {
  return withApplication(repos, input.appId, (tx, principal) => addPasswordTo(tx, masterKey, principal, input));
}

async function addPasswordTo(
  tx: Repositories,
  masterKey: MasterKey,
  principal: ServicePrincipal,
  input: Omit<AddPasswordCredentialInput, 'appId'>,
): Promise<PasswordCredentialResult> {
  const now = input.clock.now();
  const endAt = credentialEnd(now, input);
  const displayName = credentialDisplayName(input.displayName, 'rbac');
  const secretText = generateClientSecret();
  const hint = secretText.slice(0, HINT_LENGTH);
  const keyId = newGuid();
  await tx.credentials.add({
    keyId,
    appId: principal.appId,
    type: 'Password',
    displayName,
    hint,
    secretHash: masterKey.hashSecret(secretText),
    thumbprintSha1: null,
    thumbprintSha256: null,
    certificate: null,
    startAt: now,
    endAt,
    createdAt: now,
  });
  return { keyId, secretText, hint, displayName, startDateTime: iso(now), endDateTime: iso(endAt) };
}

export interface AddCertificateCredentialInput {
  appId: string;
  /** PEM, base64 DER, or base64 of PEM text. */
  certificatePem: string;
  displayName?: string;
  clock: Clock;
}

/** A parsed, checked client certificate. */
export interface ParsedClientCertificate {
  der: Buffer;
  thumbprintSha1: string;
  thumbprintSha256: string;
  notBefore: number;
  notAfter: number;
  subject: string;
}

/**
 * Parses a certificate given as PEM, as base64 DER, or as base64 of PEM text (Graph's `key`), and checks it
 * can authenticate a client: an RSA key (assertions are RS256/PS256) that has not expired.
 */
export function parseClientCertificate(input: unknown, clock: Clock): ParsedClientCertificate {
  if (typeof input !== 'string' || input.trim() === '') throw DirectoryErrors.invalidCertificate('no certificate was given');
  const der = certificateDer(input);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    throw DirectoryErrors.invalidCertificate('it is not an X.509 certificate (expected PEM or base64 DER)');
  }
  if (cert.publicKey.asymmetricKeyType !== 'rsa') {
    throw DirectoryErrors.invalidCertificate(
      `its key is ${cert.publicKey.asymmetricKeyType ?? 'of an unknown type'}; client certificates need an RSA key (assertions are signed with RS256 or PS256)`,
    );
  }
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  if (!Number.isFinite(notBefore) || !Number.isFinite(notAfter)) throw DirectoryErrors.invalidCertificate('its validity period could not be read');
  if (notAfter <= clock.now()) throw DirectoryErrors.invalidCertificate(`it expired on ${iso(notAfter)}`);
  const { sha1, sha256 } = thumbprints(der);
  return {
    der,
    thumbprintSha1: sha1.toString('hex'),
    thumbprintSha256: sha256.toString('hex'),
    notBefore,
    notAfter,
    subject: cert.subject,
  };
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/;

function certificateDer(input: string): Buffer {
  const pem = PEM_CERT.exec(input);
  if (pem) return Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64');
  const compact = input.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) {
    throw DirectoryErrors.invalidCertificate('it is not an X.509 certificate (expected PEM or base64 DER)');
  }
  const bytes = Buffer.from(compact, 'base64');
  // Graph's `key` is base64 of the certificate file, which may itself be PEM text.
  const inner = PEM_CERT.exec(bytes.toString('latin1'));
  return inner ? Buffer.from(inner[1]!.replace(/\s+/g, ''), 'base64') : bytes;
}

/** Registers a certificate on an application; its validity bounds the credential's. */
export async function addCertificateCredential(repos: Repositories | Store, input: AddCertificateCredentialInput): Promise<CertificateCredentialResult> {
  const parsed = parseClientCertificate(input.certificatePem, input.clock);
  return withApplication(repos, input.appId, (tx, principal) => addCertificateTo(tx, principal, parsed, input));
}

async function addCertificateTo(
  tx: Repositories,
  principal: ServicePrincipal,
  parsed: ParsedClientCertificate,
  input: { displayName?: string; clock: Clock },
): Promise<CertificateCredentialResult> {
  const existing = await tx.credentials.listByApp(principal.appId);
  if (existing.some((c) => c.thumbprintSha256 === parsed.thumbprintSha256)) {
    throw DirectoryErrors.badRequest(`The certificate with thumbprint ${parsed.thumbprintSha1.toUpperCase()} is already registered on this application.`);
  }
  const now = input.clock.now();
  const keyId = newGuid();
  const displayName = credentialDisplayName(input.displayName, parsed.subject.replace(/\n/g, ', ').slice(0, MAX_CREDENTIAL_DISPLAY_NAME));
  await tx.credentials.add({
    keyId,
    appId: principal.appId,
    type: 'AsymmetricX509Cert',
    displayName,
    hint: null,
    secretHash: null,
    thumbprintSha1: parsed.thumbprintSha1,
    thumbprintSha256: parsed.thumbprintSha256,
    certificate: parsed.der.toString('base64'),
    startAt: parsed.notBefore,
    endAt: parsed.notAfter,
    createdAt: now,
  });
  return {
    keyId,
    displayName,
    type: 'AsymmetricX509Cert',
    usage: 'Verify',
    customKeyIdentifier: parsed.thumbprintSha1.toUpperCase(),
    thumbprintSha256: parsed.thumbprintSha256,
    startDateTime: iso(parsed.notBefore),
    endDateTime: iso(parsed.notAfter),
  };
}

/** Removes one credential of an application; false when the application has no such credential. */
export async function removeCredential(
  repos: Repositories | Store,
  input: { appId: string; keyId: string; type?: ClientCredential['type'] },
): Promise<boolean> {
  return withApplication(repos, input.appId, async (tx, principal) => {
    const credentials = await tx.credentials.listByApp(principal.appId);
    const match = credentials.find((c) => c.keyId.toLowerCase() === input.keyId.toLowerCase() && (input.type === undefined || c.type === input.type));
    if (match === undefined) return false;
    return tx.credentials.delete(match.keyId);
  });
}

export interface ResetCredentialsInput extends CredentialTiming {
  appId: string;
  /** Keep the existing credentials (`--append`); by default they are all replaced. */
  append?: boolean;
  displayName?: string;
  /** Register this certificate instead of generating a secret. */
  certificatePem?: string;
  clock: Clock;
}

export interface ResetCredentialsResult {
  principal: ServicePrincipal;
  /** The new secret (null when a certificate was registered). */
  password: PasswordCredentialResult | null;
  certificate: CertificateCredentialResult | null;
  /** How many existing credentials were removed. */
  removed: number;
}

/**
 * `az ad sp credential reset`: one new credential (a generated secret, or the given certificate); every
 * existing credential is removed in the same transaction unless `append` is set.
 */
export async function resetCredentials(repos: Repositories | Store, masterKey: MasterKey, input: ResetCredentialsInput): Promise<ResetCredentialsResult> {
  const parsed = input.certificatePem === undefined ? undefined : parseClientCertificate(input.certificatePem, input.clock);
  if (parsed === undefined) credentialEnd(input.clock.now(), input); // validate before touching anything
  return withApplication(repos, input.appId, async (tx, principal) => {
    const removed = input.append === true ? 0 : await tx.credentials.deleteByApp(principal.appId);
    if (parsed !== undefined) {
      const certificate = await addCertificateTo(tx, principal, parsed, input);
      return { principal, password: null, certificate, removed };
    }
    const password = await addPasswordTo(tx, masterKey, principal, input);
    return { principal, password, certificate: null, removed };
  });
}

/** Runs `fn` in one transaction with the application principal `appOrObjectId` names (see {@link requireApplication}). */
function withApplication<T>(repos: Repositories | Store, appOrObjectId: string, fn: (tx: Repositories, principal: ServicePrincipal) => Promise<T>): Promise<T> {
  return atomically(repos, async (tx) => fn(tx, await requireApplication(tx, appOrObjectId)));
}

/** The application principal with this client id (or object id); `Request_ResourceNotFound` for anything else. */
async function requireApplication(tx: Repositories, appOrObjectId: string): Promise<ServicePrincipal> {
  const principal = await findPrincipal(tx, appOrObjectId);
  if (principal === undefined) throw DirectoryErrors.principalNotFound(appOrObjectId);
  if (principal.kind !== 'Application') {
    throw DirectoryErrors.badRequest(`Service principal '${principal.objectId}' is a managed identity; managed identities have no client credentials.`);
  }
  return principal;
}

function credentialEnd(now: number, timing: CredentialTiming): number {
  if (timing.endAt !== undefined) {
    if (!Number.isFinite(timing.endAt) || timing.endAt <= now) throw DirectoryErrors.badRequest('The credential end date must be in the future.');
    if (timing.endAt > addYears(now, MAX_CREDENTIAL_YEARS)) {
      throw DirectoryErrors.badRequest(`The credential end date may be at most ${String(MAX_CREDENTIAL_YEARS)} years away.`);
    }
    return timing.endAt;
  }
  const years = timing.years ?? 1;
  if (!Number.isInteger(years) || years < 1 || years > MAX_CREDENTIAL_YEARS) {
    throw DirectoryErrors.badRequest(`The credential lifetime must be a whole number of years from 1 to ${String(MAX_CREDENTIAL_YEARS)}.`);
  }
  return addYears(now, years);
}

function credentialDisplayName(value: string | undefined, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.length > MAX_CREDENTIAL_DISPLAY_NAME || hasControlCharacters(value)) {
    throw DirectoryErrors.badRequest(`The credential display name must be a string of at most ${String(MAX_CREDENTIAL_DISPLAY_NAME)} characters.`);
  }
  return value;
}
