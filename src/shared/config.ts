/**
 * The one configuration module: the installation config (`config.json`) with its defaults and bounds, and
 * every `OPENMSI_*` environment variable. Both are checked once, when loaded; errors name the file or the
 * variable and say what to do.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { LevelWithSilent } from 'pino';
import { DataDirError, dataDirLayout, readDataDirFile } from './data-dir.js';
import { isGuid } from './ids.js';
import type { LogFormat } from './logger.js';

/** The contents of `config.json`. */
export interface InstallationConfig {
  version: 1;
  tenantId: string;
  subscriptionId: string;
  /** Address the authority listens on. */
  host: string;
  port: number;
  /**
   * The https origin clients use, only when set explicitly (`init --public-url`); token issuers derive from
   * it. Absent, the authority advertises `https://localhost:<port it listens on>` (see `shared/public-url.ts`,
   * which also reads older data dirs that stored that default here).
   */
  publicUrl?: string;
  /** `sqlite` (the file in the data dir) or a postgres:// URL (a URL without password; the password comes from OPENMSI_STORE). */
  store: string;
  /** Access-token lifetime in seconds ({@link TOKEN_LIFETIME_SECONDS}). */
  tokenLifetimeSeconds: number;
  /**
   * Vault hosts are `{name}.{vaultDomain}` (`openmsi init --vault-domain`; data dirs from before the vault read
   * {@link DEFAULTS.vaultDomain}). Lower-case DNS name, at least two labels.
   */
  vaultDomain: string;
  /**
   * The outbound federation issuer (`iss` of the assertions upstream Entra tenants trust; docs/federation.md),
   * when set explicitly; absent, `{public origin}/openmsi/federation`, served by the authority itself.
   */
  federationIssuer?: string;
}

/** Defaults `openmsi init` writes into config.json. */
export const DEFAULTS = {
  host: '127.0.0.1',
  port: 8443,
  store: 'sqlite',
  tenantDomain: 'openmsi.local',
  tokenLifetimeSeconds: 3600,
  /** RFC 6761 reserves `localhost` and its subdomains for loopback. */
  vaultDomain: 'vault.localhost',
} as const;

/** A vault domain: lower-case DNS labels, at least two (vault hosts add one more in front). */
export function isVaultDomain(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 200 && /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(value);
}

/** Bounds of the access-token lifetime: at least 5 minutes (clients refresh ahead of expiry), at most a day. */
export const TOKEN_LIFETIME_SECONDS = { min: 300, max: 24 * 60 * 60, default: DEFAULTS.tokenLifetimeSeconds } as const;

/**
 * Host join tokens (`openmsi host join-token create --ttl`): 10 minutes unless asked otherwise, at least a
 * minute (time to paste it), at most a day (an unused token lying around is a credential).
 */
export const JOIN_TOKEN_TTL_SECONDS = { min: 60, max: 24 * 60 * 60, default: 10 * 60 } as const;

/** Lifetime of a host credential registered at enrolment or renewal; the agent renews at half-life. */
export const HOST_CREDENTIAL_LIFETIME_SECONDS = 30 * 24 * 60 * 60;

/** Failed enrolments tolerated per remote address and window before the host API answers 429. */
export const ENROLMENT_FAILURE_LIMIT = { failures: 5, windowSeconds: 60 } as const;

/**
 * Health and readiness (`GET /healthz`, `GET /readyz`; src/server/readiness.ts). A readiness answer is reused
 * for `readyCacheMs`, so a storm of probes costs the database at most one query per window.
 */
export const HEALTH = {
  /** How long one readiness answer is reused. */
  readyCacheMs: 1000,
  /** The store's probe query must answer within this, else the store counts as unreachable. */
  storeTimeoutMs: 1000,
} as const;

/**
 * The Prometheus metrics listener of the server and of the agent (`--metrics-port`): plain HTTP, off unless a
 * port is given, on loopback unless `--metrics-host` says otherwise. Never the public (or agent) port.
 */
