/**
 * Environment variables as a shell reads them (`eval "$(openmsi dev env)"`, `openmsi agent env`), and the
 * combined CA bundle that `REQUESTS_CA_BUNDLE` needs.
 */
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { writePrivateFile } from '../shared/private-files.js';

/** The formats {@link formatEnvironment} writes. */
export type EnvShell = 'bash' | 'zsh' | 'fish' | 'powershell' | 'dotenv';

/** Every {@link EnvShell}, for CLI choices. */
export const ENV_SHELLS: readonly EnvShell[] = ['bash', 'zsh', 'fish', 'powershell', 'dotenv'];

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** dotenv values that every dialect (npm dotenv, Node's --env-file, python-dotenv, docker --env-file) reads verbatim unquoted. */
const DOTENV_BARE = /^[A-Za-z0-9_./:@%+,=-]*$/;

/** POSIX single quotes: nothing inside is special; a `'` closes, is escaped, and reopens. */
function posixQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * dotenv has no quoting all parsers agree on, so pick the form that reads the same everywhere: bare for safe
 * values, single quotes (literal in npm dotenv and Node; python-dotenv decodes only `\\` and `\'`), double
 * quotes (Node expands only `\n`; python-dotenv expands escapes and `${VAR}`), else refuse.
 */
function dotenvValue(name: string, value: string): string {
  if (DOTENV_BARE.test(value)) return value;
  if (!/['\\\r\n]/.test(value)) return `'${value}'`;
  if (!/["\\$\r\n]/.test(value)) return `"${value}"`;
  throw new Error(
    `formatEnvironment(): ${name}'s value cannot be written portably in dotenv format (it mixes quotes, backslashes or newlines); use --shell bash`,
  );
}

/**
 * Renders `vars` as lines the shell evaluates to exactly these values, whatever characters they hold.
 *
 * @throws Error when a name is not a valid variable name, a value contains NUL (no environment can hold it),
 *   or (dotenv only) a value has no portable dotenv spelling.
 */
export function formatEnvironment(vars: readonly (readonly [string, string])[], shell: EnvShell): string {
  return vars
    .map(([name, value]) => {
      if (!NAME.test(name)) throw new Error(`formatEnvironment(): ${JSON.stringify(name)} is not a valid environment variable name`);
      if (value.includes('\0')) throw new Error(`formatEnvironment(): ${name}'s value contains a NUL byte`);
      switch (shell) {
        case 'bash':
        case 'zsh':
          return `export ${name}=${posixQuote(value)}`;
        case 'fish':
          // In fish single quotes only \\ and \' are escapes.
          return `set -gx ${name} '${value.replace(/[\\']/g, '\\$&')}';`;
        case 'powershell':
          // PowerShell also closes single-quoted strings on the typographic quotes; doubling escapes each.
          return `$env:${name} = '${value.replace(/['\u2018\u2019\u201A\u201B]/g, '$&$&')}'`;
        case 'dotenv':
          return `${name}=${dotenvValue(name, value)}`;
        default:
          throw new Error(`formatEnvironment(): unknown shell ${JSON.stringify(shell)} (one of ${ENV_SHELLS.join(', ')})`);
      }
    })
    .join('\n');
}

/** The shell to format for when the user names none: PowerShell on Windows, else `$SHELL`'s zsh or fish, else bash. */
export function defaultShell(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): EnvShell {
  if (platform === 'win32') return 'powershell';
  const shell = basename(env['SHELL'] ?? '');
  return shell === 'zsh' || shell === 'fish' ? shell : 'bash';
}

/**
 * Where systems keep their PEM bundle of trusted CAs, in the order {@link combinedCaBundle} tries them:
 * Debian/Ubuntu/Alpine/Arch, Fedora/RHEL, openSUSE, RHEL's extracted bundle, macOS/FreeBSD/Alpine.
 */
export const SYSTEM_CA_BUNDLES: readonly string[] = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  '/etc/ssl/cert.pem',
];

/**
 * Writes `outPath` = the first existing system bundle + the dev CA, for `REQUESTS_CA_BUNDLE` (Python requests
 * and the az CLI), which replaces the bundle rather than adding to it: the dev CA alone would break every
 * public HTTPS call. Atomic (temp file + rename in the same directory), mode 0644 (a public certificate list).
 *
 * @returns The bundle path and the system bundle it copied.
 * @throws Error naming the paths tried when no system bundle exists, or when `devCaPem` is not a PEM certificate.
 */
export function combinedCaBundle(systemBundlePaths: readonly string[], devCaPem: string, outPath: string): { path: string; systemBundle: string } {
  if (!devCaPem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('combinedCaBundle(): the dev CA is not a PEM certificate');
  const systemBundle = systemBundlePaths.find((p) => existsSync(p));
  if (systemBundle === undefined) {
    throw new Error(
      `combinedCaBundle(): no system CA bundle found (tried ${systemBundlePaths.join(', ')}); point REQUESTS_CA_BUNDLE at a bundle that holds your system CAs plus the dev CA`,
    );
  }
  let system: string;
  try {
    system = readFileSync(systemBundle, 'utf8');
  } catch (err) {
    throw new Error(`combinedCaBundle(): cannot read ${systemBundle}: ${(err as Error).message}`, { cause: err });
  }
  const body = `${system}${system.endsWith('\n') || system === '' ? '' : '\n'}# openmsi dev CA\n${devCaPem.trimEnd()}\n`;
  const tmp = `${outPath}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writePrivateFile(tmp, body, { flag: 'wx' });
    renameSync(tmp, outPath);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new Error(`combinedCaBundle(): cannot write ${outPath}: ${(err as Error).message}`, { cause: err });
  }
  return { path: outPath, systemBundle };
}
