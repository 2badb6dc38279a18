/**
 * Key Vault references for `openmsi run` (App Service's `@Microsoft.KeyVault(...)` app settings): the parser
 * (pure), dotenv files, the resolver that fetches a referenced secret with the run's own session, and the
 * pass over an environment that replaces what resolved and reports what did not. Design input:
 * `../shared/specs/federation-kubernetes-kv-references.md` §4.
 *
 * Secret values exist only in the returned environment: never in a status line, an error or a log.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { parseEnv } from 'node:util';
import { HttpCallError, httpCall, parseJsonBody } from '../shared/http-client.js';
import { VAULT_NAME_PATTERN } from '../vault/contracts.js';
import { SECRETS_API_VERSION } from './vault-client.js';

/** App Service's `ResolveStatus` values (spec §4.4) that `openmsi run` reports. */
export const REFERENCE_STATUSES = [
  'Resolved',
  'InvalidSyntax',
  'MSINotEnabled',
  'VaultNotFound',
  'SecretNotFound',
  'SecretVersionNotFound',
  'AccessToKeyVaultDenied',
  'FetchTimedOut',
  'OtherReasons',
] as const;
export type ReferenceStatus = (typeof REFERENCE_STATUSES)[number];

/** Key Vault's DNS suffixes (public and sovereign clouds): a `SecretUri` on one of them names the openmsi vault of the same name. */
export const KEY_VAULT_DNS_SUFFIXES: readonly string[] = ['vault.azure.net', 'vault.azure.cn', 'vault.usgovcloudapi.net', 'vault.microsoftazure.de'];

/** A reference that parsed: which vault, which secret, and the version when one is pinned. */
export interface SecretReference {
  /** An openmsi vault by name (lower-case), or any other https origin used as it is. */
  vault: { name: string } | { origin: string };
  secretName: string;
  /** Absent: the latest version. */
  version?: string;
}

export type ParsedReference = { ok: true; reference: SecretReference } | { ok: false; status: 'InvalidSyntax'; details: string };

/** What resolving one reference gave: the value, or why not. */
export type ReferenceOutcome = { status: 'Resolved'; value: string } | { status: Exclude<ReferenceStatus, 'Resolved'>; details: string };

const REFERENCE = /^@Microsoft\.KeyVault\((.*)\)$/s;
/** Azure's secret-name rule (as the vault's, src/vault/secrets/common.ts); versions are the same alphabet, which keeps `/`, `?` and `#` out of the path. */
const SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;
const PAIR_KEYS = ['vaultname', 'secretname', 'secretversion'] as const;

const invalid = (details: string): ParsedReference => ({ ok: false, status: 'InvalidSyntax', details });

/**
 * Parses `value` when it is a Key Vault reference as a whole (embedded references are plain text, as on App
 * Service, where every documented reference is an entire setting):
 * `@Microsoft.KeyVault(SecretUri=https://V.vault.azure.net/secrets/N[/VERSION])` or
 * `@Microsoft.KeyVault(VaultName=V;SecretName=N[;SecretVersion=VER])`. Keys are compared case-insensitively
 * and values trimmed; unknown or repeated keys, `http://`, and paths other than `/secrets/` are `InvalidSyntax`.
 *
 * @param options.vaultDomain The openmsi vault domain: `https://V.{vaultDomain}[:port]` URIs name vault V too.
 * @returns undefined when `value` is not a reference at all.
 */
