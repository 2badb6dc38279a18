/**
 * `openmsi dev trust`: puts the dev CA into the system trust store (and takes it out again), saying exactly
 * which files it wrote or removed and which commands it ran, so the CLI can tell the user.
 *
 * - Debian/Ubuntu/Alpine: `/usr/local/share/ca-certificates/<name>.crt` + `update-ca-certificates`
 * - Fedora/RHEL: `/etc/pki/ca-trust/source/anchors/<name>.pem` + `update-ca-trust extract`
 * - macOS: `security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain <file>`
 *
 * Everything the module touches is injectable (filesystem root prefix, probes, command paths, the runner,
 * the root check), so tests plan and apply against a temporary directory and never this machine's store.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CodedError } from '../shared/coded-error.js';
import { writePrivateFile, writePublicFile } from '../shared/private-files.js';

/** The trust stores this module knows. */
export type TrustPlatform = 'debian' | 'rhel' | 'macos';

export type DevTrustErrorCode = 'unsupported' | 'needs-root' | 'command-failed' | 'invalid-input';

/** A failure with the steps the user can take by hand (`manualSteps`, shell lines) where there are any. */
export class DevTrustError extends CodedError<DevTrustErrorCode> {
  readonly manualSteps: string[];
  constructor(code: DevTrustErrorCode, message: string, manualSteps: string[] = [], options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'DevTrustError';
    this.manualSteps = manualSteps;
  }
}

export interface DevTrustOptions {
  /** A file-safe name for the anchor file, e.g. `openmsi-dev`. */
  name: string;
  /** Plan only: nothing is written or run, the result lists what would be. */
  dryRun?: boolean;
  /** Where the CA PEM lives, for the hand-run commands in errors (default `<dev CA file>`). */
  caFile?: string;
  /** Injected for tests and for the CLI's `--dry-run` on another platform; default `process.platform`. */
  platform?: NodeJS.Platform;
  /** Prefix for every system path (tests pass a temporary directory); default `/`. */
  root?: string;
  /** Whether a (root-prefixed) path exists; default `fs.existsSync`. */
  exists?: (path: string) => boolean;
  /** Runs a command, throwing on failure; default `execFileSync` with output captured. */
  run?: (command: string, args: string[]) => void;
  /** Whether this process may write the trust store; default: uid 0 (always true on macOS' dry run). */
  isRoot?: () => boolean;
  /** Command paths; defaults are the names, found on PATH. */
  commands?: { updateCaCertificates?: string; updateCaTrust?: string; security?: string };
}

/** What an install or uninstall changed (or, with `dryRun`, would change). Paths include the root prefix. */
export interface DevTrustResult {
  platform: TrustPlatform;
  dryRun: boolean;
  /** False when there was nothing to do (the same CA already installed, or nothing to remove). */
  changed: boolean;
  filesWritten: string[];
  filesRemoved: string[];
  /** Each command as argv. */
  commands: string[][];
}

const MAC_KEYCHAIN = '/Library/Keychains/System.keychain';

interface Resolved {
  platform: TrustPlatform;
  /** Anchor file (Linux), root-prefixed. */
  anchor?: string;
  update?: string[];
}

function defaultRun(command: string, args: string[]): void {
  execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
}

function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new DevTrustError('invalid-input', `openmsi dev trust: ${JSON.stringify(name)} is not a usable file name (letters, digits, . _ -)`);
  }
}

/** One CA certificate, PEM, normalised; throws when `caPem` is anything else. */
function checkCa(caPem: string): { pem: string; sha1: string } {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(caPem);
  } catch (err) {
    throw new DevTrustError('invalid-input', 'openmsi dev trust: the dev CA is not a PEM certificate', [], { cause: err });
  }
  if (!cert.ca) throw new DevTrustError('invalid-input', `openmsi dev trust: ${cert.subject} is not a CA certificate`);
  return { pem: cert.toString(), sha1: cert.fingerprint.replace(/:/g, '') };
}

