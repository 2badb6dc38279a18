/**
 * What `openmsi dev env` prints: everything an unchanged application on this machine needs after
 * `eval "$(openmsi dev env)"` — the managed-identity endpoints of the dev agent, CA trust for Node, Python, az,
 * curl and OpenSSL-based clients, the dev vault's URI, the loopback proxy that makes vault hosts resolve with no DNS change, and az's
 * offline switches.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { agentFiles } from '../agent/host-credential.js';
import { agentEnvironment } from '../agent/environment.js';
import { ENV } from '../shared/config.js';
import { combinedCaBundle, SYSTEM_CA_BUNDLES } from './env.js';
import { devLayout, type RunningDev } from './layout.js';
import { proxyEnvironment } from './proxy.js';
import { makePrivateDir, writePrivateFile } from '../shared/private-files.js';

/** The ports and vault of the dev stack, as `openmsi dev` recorded them (run/dev.json). */
export type DevEndpoints = Pick<RunningDev, 'agentPort' | 'proxyPort' | 'vaultUri'>;

/** The machine-wide header secret of the dev agent; it exists once `openmsi dev` has started. */
export function devAgentSecret(dataDir: string): string {
  const path = agentFiles(devLayout(dataDir).agentDataDir).identityHeader;
  if (!existsSync(path)) throw new Error(`${dataDir} has no dev agent yet (no ${path}): run \`openmsi dev\` first`);
  return readFileSync(path, 'utf8').trim();
}

/** Writes the combined CA bundle (system CAs + the dev CA) if it is missing or older than the CA. */
export function ensureCaBundle(dataDir: string): string {
  const layout = devLayout(dataDir);
  makePrivateDir(dirname(layout.caBundle));
  const ca = readFileSync(layout.caCert, 'utf8');
  if (!existsSync(layout.caBundle) || !readFileSync(layout.caBundle, 'utf8').includes(ca.trim())) combinedCaBundle(SYSTEM_CA_BUNDLES, ca, layout.caBundle);
  return layout.caBundle;
}

/**
 * az 2.45 checks PyPI for a newer version on first use (a request that leaves the machine); a fresh
 * versionCheck.json in its config dir says it just did. Telemetry is switched off by the environment.
 */
export function seedAzConfigDir(dataDir: string, now: Date = new Date()): string {
  const dir = devLayout(dataDir).azConfigDir;
  makePrivateDir(dir);
  const stamp = now.toISOString().replace('T', ' ').replace('Z', '000');
  const versions = { versions: { 'azure-cli': { local: '2.45.0' }, core: { local: '2.45.0' }, telemetry: { local: '1.0.8' } }, update_time: stamp };
  writePrivateFile(join(dir, 'versionCheck.json'), JSON.stringify(versions));
  return dir;
}

/**
 * az's cloud config for the endpoints `az cloud register` has no flag for (az 2.45: `--cloud-config` JSON,
 * camelCase keys). `microsoftGraphResourceId` is both the resource az asks tokens for and the base of its
 * Graph calls (`{id without the trailing slash}/v1.0/...`, role/_msgrpah/_graph_client.py): the server's own
 * origin, whose `/v1.0` routes accept tokens for it (management/authenticate.ts).
 */
export function azCloudConfig(serverUrl: string): { endpoints: { microsoftGraphResourceId: string } } {
  return { endpoints: { microsoftGraphResourceId: `${new URL(serverUrl).origin}/` } };
}

/** Writes {@link azCloudConfig} where `az cloud update --cloud-config @file` reads it; returns the path. */
export function writeAzCloudConfig(dataDir: string, serverUrl: string): string {
  const path = devLayout(dataDir).azCloudConfig;
  makePrivateDir(dirname(path));
  writePrivateFile(path, `${JSON.stringify(azCloudConfig(serverUrl), null, 2)}\n`);
  return path;
}

/** The variables, in the order they are printed. */
export function devEnvironment(dataDir: string, endpoints: DevEndpoints): [string, string][] {
  const layout = devLayout(dataDir);
  const vars: [string, string][] = [
    ...agentEnvironment(endpoints.agentPort, devAgentSecret(dataDir)),
    ['AZURE_KEYVAULT_URL', endpoints.vaultUri],
    ['NODE_EXTRA_CA_CERTS', layout.caCert],
  ];
  // The combined bundle (system CAs + the dev CA) for every client that replaces its trust list with a file:
  // Python requests and az (REQUESTS_CA_BUNDLE), curl (CURL_CA_BUNDLE), and OpenSSL-based clients, Go, Ruby
  // and .NET on Linux (SSL_CERT_FILE).
  const bundle = ensureCaBundle(dataDir);
  vars.push(['REQUESTS_CA_BUNDLE', bundle], ['SSL_CERT_FILE', bundle], ['CURL_CA_BUNDLE', bundle]);
  if (endpoints.proxyPort !== null) vars.push(...proxyEnvironment(`http://127.0.0.1:${String(endpoints.proxyPort)}`));
  vars.push(['AZURE_CONFIG_DIR', layout.azConfigDir], ['AZURE_CORE_COLLECT_TELEMETRY', '0'], [ENV.dataDir, dataDir], [ENV.agentDataDir, layout.agentDataDir]);
  return vars;
}
