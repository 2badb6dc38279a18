/**
 * `openmsi dev`: the whole stack in one process on the embedded store — the server (authority, management API,
 * vault), this machine's agent and the loopback proxy for vault hosts — made on first run and reused after.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createAgent, type Agent } from '../agent/agent.js';
import { loadHostCredential } from '../agent/host-credential.js';
import { createAuthority, type Authority } from '../authority/authority.js';
import { initDataDir } from '../authority/init.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { loadInstallationConfig } from '../shared/config.js';
import { dataDirLayout, type AdminCredentialFile } from '../shared/data-dir.js';
import type { Logger } from '../shared/logger.js';
import { readRunningAuthority } from '../shared/running-authority.js';
import { vaultNameFromHost, vaultUri } from '../vault/contracts.js';
import { bootstrapDevDirectory, type DevDirectory } from './bootstrap.js';
import { ensureCaBundle, seedAzConfigDir } from './environment.js';
import { DEV_NAMES, DEV_PORTS, devLayout, readRunningDev, removeRunningDev, writeRunningDev } from './layout.js';
import { startDevProxy, type DevProxy } from './proxy.js';

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
}

export interface DevStack {
  authority: Authority;
  agent: Agent;
  proxy: DevProxy | undefined;
  directory: DevDirectory;
  serverUrl: string;
  vaultUri: string;
  firstRun: boolean;
  tenantId: string;
  close(): Promise<void>;
}

/** Refuses to start beside another process that holds the data dir, naming it. */
function refuseIfRunning(dataDir: string): void {
  const dev = readRunningDev(dataDir);
  if (dev !== undefined) {
    throw new Error(`openmsi dev is already running on ${dataDir} (pid ${String(dev.pid)}, since ${dev.startedAt}, ${dev.url}); stop it first (Ctrl-C in its terminal, or kill ${String(dev.pid)}), or pass another --data-dir`);
  }
  const server = readRunningAuthority(dataDir);
  if (server !== undefined) {
    throw new Error(`${dataDir} is in use by an openmsi server (pid ${String(server.pid)}, since ${server.startedAt}, ${server.url}); stop it first, or pass another --data-dir`);
  }
}

function readAdmin(dataDir: string): AdminCredentialFile {
  const path = dataDirLayout(dataDir).adminCredential;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as AdminCredentialFile;
  } catch (err) {
    throw new Error(`cannot read the admin credential ${path}: ${(err as Error).message}; restore it from a backup, or start over with \`openmsi dev reset\``, { cause: err });
  }
}

/** Starts (initialising on first run) the dev stack; resolves once every part is serving. */
export async function startDev(options: DevOptions): Promise<DevStack> {
  const { dataDir, logger } = options;
  const clock = options.clock ?? systemClock;
  const progress = options.progress ?? (() => undefined);
  const layout = devLayout(dataDir);
  refuseIfRunning(dataDir);

  const firstRun = !existsSync(dataDirLayout(dataDir).config);
  if (firstRun) {
    progress(`creating ${dataDir}: master key, CA and TLS certificate, store, tenant, signing keys`);
    await initDataDir({ dataDir, port: options.port ?? DEV_PORTS.server, clock });
  }
  const config = loadInstallationConfig(dataDir);
  const admin = readAdmin(dataDir);

  const authority = await createAuthority({ dataDir, logger, clock, ...(options.port === undefined || firstRun ? {} : { port: options.port }) });
  let agent: Agent | undefined;
  let proxy: DevProxy | undefined;
  const closeAll = async (): Promise<void> => {
    removeRunningDev(dataDir);
    await proxy?.close();
    await agent?.close();
    await authority.close();
  };
  try {
    const serverUrl = await authority.listen();
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
    if (directory.joinToken !== undefined) progress(`enrolling this machine as ${directory.hostName}`);
    const uri = vaultUri(DEV_NAMES.vault, config.vaultDomain, port);
    const proxyPort = options.proxyPort === undefined ? DEV_PORTS.proxy : options.proxyPort;
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
      }),
      proxyPort === null
        ? Promise.resolve(undefined)
        : startDevProxy({
            port: proxyPort,
            route: (hostname) => (vaultNameFromHost(hostname, config.vaultDomain) === undefined ? undefined : { host: '127.0.0.1', port }),
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
    return { authority, agent, proxy, directory, serverUrl, vaultUri: uri, firstRun, tenantId: config.tenantId, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * Sets the sample secret when the dev vault has none, through the data plane as the admin (so it is audited
 * like any write); a secret the developer changed or deleted is left alone.
 */
async function ensureSampleSecret(authority: Authority, admin: AdminCredentialFile, tenantId: string, vaultDomain: string, port: number): Promise<void> {
  const tokenResponse = await authority.app.inject({
    method: 'POST',
    url: `/${tenantId}/oauth2/v2.0/token`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'client_credentials', client_id: admin.clientId, client_secret: admin.clientSecret, scope: `https://${vaultDomain}:${String(port)}/.default` }).toString(),
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
