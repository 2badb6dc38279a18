import { readFileSync } from 'node:fs';
import { join } from 'node:path';

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

/** The contents of `admin.json`: a client-credentials identity allowed to use the management API. */
export interface AdminCredentialFile {
  tenantId: string;
  clientId: string;
  objectId: string;
  clientSecret: string;
}

/** A problem with one file of the data dir; the message names the file and says what to do. */
export class DataDirError extends Error {
  override readonly name = 'DataDirError';
  /** The file (or directory) the problem is about. */
  readonly path: string;

  constructor(path: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.path = path;
  }
}

/**
 * Reads a data-dir file as text; a missing or unreadable file becomes a {@link DataDirError} naming it.
 * `missing` is the whole message for a file that does not exist (what it means, and what to do).
 */
export function readDataDirFile(path: string, hints: { what: string; missing: string }): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataDirError(path, hints.missing, { cause: err });
    if (code === 'EACCES') {
      throw new DataDirError(path, `cannot read ${hints.what} at ${path}: permission denied; run openmsi as the user who ran \`openmsi init\``, { cause: err });
    }
    throw new DataDirError(path, `cannot read ${hints.what} at ${path}: ${(err as Error).message}`, { cause: err });
  }
}