/** Which trust store this system has, from the platform and the directories that exist. */
function resolveStore(o: DevTrustOptions): Resolved {
  const root = o.root ?? '/';
  const exists = o.exists ?? existsSync;
  const platform = o.platform ?? process.platform;
  const at = (p: string) => join(root, p);
  if (platform === 'darwin') return { platform: 'macos' };
  if (platform === 'linux') {
    if (exists(at('/usr/local/share/ca-certificates'))) {
      return {
        platform: 'debian',
        anchor: at(`/usr/local/share/ca-certificates/${o.name}.crt`),
        update: [o.commands?.updateCaCertificates ?? 'update-ca-certificates'],
      };
    }
    if (exists(at('/etc/pki/ca-trust/source/anchors'))) {
      return {
        platform: 'rhel',
        anchor: at(`/etc/pki/ca-trust/source/anchors/${o.name}.pem`),
        update: [o.commands?.updateCaTrust ?? 'update-ca-trust', 'extract'],
      };
    }
  }
  const file = o.caFile ?? '<dev CA file>';
  throw new DevTrustError(
    'unsupported',
    `openmsi dev trust: no supported system trust store here (${platform}; looked for /usr/local/share/ca-certificates and /etc/pki/ca-trust/source/anchors). Add ${file} to your system's trusted CAs by hand, or trust it per tool (NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE, curl --cacert), as \`openmsi dev env\` does.`,
    [],
  );
}