export const METRICS_DEFAULTS = {
  host: '127.0.0.1',
} as const;

/** The environment variables openmsi reads, all of them. */
export const ENV = {
  /** The data dir, when `--data-dir` is not given (default `~/.openmsi`). */
  dataDir: 'OPENMSI_DATA_DIR',
  /** The store location; wins over config.json (it may carry the database password). */
  store: 'OPENMSI_STORE',
  /** The master key (base64 of 32 bytes); wins over `<data dir>/master.key`. */
  masterKey: 'OPENMSI_MASTER_KEY',
  /** The authority's log level: fatal, error, warn, info (default), debug, trace or silent. */
  logLevel: 'OPENMSI_LOG_LEVEL',
  /** The authority's log format: json or pretty (default: pretty on a terminal, json otherwise). */
  logFormat: 'OPENMSI_LOG_FORMAT',
  /** The authority URL the CLI calls instead of config.json's. */
  authorityUrl: 'OPENMSI_AUTHORITY_URL',
  /** The agent's data dir, when `openmsi agent --data-dir` is not given (default `~/.openmsi/agent`). */
  agentDataDir: 'OPENMSI_AGENT_DATA_DIR',
} as const;

/**
 * `openmsi agent` settings and their defaults. Times in milliseconds unless the name says otherwise.
 * `port` 50342 is the port Azure's legacy VM extension and Cloud Shell use for `localhost:50342/oauth2/token`.
 */
export const AGENT_DEFAULTS = {
  host: '127.0.0.1',
  port: 50342,
  /** How often the agent re-reads the host's identities from the authority (`self`). */
  identityPollMs: 2000,
  /** How often `--join-token-file` is re-read while the authority refuses the host. */
  joinTokenFilePollMs: 2000,
  /**
   * The `self` long poll's wait (seconds): the authority answers at once on a change to the host, else after
   * this long. Below `readyStaleMs` (30 s), so an idle host's answers keep the agent ready.
   */
  identityLongPollSeconds: 20,
  /** How often a plain `self` read reconciles the host's identities while the long poll runs. */
  identityReconcileMs: 300_000,
  /** Per-identity token bucket: tokens per second and burst. Azure IMDS allows 20/s per VM. */
  rateLimitPerSecond: 5000,
  rateLimitBurst: 5000,
  /** Most (identity, resource) entries the token cache holds. */
  cacheMaxEntries: 10_000,
  /** `Retry-After` seconds on a retryable 503 (authority not available) and on 429. */
  retryAfterSeconds: 5,
  /** Timeout of one call to the authority. */
  upstreamTimeoutMs: 10_000,
  /** Background retry backoff after an authority failure: first delay and cap. */
  retryBaseMs: 1000,
  retryMaxMs: 60_000,
  /**
   * With several authorities (`--authority`, repeatable): while a less preferred one is in use, the more
   * preferred ones are probed (`GET /readyz`) after a delay that starts here and doubles up to the cap (jittered).
   */
  authorityProbeMinMs: 1000,
  authorityProbeMaxMs: 30_000,
  /** The directory every Azure Arc client requires the challenge file in (Linux). */
  arcTokenDir: '/var/opt/azcmagent/tokens',
  /** How long an Arc challenge file stays valid (it is accepted once). */
  arcChallengeMs: 60_000,
  /**
   * `GET /readyz`: the agent is unready when the authority has not answered `self` for this long (and at least
   * three poll intervals), as the identity list it serves from may then be stale.
   */
  readyStaleMs: 30_000,
} as const;

const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];

/** The `OPENMSI_*` settings, checked; an unset or empty variable is `undefined`. */
export interface EnvironmentSettings {
  dataDir?: string;
  store?: string;
  masterKey?: string;
  logLevel?: LevelWithSilent;
  logFormat?: LogFormat;
  authorityUrl?: string;
  agentDataDir?: string;
}

