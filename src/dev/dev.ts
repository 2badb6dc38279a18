/**
 * `openmsi dev`: the whole stack in one process on the embedded store — the server (authority, management API,
 * vault), this machine's agent and the loopback proxy for vault hosts — made on first run and reused after.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createAgent, type Agent } from '../agent/agent.js';
import { agentFiles, loadHostCredential } from '../agent/host-credential.js';
import { createOpenmsiServer, type OpenmsiServer } from '../server/server.js';
import { initDataDir } from '../authority/init.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { AGENT_DEFAULTS, DEFAULTS, loadInstallationConfig } from '../shared/config.js';
import { hostForUrl } from '../shared/public-url.js';
import { dataDirLayout, type AdminCredentialFile } from '../shared/data-dir.js';
import type { Logger } from '../shared/logger.js';
import { readRunningAuthority } from '../shared/running-authority.js';
import { vaultNameFromHost, vaultUri } from '../vault/contracts.js';
import { bootstrapDevDirectory, type DevDirectory } from './bootstrap.js';
import { ensureDevUser, type DevUser, type OsAccount } from './dev-user.js';
import { ensureCaBundle, seedAzConfigDir } from './environment.js';
import { DEV_NAMES, DEV_PORTS, devLayout, readRunningDev, removeRunningDev, writeRunningDev } from './layout.js';
import { proxyName, startDevProxy, upstreamProxyFromEnv, type DevProxy } from './proxy.js';

export interface DevOptions {
  dataDir: string;
  /** Server port on first run (later runs keep the configured one unless given); 0 picks a free one. */
  port?: number;
  agentPort?: number;
  /** The loopback proxy's port; null runs without it (then vault hosts must resolve, e.g. /etc/hosts). */
  proxyPort?: number | null;
  logger: Logger;
  clock?: Clock;
  /** Progress of slow first-run steps, for the terminal. */
  progress?: (message: string) => void;
  /** Where the user's own proxy is read from (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The OS account the dev user is named after (default: this process's). */
  account?: OsAccount;
}

export interface DevStack {
  authority: OpenmsiServer;
  agent: Agent;
  proxy: DevProxy | undefined;
  /** The user's proxy that non-vault traffic through the dev proxy goes on to (host:port, no credentials). */
  proxyUpstream: string | undefined;
  directory: DevDirectory;
  /** The person at the keyboard, as a user of the dev tenant (its password is only in dev/user.json). */
  user: DevUser;
  serverUrl: string;
  vaultUri: string;
  firstRun: boolean;
  tenantId: string;
  subscriptionId: string;
  close(): Promise<void>;
}

/** Refuses to start beside another process that holds the data dir, naming it. */
function refuseIfRunning(dataDir: string): void {
  const dev = readRunningDev(dataDir);
  if (dev !== undefined) {
    throw new Error(
      `openmsi dev is already running on ${dataDir} (pid ${String(dev.pid)}, since ${dev.startedAt}, ${dev.url}); stop it first (Ctrl-C in its terminal, or kill ${String(dev.pid)}), or pass another --data-dir`,
    );
  }
  const server = readRunningAuthority(dataDir);
  if (server !== undefined) {
    throw new Error(
      `${dataDir} is in use by an openmsi server (pid ${String(server.pid)}, since ${server.startedAt}, ${server.url}); stop it first, or pass another --data-dir`,
    );
  }
}

function readAdmin(dataDir: string): AdminCredentialFile {
  const path = dataDirLayout(dataDir).adminCredential;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as AdminCredentialFile;
  } catch (err) {
    throw new Error(`cannot read the admin credential ${path}: ${(err as Error).message}; restore it from a backup, or start over with \`openmsi dev reset\``, {
      cause: err,
    });
  }
}

/** One of the addresses `openmsi dev` listens on, and the flag that moves it. */
interface DevListener {
  what: string;
  host: string;
  port: number;
  /** How to pick another port (or do without this listener). */
  remedy: string;
}

