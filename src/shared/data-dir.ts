import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Where one openmsi installation keeps its state. Everything secret in here is either mode 0600 or
 * encrypted under the master key.
 */
export interface DataDirLayout {
  root: string;
  /** Non-secret settings written by `openmsi init` (tenant, subscription, listen address, store). */
  config: string;
  /** 32-byte master key, base64, mode 0600 (unless OPENMSI_MASTER_KEY is set). */
  masterKey: string;
  /** The bootstrap admin credential, mode 0600. */
  adminCredential: string;
  /** CA certificate, PEM (public). */
  caCert: string;
  /** CA private key, encrypted under the master key. */
  caKey: string;
  /** TLS server certificate chain, PEM (public). */
  serverCert: string;
  /** TLS server private key, encrypted under the master key. */
  serverKey: string;
  /** The embedded SQLite store. */
  sqlite: string;
  /** Written by a running authority (its advertised URL and pid), removed when it stops cleanly. */
  runningAuthority: string;
}

/** Resolves the data dir: the explicit option, then OPENMSI_DATA_DIR, then ~/.openmsi. */
export function resolveDataDir(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(explicit ?? env['OPENMSI_DATA_DIR'] ?? join(homedir(), '.openmsi'));
}

export function dataDirLayout(root: string): DataDirLayout {
  return {
    root,
    config: join(root, 'config.json'),
    masterKey: join(root, 'master.key'),
    adminCredential: join(root, 'admin.json'),
    caCert: join(root, 'ca', 'ca.pem'),
    caKey: join(root, 'ca', 'ca.key.enc'),
    serverCert: join(root, 'tls', 'server.pem'),
    serverKey: join(root, 'tls', 'server.key.enc'),
    sqlite: join(root, 'store', 'openmsi.db'),
    runningAuthority: join(root, 'run', 'authority.json'),
  };
}

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
  /** Access-token lifetime in seconds (default 3600, at most 86400). */
  tokenLifetimeSeconds: number;
}

/** The contents of `admin.json`: a client-credentials identity allowed to use the management API. */
export interface AdminCredentialFile {
  tenantId: string;
  clientId: string;
  objectId: string;
  clientSecret: string;
}