/** A configuration value that is wrong; the message names where it came from and what to do. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Reads and checks every `OPENMSI_*` variable in `env`. */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env): EnvironmentSettings {
  const value = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v;
  };
  const out: EnvironmentSettings = {};
  const dataDir = value(ENV.dataDir);
  if (dataDir !== undefined) out.dataDir = dataDir;
  const store = value(ENV.store);
  if (store !== undefined) out.store = store;
  const masterKey = value(ENV.masterKey);
  if (masterKey !== undefined) out.masterKey = masterKey;
  const logLevel = value(ENV.logLevel);
  if (logLevel !== undefined) out.logLevel = parseLogLevel(logLevel, ENV.logLevel);
  const logFormat = value(ENV.logFormat);
  if (logFormat !== undefined) out.logFormat = parseLogFormat(logFormat, ENV.logFormat);
  const authorityUrl = value(ENV.authorityUrl);
  if (authorityUrl !== undefined) out.authorityUrl = authorityUrl;
  const agentDataDir = value(ENV.agentDataDir);
  if (agentDataDir !== undefined) out.agentDataDir = agentDataDir;
  return out;
}

/** A pino level name; `source` (a flag or variable) is named in the error. */
export function parseLogLevel(value: string, source: string): LevelWithSilent {
  const level = value.trim().toLowerCase() as LevelWithSilent;
  if (!LOG_LEVELS.includes(level)) throw new ConfigError(`${source} must be one of ${LOG_LEVELS.join(', ')} (got '${value}')`);
  return level;
}

/** `json` or `pretty`; `source` (a flag or variable) is named in the error. */
export function parseLogFormat(value: string, source: string): LogFormat {
  const format = value.trim().toLowerCase() as LogFormat;
  if (!LOG_FORMATS.includes(format)) throw new ConfigError(`${source} must be json or pretty (got '${value}')`);
  return format;
}

/**
 * The proxy an outbound HTTPS call to `target` goes through, as curl and the Azure SDKs read it: `HTTPS_PROXY`
 * (or `https_proxy`, which wins when both are set), unless `NO_PROXY` / `no_proxy` names the host: `*`, an
 * exact host, a domain suffix (`example.com` and `.example.com` both cover `a.example.com`), optionally with
 * `:port`. Only for calls that leave the installation (the agent's upstream Entra exchange); openmsi's own
 * authority is reached directly. A proxy URL that does not parse is a {@link ConfigError}.
 */
export function httpsProxyFor(target: URL, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  const setting = (names: readonly string[]): string | undefined => {
    for (const name of names) {
      const v = env[name]?.trim();
      if (v !== undefined && v !== '') return v;
    }
    return undefined;
  };
  const proxy = setting(['https_proxy', 'HTTPS_PROXY']);
  if (proxy === undefined) return undefined;
  const host = target.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  const port = target.port === '' ? (target.protocol === 'https:' ? '443' : '80') : target.port;
  for (const raw of (setting(['no_proxy', 'NO_PROXY']) ?? '').split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return undefined;
    // `[v6]`, `[v6]:port`, `host`, `host:port`; a bare IPv6 address has more than one colon and no port.
    const bracketed = /^\[([^\]]*)\](?::(\d+))?$/.exec(entry);
    const hostPort = bracketed === null && (entry.match(/:/g) ?? []).length === 1 ? /^(.*):(\d+)$/.exec(entry) : null;
    const entryHost = (bracketed?.[1] ?? hostPort?.[1] ?? entry).replace(/^\*?\./, '');
    const entryPort = bracketed?.[2] ?? hostPort?.[2];
    if (entryPort !== undefined && entryPort !== port) continue;
    if (host === entryHost || host.endsWith(`.${entryHost}`)) return undefined;
  }
  try {
    const url = new URL(proxy.includes('://') ? proxy : `http://${proxy}`);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('not http(s)');
    return url;
  } catch {
    throw new ConfigError(`HTTPS_PROXY must be an http:// or https:// URL (got '${proxy.replace(/\/\/[^@/]*@/, '//…@')}')`);
  }
}