/** A listen failure in words: which address, what it was for, why, and the flag that picks another port. */
export function devListenError(err: unknown, listener: DevListener): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const address = `${hostForUrl(listener.host)}:${String(listener.port)}`;
  if (code === 'EADDRINUSE') {
    return new Error(
      `cannot listen on ${address} (${listener.what}): the address is already in use (another openmsi, or another program). ${listener.remedy}`,
      { cause: err },
    );
  }
  if (code === 'EACCES')
    return new Error(`cannot listen on ${address} (${listener.what}): permission denied (ports below 1024 need privileges). ${listener.remedy}`, {
      cause: err,
    });
  if (code === 'EADDRNOTAVAIL') return new Error(`cannot listen on ${address} (${listener.what}): this machine has no such address`, { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

/** Checks that every listener's address can be bound, so a start that cannot serve fails before it makes or changes anything. */
async function probeListeners(listeners: readonly DevListener[]): Promise<void> {
  for (const listener of listeners) {
    if (listener.port === 0) continue;
    await new Promise<void>((resolvePromise, reject) => {
      const server = createServer();
      server.once('error', (err) => reject(devListenError(err, listener)));
      server.listen({ host: listener.host, port: listener.port, exclusive: true }, () => server.close(() => resolvePromise()));
    });
  }
}

/**
 * Undoes a first run that failed: the data dir goes (or, if it existed empty before, its contents), so the
 * next start is a first run again rather than one on a half-made data dir.
 */
function removeFirstRun(dataDir: string, existedBefore: boolean): void {
  if (!existedBefore) {
    rmSync(dataDir, { recursive: true, force: true });
    return;
  }
  for (const name of existsSync(dataDir) ? readdirSync(dataDir) : []) rmSync(join(dataDir, name), { recursive: true, force: true });
}

/**
 * Starts (initialising on first run) the dev stack; resolves once every part is serving. A first run makes the
 * data dir completely or not at all: when any step fails (a port is taken, say), nothing is left behind.
 */
export async function startDev(options: DevOptions): Promise<DevStack> {
  const { dataDir } = options;
  refuseIfRunning(dataDir);
  const firstRun = !existsSync(dataDirLayout(dataDir).config);
  const existedBefore = existsSync(dataDir);
  // Later runs keep the configured server address (config.json is read, and checked, before anything starts).
  const configured = firstRun ? undefined : loadInstallationConfig(dataDir);
  const serverPort = options.port ?? configured?.port ?? DEV_PORTS.server;
  const proxyPort = options.proxyPort === undefined ? DEV_PORTS.proxy : options.proxyPort;
  const listeners = {
    server: {
      what: 'the server',
      host: configured?.host ?? DEFAULTS.host,
      port: serverPort,
      remedy:
        `Pick another port with \`openmsi dev --port <port>\`` +
        (firstRun ? ' (the first run keeps it in config.json).' : ` for this run, or change it for good: edit "port" in ${dataDirLayout(dataDir).config}.`),
    },
    agent: {
      what: "this machine's agent",
      host: AGENT_DEFAULTS.host,
      port: options.agentPort ?? DEV_PORTS.agent,
      remedy: 'Pick another port with `openmsi dev --agent-port <port>` (`openmsi dev env` then names it).',
    },
    proxy: {
      what: 'the loopback proxy for vault hosts',
      host: '127.0.0.1',
      port: proxyPort ?? 0,
      remedy: 'Pick another port with `openmsi dev --proxy-port <port>`, or run without it: `openmsi dev --no-proxy`.',
    },
  } satisfies Record<string, DevListener>;
  await probeListeners([listeners.server, listeners.agent, ...(proxyPort === null ? [] : [listeners.proxy])]);
  try {
    return await startProbed(options, firstRun, proxyPort, listeners);
  } catch (err) {
    if (firstRun) removeFirstRun(dataDir, existedBefore);
    throw err;
  }
}

async function startProbed(
  options: DevOptions,
  firstRun: boolean,
  proxyPort: number | null,
  listeners: { server: DevListener; agent: DevListener; proxy: DevListener },
): Promise<DevStack> {
  const { dataDir, logger } = options;
  const clock = options.clock ?? systemClock;
  const progress = options.progress ?? (() => undefined);
  const layout = devLayout(dataDir);
  if (firstRun) {
    progress(`creating ${dataDir}: master key, CA and TLS certificate, store, tenant, signing keys`);
    await initDataDir({ dataDir, port: options.port ?? DEV_PORTS.server, clock });
  }
  const config = loadInstallationConfig(dataDir);
  const admin = readAdmin(dataDir);

  const authority = await createOpenmsiServer({ dataDir, logger, clock, ...(options.port === undefined || firstRun ? {} : { port: options.port }) });
  let agent: Agent | undefined;
  let proxy: DevProxy | undefined;
  const closeAll = async (): Promise<void> => {
    removeRunningDev(dataDir);
    await proxy?.close();
    await agent?.close();
    await authority.close();
  };
  try {
    const serverUrl = await authority.listen().catch((err: unknown) => {
      throw devListenError(err, listeners.server);
    });
    const port = Number(new URL(serverUrl).port || 443);
    const hostEnrolled = (await loadHostCredential(layout.agentDataDir)) !== undefined;
    if (firstRun) progress('creating resource group dev, identities, this host and vault dev');
    const directory = await bootstrapDevDirectory({
      store: authority.ctx.store,
      clock,
      tenantId: config.tenantId,
      subscriptionId: config.subscriptionId,
      admin,
      hostEnrolled,
    });
    const user = await ensureDevUser({
      store: authority.ctx.store,
      clock,
      dataDir,
      tenantId: config.tenantId,
      subscriptionId: config.subscriptionId,
      vaultResourceId: directory.vault.resourceId,
      grantedBy: admin.objectId,
      ...(options.account === undefined ? {} : { account: options.account }),
    });
    if (user.created) progress(`created you as ${user.userPrincipalName}: Owner on the dev subscription, Key Vault Administrator on vault dev`);
    if (directory.joinToken !== undefined) {
      // Enrolled before, but as a host the directory no longer has under this machine's name (renamed, or the
      // host deleted): that credential is stale, and the agent refuses a join token beside a saved credential.
      if (hostEnrolled) rmSync(agentFiles(layout.agentDataDir).credential, { force: true });
      progress(`enrolling this machine as ${directory.hostName}`);
    }
    const uri = vaultUri(DEV_NAMES.vault, config.vaultDomain, port);
    // The user's own proxy, if any, keeps carrying what is not a vault host (`ignored`: values it cannot use).
    const { upstream: upstreamProxy, ignored: ignoredProxies, selfReferences } = upstreamProxyFromEnv(options.env ?? process.env, proxyPort ?? -1);
    if (selfReferences.length > 0) logger.debug({ variables: selfReferences }, 'dev proxy: the environment already names the dev proxy; not chaining to it');
    for (const why of ignoredProxies) logger.warn({ why }, `dev proxy: ignoring ${why}; that traffic goes direct`);
    // Independent of each other: started together, so a later start waits for the slowest, not the sum.
    const [startedAgent, startedProxy, ...rest] = await Promise.allSettled([
      createAgent({
        dataDir: layout.agentDataDir,
        authorityUrl: serverUrl,
        caFile: layout.caCert,
        port: options.agentPort ?? DEV_PORTS.agent,
        logger,
        clock,
        ...(directory.joinToken === undefined ? {} : { joinToken: directory.joinToken }),
      }).catch((err: unknown) => {
        throw devListenError(err, listeners.agent);
      }),
      proxyPort === null
        ? Promise.resolve(undefined)
        : startDevProxy({
            port: proxyPort,
            ...(upstreamProxy === undefined ? {} : { upstream: upstreamProxy }),
            route: (hostname) => (vaultNameFromHost(hostname, config.vaultDomain) === undefined ? undefined : { host: '127.0.0.1', port }),
          }).catch((err: unknown) => {
            throw devListenError(err, listeners.proxy);
          }),
      ensureSampleSecret(authority, admin, config.tenantId, config.vaultDomain, port),
      Promise.resolve().then(() => {
        ensureCaBundle(dataDir);
        seedAzConfigDir(dataDir);
      }),
    ]);
    // Keep what started, so that a failure elsewhere still closes it (in the catch below).
    if (startedAgent.status === 'fulfilled') agent = startedAgent.value;
    if (startedProxy.status === 'fulfilled') proxy = startedProxy.value;
    const failed = [startedAgent, startedProxy, ...rest].find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    if (agent === undefined) throw new TypeError('the agent neither started nor failed');
    writeRunningDev(dataDir, { url: serverUrl, agentPort: agent.port, proxyPort: proxy?.port ?? null, vaultUri: uri });
    const chainedTo = upstreamProxy?.https ?? upstreamProxy?.http;
    return {
      authority,
      agent,
      proxy,
      proxyUpstream: proxy === undefined || chainedTo === undefined ? undefined : proxyName(chainedTo),
      directory,
      user,
      serverUrl,
      vaultUri: uri,
      firstRun,
      tenantId: config.tenantId,
      subscriptionId: config.subscriptionId,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * Sets the sample secret when the dev vault has none, through the data plane as the admin (so it is audited
 * like any write); a secret the developer changed or deleted is left alone.
 */
async function ensureSampleSecret(authority: OpenmsiServer, admin: AdminCredentialFile, tenantId: string, vaultDomain: string, port: number): Promise<void> {
  const tokenResponse = await authority.app.inject({
    method: 'POST',
    url: `/${tenantId}/oauth2/v2.0/token`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: admin.clientId,
      client_secret: admin.clientSecret,
      scope: `https://${vaultDomain}:${String(port)}/.default`,
    }).toString(),
  });
  if (tokenResponse.statusCode !== 200) throw new Error(`the admin could not get a vault token (HTTP ${String(tokenResponse.statusCode)})`);
  const token = tokenResponse.json<{ access_token: string }>().access_token;
  const host = `${DEV_NAMES.vault}.${vaultDomain}:${String(port)}`;
  const headers = { host, authorization: `Bearer ${token}` };
  const path = `/secrets/${DEV_NAMES.sampleSecret}?api-version=7.4`;
  const existing = await authority.vaultApp.inject({ method: 'GET', url: path, headers });
  if (existing.statusCode === 200) return;
  const deleted = await authority.vaultApp.inject({ method: 'GET', url: `/deletedsecrets/${DEV_NAMES.sampleSecret}?api-version=7.4`, headers });
  if (deleted.statusCode === 200) return;
  const set = await authority.vaultApp.inject({
    method: 'PUT',
    url: path,
    headers: { ...headers, 'content-type': 'application/json' },
    payload: JSON.stringify({ value: DEV_NAMES.sampleValue, contentType: 'text/plain', tags: { 'created-by': 'openmsi dev' } }),
  });
  if (set.statusCode !== 200) throw new Error(`could not set the sample secret in the dev vault (HTTP ${String(set.statusCode)}: ${set.body.slice(0, 200)})`);
}