function isRootDefault(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Throws needs-root with the commands to run by hand, unless dry-run or root. */
function requireRoot(o: DevTrustOptions, action: string, manual: string[]): void {
  if (o.dryRun) return;
  if ((o.isRoot ?? isRootDefault)()) return;
  throw new DevTrustError(
    'needs-root',
    `openmsi dev trust: ${action} needs root; rerun with sudo, or run these yourself:\n${manual.map((l) => `  ${l}`).join('\n')}`,
    manual,
  );
}

function runStep(o: DevTrustOptions, argv: string[]): void {
  try {
    (o.run ?? defaultRun)(argv[0]!, argv.slice(1));
  } catch (err) {
    const stderr = (err as { stderr?: Buffer | string }).stderr?.toString().trim();
    throw new DevTrustError('command-failed', `openmsi dev trust: \`${argv.join(' ')}\` failed: ${stderr || (err as Error).message}`, [], { cause: err });
  }
}

/** Writes `path` atomically with mode 0644: a trust anchor is public, read by every user's TLS clients. */
function writeAnchor(path: string, pem: string): void {
  try {
    writePublicFile(path, pem);
  } catch (err) {
    throw new DevTrustError('command-failed', `openmsi dev trust: cannot write ${path}: ${(err as Error).message}`, [], { cause: err });
  }
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Installs the dev CA in the system trust store. Idempotent: the same CA already in place changes nothing.
 * A failed update command takes the anchor file back out, so a retry starts clean.
 *
 * @throws DevTrustError `unsupported` (with what to do by hand), `needs-root` (with the commands for sudo),
 *   `command-failed`, or `invalid-input` (a bad name or PEM).
 */
export function installDevCa(options: DevTrustOptions & { caPem: string }): DevTrustResult {
  checkName(options.name);
  const ca = checkCa(options.caPem);
  const store = resolveStore(options);
  const dryRun = options.dryRun ?? false;
  const file = options.caFile ?? '<dev CA file>';

  if (store.platform === 'macos') {
    const security = options.commands?.security ?? 'security';
    const argv = [security, 'add-trusted-cert', '-d', '-r', 'trustRoot', '-k', MAC_KEYCHAIN, file];
    requireRoot(options, `adding the dev CA to ${MAC_KEYCHAIN}`, [`sudo ${argv.join(' ')}`]);
    if (dryRun) return { platform: 'macos', dryRun, changed: true, filesWritten: [], filesRemoved: [], commands: [argv] };
    // security reads a file; write the PEM to a private temp file when the caller gave none.
    const tmpDir = options.caFile === undefined ? mkdtempSync(join(tmpdir(), 'openmsi-trust-')) : undefined;
    try {
      const path = options.caFile ?? join(tmpDir!, `${options.name}.pem`);
      if (tmpDir) writePrivateFile(path, ca.pem);
      const real = [security, 'add-trusted-cert', '-d', '-r', 'trustRoot', '-k', MAC_KEYCHAIN, path];
      runStep(options, real);
      return { platform: 'macos', dryRun, changed: true, filesWritten: [], filesRemoved: [], commands: [real] };
    } finally {
      if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
    }
  }

  const anchor = store.anchor!;
  const update = store.update!;
  if (readOrUndefined(anchor) === ca.pem) {
    return { platform: store.platform, dryRun, changed: false, filesWritten: [], filesRemoved: [], commands: [] };
  }
  requireRoot(options, `writing ${anchor} and running ${update.join(' ')}`, [`sudo install -m 0644 ${file} ${anchor}`, `sudo ${update.join(' ')}`]);
  if (dryRun) return { platform: store.platform, dryRun, changed: true, filesWritten: [anchor], filesRemoved: [], commands: [update] };
  const previous = readOrUndefined(anchor);
  writeAnchor(anchor, ca.pem);
  try {
    runStep(options, update);
  } catch (err) {
    if (previous === undefined) rmSync(anchor, { force: true });
    else writeAnchor(anchor, previous);
    throw err;
  }
  return { platform: store.platform, dryRun, changed: true, filesWritten: [anchor], filesRemoved: [], commands: [update] };
}

/**
 * Takes the dev CA out of the system trust store. On Linux it removes the anchor file `name` names (nothing to
 * do when it is absent); on macOS it deletes the certificate with `caPem`'s SHA-1 from the System keychain.
 *
 * @throws DevTrustError as {@link installDevCa}; `invalid-input` on macOS without `caPem`.
 */
export function uninstallDevCa(options: DevTrustOptions & { caPem?: string }): DevTrustResult {
  checkName(options.name);
  const store = resolveStore(options);
  const dryRun = options.dryRun ?? false;

  if (store.platform === 'macos') {
    if (options.caPem === undefined)
      throw new DevTrustError('invalid-input', 'openmsi dev trust: removing the dev CA from the keychain needs the CA certificate (to find it by fingerprint)');
    const { sha1 } = checkCa(options.caPem);
    const argv = [options.commands?.security ?? 'security', 'delete-certificate', '-Z', sha1, '-t', MAC_KEYCHAIN];
    requireRoot(options, `removing the dev CA from ${MAC_KEYCHAIN}`, [`sudo ${argv.join(' ')}`]);
    if (!dryRun) runStep(options, argv);
    return { platform: 'macos', dryRun, changed: true, filesWritten: [], filesRemoved: [], commands: [argv] };
  }

  const anchor = store.anchor!;
  const update = store.update!;
  if (!(options.exists ?? existsSync)(anchor)) {
    return { platform: store.platform, dryRun, changed: false, filesWritten: [], filesRemoved: [], commands: [] };
  }
  // update-ca-certificates needs --fresh to drop the hashed link of a removed anchor reliably.
  const refresh = store.platform === 'debian' ? [...update, '--fresh'] : update;
  requireRoot(options, `removing ${anchor} and running ${refresh.join(' ')}`, [`sudo rm ${anchor}`, `sudo ${refresh.join(' ')}`]);
  if (!dryRun) {
    try {
      rmSync(anchor);
    } catch (err) {
      throw new DevTrustError('command-failed', `openmsi dev trust: cannot remove ${anchor}: ${(err as Error).message}`, [], { cause: err });
    }
    runStep(options, refresh);
  }
  return { platform: store.platform, dryRun, changed: true, filesWritten: [], filesRemoved: [anchor], commands: [refresh] };
}