/** Resolves the data dir: the explicit option, then OPENMSI_DATA_DIR, then ~/.openmsi. */
export function resolveDataDir(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(explicit ?? readEnvironment(env).dataDir ?? join(homedir(), '.openmsi'));
}

/** Resolves the agent's data dir: the explicit option, then OPENMSI_AGENT_DATA_DIR, then ~/.openmsi/agent. */
export function agentDataDir(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(explicit ?? readEnvironment(env).agentDataDir ?? join(homedir(), '.openmsi', 'agent'));
}

/** Whether `value` is an allowed access-token lifetime ({@link TOKEN_LIFETIME_SECONDS}). */
export function isTokenLifetime(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= TOKEN_LIFETIME_SECONDS.min && value <= TOKEN_LIFETIME_SECONDS.max;
}

/** Whether `value` is a TCP port number (0 lets the system pick one). */
export function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 65535;
}

const TOKEN_LIFETIME_RULE = `a whole number of seconds from ${String(TOKEN_LIFETIME_SECONDS.min)} to ${String(TOKEN_LIFETIME_SECONDS.max)}`;
const PORT_RULE = 'a port number from 0 to 65535';

/** Checks a token lifetime; `source` (a flag or file) is named in the error. */
export function checkTokenLifetime(value: unknown, source: string): number {
  if (!isTokenLifetime(value)) throw new ConfigError(`${source} must be ${TOKEN_LIFETIME_RULE} (got ${String(value)})`);
  return value;
}

/** Checks a TCP port number; `source` is named in the error. */
export function checkPort(value: unknown, source: string): number {
  if (!isPort(value)) throw new ConfigError(`${source} must be ${PORT_RULE} (got ${String(value)})`);
  return value;
}

/**
 * Reads and checks `<dataDir>/config.json`. Every problem names the file and says what to do; nothing
 * unchecked gets past here.
 */
