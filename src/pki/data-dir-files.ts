/** Reading the data dir's certificates and encrypted keys, with errors that name the file and what to do. */
import { DataDirError, readDataDirFile } from '../shared/data-dir.js';
import { ENV } from '../shared/config.js';
import type { MasterKey } from './master-key.js';

const REINIT = 'restore it from a backup of the data dir (without one, move the data dir aside and run `openmsi init` again: that makes a new directory)';

/** A PEM file of the data dir (`ca/ca.pem`, `tls/server.pem`) that must hold at least one `label` block. */
export function readDataDirPem(path: string, what: string, label: string): string {
  const text = readDataDirFile(path, { what, missing: `${what} is missing (${path}); ${REINIT}` });
  if (!text.includes(`-----BEGIN ${label}-----`)) throw new DataDirError(path, `${path} does not hold a PEM ${label.toLowerCase()} (${what}); ${REINIT}`);
  return text;
}

/** A data-dir file encrypted under the master key (`ca/ca.key.enc`, `tls/server.key.enc`), decrypted. */
export function readEncryptedDataDirFile(path: string, what: string, masterKey: MasterKey, aad: string): string {
  const blob = readDataDirFile(path, { what, missing: `${what} is missing (${path}); ${REINIT}` });
  try {
    return masterKey.decrypt(blob.trim(), aad).toString('utf8');
  } catch (err) {
    throw new DataDirError(
      path,
      `${path} (${what}) cannot be decrypted with this master key: the key is not the one \`openmsi init\` made for this data dir, or the file was changed. ` +
        `Use the data dir's own master.key (or set ${ENV.masterKey} to it), or ${REINIT}`,
      { cause: err },
    );
  }
}
