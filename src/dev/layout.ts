/**
 * Where `openmsi dev` keeps its state: the server's data dir (the CLI's default, `~/.openmsi`, so every other
 * command finds it with no flag), and inside it the agent's data dir, the combined CA bundle, the az config
 * dir and the record of the running `openmsi dev`.
 */
import { join } from 'node:path';
import { dataDirLayout } from '../shared/data-dir.js';
import { readLiveProcessRecord, removeProcessRecord, writeProcessRecord, type ProcessRecord } from '../shared/process-record.js';

/** The dev stack's fixed names. */
export const DEV_NAMES = {
  resourceGroup: 'dev',
  userAssignedIdentity: 'dev-app',
  vault: 'dev',
  sampleSecret: 'sample-secret',
  sampleValue: 'Hello from the openmsi dev vault',
  azCloud: 'openmsi-dev',
} as const;

/** Ports `openmsi dev` uses unless told otherwise (the agent's is Azure's IMDS-compatible 50342). */
export const DEV_PORTS = { server: 8443, agent: 50342, proxy: 50343 } as const;

export interface DevLayout {
  root: string;
  agentDataDir: string;
  /** System CAs plus the dev CA: REQUESTS_CA_BUNDLE replaces Python's and az's bundle. */
  caBundle: string;
  /** AZURE_CONFIG_DIR for az against the dev stack (its cloud, login and version-check file). */
  azConfigDir: string;
  /** The cloud config `openmsi dev az-cloud` gives az (`--cloud-config @file`): the endpoints no flag sets. */
  azCloudConfig: string;
  /** `dev/user.json` (0600): your dev user's name and password, which nothing prints unasked. */
  devUser: string;
  /** `run/dev.json`: the running `openmsi dev` (pid, ports). */
  running: string;
  caCert: string;
}

export function devLayout(dataDir: string): DevLayout {
  return {
    root: dataDir,
    agentDataDir: join(dataDir, 'agent'),
    caBundle: join(dataDir, 'dev', 'ca-bundle.pem'),
    azConfigDir: join(dataDir, 'dev', 'az'),
    azCloudConfig: join(dataDir, 'dev', 'az-cloud.json'),
    devUser: join(dataDir, 'dev', 'user.json'),
    running: join(dataDir, 'run', 'dev.json'),
    caCert: dataDirLayout(dataDir).caCert,
  };
}

/** What a running `openmsi dev` records: the server's origin and the ports of everything it serves. */
export interface RunningDev extends ProcessRecord {
  agentPort: number;
  proxyPort: number | null;
  vaultUri: string;
}

export function writeRunningDev(dataDir: string, record: Omit<RunningDev, 'pid' | 'startedAt'>): void {
  writeProcessRecord(devLayout(dataDir).running, { ...record, pid: process.pid, startedAt: new Date().toISOString() });
}

export function removeRunningDev(dataDir: string): void {
  removeProcessRecord(devLayout(dataDir).running);
}

/** The `openmsi dev` running on this data dir, if one is (a record left by a dead process is ignored). */
export function readRunningDev(dataDir: string): (RunningDev & { path: string }) | undefined {
  return readLiveProcessRecord(devLayout(dataDir).running, (raw, common) => {
    const { agentPort, proxyPort, vaultUri } = raw;
    if (typeof agentPort !== 'number' || (proxyPort !== null && typeof proxyPort !== 'number') || typeof vaultUri !== 'string') return undefined;
    return { ...common, agentPort, proxyPort, vaultUri };
  });
}