export function parseKeyVaultReference(value: string, options: { vaultDomain: string }): ParsedReference | undefined {
  const inner = REFERENCE.exec(value)?.[1];
  if (inner === undefined) return undefined;
  const pairs = new Map<string, string>();
  // Empty segments (a trailing `;`) are tolerated; a URL holds no `;` that matters here, so splitting first is safe.
  for (const segment of inner.split(';')) {
    if (segment.trim() === '') continue;
    const eq = segment.indexOf('=');
    if (eq < 0) return invalid(`'${segment.trim()}' is not Key=Value`);
    const key = segment.slice(0, eq).trim().toLowerCase();
    if (key !== 'secreturi' && !(PAIR_KEYS as readonly string[]).includes(key)) return invalid(`unknown key '${segment.slice(0, eq).trim()}'`);
    if (pairs.has(key)) return invalid(`'${segment.slice(0, eq).trim()}' is given twice`);
    pairs.set(key, segment.slice(eq + 1).trim());
  }
  const uri = pairs.get('secreturi');
  if (uri !== undefined) {
    if (pairs.size > 1) return invalid('SecretUri cannot be combined with VaultName, SecretName or SecretVersion');
    return parseSecretUri(uri, options.vaultDomain);
  }
  const vaultName = pairs.get('vaultname');
  const secretName = pairs.get('secretname');
  const version = pairs.get('secretversion');
  if (vaultName === undefined || vaultName === '') return invalid('VaultName is missing');
  if (secretName === undefined || secretName === '') return invalid('SecretName is missing');
  if (!VAULT_NAME_PATTERN.test(vaultName)) return invalid(`'${vaultName}' is not a vault name`);
  if (!SECRET_NAME.test(secretName)) return invalid(`'${secretName}' is not a secret name`);
  if (version !== undefined && version !== '' && !SECRET_NAME.test(version)) return invalid(`'${version}' is not a secret version`);
  return {
    ok: true,
    reference: { vault: { name: vaultName.toLowerCase() }, secretName, ...(version === undefined || version === '' ? {} : { version }) },
  };
}

function parseSecretUri(uri: string, vaultDomain: string): ParsedReference {
  if (!URL.canParse(uri)) return invalid(`SecretUri '${uri}' is not a URL`);
  const url = new URL(uri);
  // A bearer token is sent to this URL: never in the clear.
  if (url.protocol !== 'https:') return invalid(`SecretUri must be https:// (got ${url.protocol}//)`);
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return invalid('SecretUri must have no user, query or fragment');
  const path = /^\/secrets\/([^/]+)(?:\/([^/]*))?\/?$/.exec(url.pathname);
  if (path === null) return invalid(`SecretUri must name /secrets/NAME[/VERSION] (got ${url.pathname})`);
  const [, secretName = '', version = ''] = path;
  if (!SECRET_NAME.test(secretName)) return invalid(`'${secretName}' is not a secret name`);
  if (version !== '' && !SECRET_NAME.test(version)) return invalid(`'${version}' is not a secret version`);
  const host = url.hostname.toLowerCase();
  const suffix = [...KEY_VAULT_DNS_SUFFIXES, vaultDomain].find((s) => host.endsWith(`.${s}`));
  let vault: SecretReference['vault'] = { origin: url.origin };
  if (suffix !== undefined) {
    const label = host.slice(0, -suffix.length - 1);
    if (!VAULT_NAME_PATTERN.test(label)) return invalid(`'${label}' is not a vault name`);
    vault = { name: label };
  }
  return { ok: true, reference: { vault, secretName, ...(version === '' ? {} : { version }) } };
}

/**
 * Reads a dotenv file with Node's own parser (`KEY=VALUE`, `export KEY=VALUE`, `#` comments, quotes, `\n` in
 * double quotes). Node's parser folds a line without `=` into the next key, so such a key is refused here.
 *
 * @throws Error naming the file when it cannot be read or a line is not `KEY=VALUE`.
 */