export function loadInstallationConfig(dataDir: string): InstallationConfig {
  const path = dataDirLayout(dataDir).config;
  const text = readDataDirFile(path, {
    what: 'the openmsi configuration',
    missing: `${dataDir} is not an initialised openmsi data dir (no config.json); run \`openmsi init\` first, or pass --data-dir / set ${ENV.dataDir}`,
  });
  const fix = 'Fix it by hand (it is plain JSON written by `openmsi init`), or restore it from a backup';
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new DataDirError(path, `${path} is not valid JSON (${(err as Error).message}). ${fix}.`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DataDirError(path, `${path} must hold a JSON object. ${fix}.`);
  const c = raw as Record<string, unknown>;
  const bad = (field: string, expected: string): never => {
    throw new DataDirError(path, `${path}: "${field}" must be ${expected} (got ${JSON.stringify(c[field]) ?? 'nothing'}). ${fix}.`);
  };
  if (c['version'] !== 1) {
    throw new DataDirError(
      path,
      `${path}: unsupported config version ${JSON.stringify(c['version']) ?? '(none)'}; this openmsi reads version 1. Use the openmsi release that created it.`,
    );
  }
  const guid = (field: string): string => (typeof c[field] === 'string' && isGuid(c[field]) ? c[field] : bad(field, 'a GUID'));
  const text_ = (field: string): string => (typeof c[field] === 'string' && c[field] !== '' ? c[field] : bad(field, 'a non-empty string'));
  const tenantId = guid('tenantId');
  const subscriptionId = guid('subscriptionId');
  const host = text_('host');
  const port = isPort(c['port']) ? c['port'] : bad('port', PORT_RULE);
  const publicUrl = c['publicUrl'] === undefined ? undefined : text_('publicUrl');
  if (publicUrl !== undefined && (!URL.canParse(publicUrl) || new URL(publicUrl).protocol !== 'https:')) bad('publicUrl', 'an https:// URL');
  const store = text_('store');
  const lifetime = c['tokenLifetimeSeconds'];
  const tokenLifetimeSeconds = isTokenLifetime(lifetime) ? lifetime : bad('tokenLifetimeSeconds', TOKEN_LIFETIME_RULE);
  const vaultDomain =
    c['vaultDomain'] === undefined
      ? DEFAULTS.vaultDomain
      : isVaultDomain(c['vaultDomain'])
        ? c['vaultDomain']
        : bad('vaultDomain', 'a lower-case DNS name of at least two labels, such as vault.localhost');
  const federationIssuer = c['federationIssuer'] === undefined ? undefined : text_('federationIssuer');
  if (
    federationIssuer !== undefined &&
    (!URL.canParse(federationIssuer) || new URL(federationIssuer).protocol !== 'https:' || federationIssuer.trim() !== federationIssuer)
  ) {
    bad('federationIssuer', 'an https:// URL');
  }
  return {
    version: 1,
    tenantId,
    subscriptionId,
    host,
    port,
    ...(publicUrl === undefined ? {} : { publicUrl }),
    store,
    tokenLifetimeSeconds,
    vaultDomain,
    ...(federationIssuer === undefined ? {} : { federationIssuer }),
  };
}

/** Where the store lives: OPENMSI_STORE wins (it may carry a password), then config.json. */
export function storeLocation(dataDir: string, config: Pick<InstallationConfig, 'store'>, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = readEnvironment(env).store;
  if (fromEnv !== undefined) return fromEnv;
  return config.store === 'sqlite' ? dataDirLayout(dataDir).sqlite : config.store;
}

/**
 * The agent's audit pipeline (src/agent/audit): events fold for one window, each window is appended to a
 * spool of JSONL segments in the agent's data dir, and the spool is uploaded to the authority in batches.
 */
export const AGENT_AUDIT = {
  /** Identical outcomes within this window become one record with a count. */
  flushWindowMs: 1000,
  /** Records per upload (the host API's batch bound) and per spool segment. */
  batchRecords: 1000,
  /**
   * The spool's bound on disk. Records stop short of it by a reserve (1%, at least 64 KiB) kept for the
   * records that count dropped events; past it, events are counted as dropped, never silently.
   */
  spoolMaxBytes: 64 * 1024 * 1024,
  /** While the spool is full, the drop counts are written (to the reserve) at most this often. */
  dropWriteMs: 60_000,
  /** Distinct records folded in one window before further distinct outcomes are counted as dropped. */
  windowMaxRecords: 10_000,
  /** An upload that has not settled after this long is aborted and retried like any failure. */
  uploadTimeoutMs: 30_000,
  /** Upload retry backoff: exponential from `retryMinMs` to `retryMaxMs`, with full jitter. */
  retryMinMs: 1000,
  retryMaxMs: 60_000,
} as const;

/** `openmsi run` sessions and the agent's control API (src/agent/sessions.ts, src/agent/control.ts). */
export const AGENT_SESSIONS = {
  /** Live sessions at most; more are refused with 503 until one ends. */
  maxSessions: 1024,
  /** Identity selectors per session, and the length of each. */
  maxIdentities: 16,
  maxSelectorLength: 512,
  /** A byte written on an open session stream this often, so a dead peer is noticed even without a FIN. */
  heartbeatMs: 15_000,
} as const;

/** Caller attribution from /proc (src/agent/caller.ts): the most `/proc/PID/fd` entries one lookup reads. */
export const AGENT_CALLER = {
  maxFdEntries: 50_000,
} as const;

/**
 * The RBAC authoriser (src/rbac/authorizer.ts). A change in this process is applied at once (the store
 * notifies synchronously after commit); a change on another replica arrives by PostgreSQL NOTIFY, or at worst
 * through reconciliation: every loaded tenant's version is compared with the store's this often.
 */
export const RBAC_DEFAULTS = {
  /** How often each loaded tenant's state version is compared with the store's (the bound for a missed notification). */
  reconcileMs: 5000,
  /** Decisions kept (a bounded LRU over every tenant); each is a few hundred bytes. */
  decisionCacheSize: 50_000,
} as const;