export function readEnvFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`--env-file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseDotenv(text, `--env-file ${path}`);
}

/** {@link readEnvFile}'s parsing, for text already read; `source` is named in errors. */
export function parseDotenv(text: string, source: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parseEnv(text))) {
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key)) throw new Error(`${source}: '${key.split('\n')[0] ?? key}' is not a KEY=VALUE line`);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** One reference that did not resolve: the variable, its status and why (never a value). */
export interface UnresolvedReference {
  name: string;
  status: Exclude<ReferenceStatus, 'Resolved'>;
  details: string;
}

/**
 * Replaces every variable of `env` that is a Key Vault reference with the secret it names, fetched by
 * `resolve` (at most `concurrency` at once, each distinct reference once). A reference that does not resolve
 * keeps its literal value (App Service's behaviour) and is listed in `unresolved`, in variable order.
 */
export async function resolveReferences(
  env: Readonly<Record<string, string | undefined>>,
  resolve: (reference: SecretReference) => Promise<ReferenceOutcome>,
  options: { vaultDomain: string; concurrency?: number },
): Promise<{ env: Record<string, string | undefined>; resolved: string[]; unresolved: UnresolvedReference[] }> {
  const out: Record<string, string | undefined> = { ...env };
  const pending: { name: string; key: string }[] = [];
  const outcomes = new Map<string, ReferenceOutcome>();
  const references = new Map<string, SecretReference>();
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const parsed = parseKeyVaultReference(value, options);
    if (parsed === undefined) continue;
    // The literal is the key: two variables with the same reference share one fetch.
    if (!parsed.ok) outcomes.set(value, parsed);
    else references.set(value, parsed.reference);
    pending.push({ name, key: value });
  }
  const queue = [...references.entries()];
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const [key, reference] = next;
      outcomes.set(key, await resolve(reference).catch((err: unknown) => ({ status: 'OtherReasons' as const, details: (err as Error).message })));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 8, queue.length)) }, worker));
  const resolved: string[] = [];
  const unresolved: UnresolvedReference[] = [];
  for (const { name, key } of pending) {
    const outcome = outcomes.get(key);
    if (outcome?.status === 'Resolved') {
      out[name] = outcome.value;
      resolved.push(name);
    } else unresolved.push({ name, status: outcome?.status ?? 'OtherReasons', details: outcome?.details ?? 'not resolved' });
  }
  return { env: out, resolved, unresolved };
}

/** The stderr line for an unresolved reference: `openmsi: KEY: Status details`, one line whatever the details hold. */
export function formatUnresolved(problem: UnresolvedReference): string {
  const details = problem.details.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  return `openmsi: ${problem.name}: ${problem.status}${details === '' ? '' : ` ${details}`}`;
}

/** Where openmsi vaults are served, and how to reach and trust them. */
export interface VaultLocation {
  /** Vault hosts are `{name}.{vaultDomain}`. */
  vaultDomain: string;
  /** The authority's address and port: vaults are served on its listener, named by SNI and `Host`. */
  connectTo: { host: string; port: number };
  /** The authority's CA (PEM), trusted besides the system roots; undefined: the system roots only. */
  caPem?: string;
}

export interface SecretFetcherOptions {
  /** The App Service endpoint and secret of the run's session (what CMD gets as IDENTITY_ENDPOINT/IDENTITY_HEADER). */
  identityEndpoint: string;
  identityHeader: string;
  /** Undefined when the agent's data dir does not say where the authority is: openmsi vaults then cannot be resolved. */
  vaults: VaultLocation | undefined;
  /** Per call (token or secret); past it the reference is `FetchTimedOut`. Default 15 s. */
  timeoutMs?: number;
}

/** Key Vault's resource, which openmsi vaults accept tokens for. */
const KEY_VAULT_RESOURCE = 'https://vault.azure.net';
const MAX_SECRET_RESPONSE_BYTES = 1024 * 1024;

/**
 * A `resolve` for {@link resolveReferences}: one vault token for the session's identity (fetched once, on first
 * need, through the agent's App Service surface exactly as CMD's SDKs will), then `GET /secrets/N[/V]`.
 * Statuses follow spec §4.6: 404 vault/secret/version, 403 → AccessToKeyVaultDenied, a token failure →
 * MSINotEnabled, a timeout → FetchTimedOut.
 */
export function secretFetcher(options: SecretFetcherOptions): (reference: SecretReference) => Promise<ReferenceOutcome> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const ca = options.vaults?.caPem === undefined ? undefined : [...rootCertificates, options.vaults.caPem].join('\n');
  let token: Promise<ReferenceOutcome> | undefined;
  return async (reference) => {
    token ??= vaultToken(options, timeoutMs);
    const granted = await token;
    if (granted.status !== 'Resolved') return granted;
    let url: URL;
    let connectTo: { host: string; port: number } | undefined;
    const path = `/secrets/${reference.secretName}${reference.version === undefined ? '' : `/${reference.version}`}?api-version=${SECRETS_API_VERSION}`;
    if ('name' in reference.vault) {
      if (options.vaults === undefined)
        return { status: 'OtherReasons', details: 'the agent data dir has no host credential, so the vaults cannot be located' };
      const port = options.vaults.connectTo.port;
      url = new URL(`https://${reference.vault.name}.${options.vaults.vaultDomain}${port === 443 ? '' : `:${String(port)}`}${path}`);
      connectTo = options.vaults.connectTo;
    } else url = new URL(`${reference.vault.origin}${path}`);
    let answer;
    try {
      answer = await httpCall(url, {
        headers: { authorization: `Bearer ${granted.value}`, accept: 'application/json' },
        timeoutMs,
        maxResponseBytes: MAX_SECRET_RESPONSE_BYTES,
        ...(ca === undefined ? {} : { ca }),
        ...(connectTo === undefined ? {} : { connectTo }),
      });
    } catch (err) {
      return callFailure(err, `the vault ${url.host}`);
    }
    const body = parseJsonBody(answer.text) as { value?: unknown; error?: { code?: unknown; message?: unknown; innererror?: { code?: unknown } } } | undefined;
    if (answer.status === 200) {
      return typeof body?.value === 'string'
        ? { status: 'Resolved', value: body.value }
        : { status: 'OtherReasons', details: `${url.host} answered without a value` };
    }
    const code = typeof body?.error?.code === 'string' ? body.error.code : `Http${String(answer.status)}`;
    const inner = typeof body?.error?.innererror?.code === 'string' ? `/${body.error.innererror.code}` : '';
    const details = `(${code}${inner}) ${typeof body?.error?.message === 'string' ? body.error.message : `HTTP ${String(answer.status)}`}`;
    if (answer.status === 404 && code === 'VaultNotFound') return { status: 'VaultNotFound', details };
    if (answer.status === 404 && code === 'SecretNotFound')
      return { status: reference.version === undefined ? 'SecretNotFound' : 'SecretVersionNotFound', details };
    if ((answer.status === 403 && inner !== '/SecretDisabled') || answer.status === 401) return { status: 'AccessToKeyVaultDenied', details };
    return { status: 'OtherReasons', details };
  };
}

/** The session's vault token, as a Resolved outcome holding it, or why there is none. */
async function vaultToken(options: SecretFetcherOptions, timeoutMs: number): Promise<ReferenceOutcome> {
  const url = new URL(options.identityEndpoint);
  url.searchParams.set('api-version', '2019-08-01');
  url.searchParams.set('resource', KEY_VAULT_RESOURCE);
  let answer;
  try {
    answer = await httpCall(url, { headers: { 'x-identity-header': options.identityHeader }, timeoutMs, maxResponseBytes: 1024 * 1024 });
  } catch (err) {
    const failure = callFailure(err, 'the agent');
    return failure.status === 'FetchTimedOut' ? failure : { status: 'MSINotEnabled', details: failure.details };
  }
  const body = parseJsonBody(answer.text) as { access_token?: unknown; error?: unknown; error_description?: unknown } | undefined;
  if (answer.status === 200 && typeof body?.access_token === 'string') return { status: 'Resolved', value: body.access_token };
  const reason = typeof body?.error_description === 'string' ? body.error_description : typeof body?.error === 'string' ? body.error : 'no token';
  return { status: 'MSINotEnabled', details: `the agent gave no token for ${KEY_VAULT_RESOURCE} (${String(answer.status)}): ${reason}` };
}

function callFailure(err: unknown, what: string): Exclude<ReferenceOutcome, { status: 'Resolved' }> {
  if (err instanceof HttpCallError && err.kind === 'timeout') return { status: 'FetchTimedOut', details: `${what} did not answer within the time allowed` };
  // No DNS name: what Key Vault's clients see for a vault that does not exist.
  if (err instanceof HttpCallError && (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN'))
    return { status: 'VaultNotFound', details: `${what} does not resolve` };
  return { status: 'OtherReasons', details: `cannot reach ${what}: ${(err as Error).message}` };
}
