/** What the real-client suites share: the proxy that keeps clients on loopback, probes, `.env` parsing. */
import { execFileSync } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';

/** Anything not on loopback goes to a closed loopback port and fails: nothing leaves the machine. */
export const DEAD_PROXY = {
  HTTPS_PROXY: 'http://127.0.0.1:9',
  HTTP_PROXY: 'http://127.0.0.1:9',
  https_proxy: 'http://127.0.0.1:9',
  http_proxy: 'http://127.0.0.1:9',
  NO_PROXY: '127.0.0.1,localhost',
  no_proxy: '127.0.0.1,localhost',
} as const;

/**
 * Every proxy variable, in both spellings, sending all but loopback and `*.localhost` to `proxyUrl` (a
 * {@link refusingProxy}): what a client in its own process gets, so a request off the machine is recorded.
 */
export function loopbackOnlyProxyEnv(proxyUrl: string): Record<string, string> {
  return {
    HTTPS_PROXY: proxyUrl,
    HTTP_PROXY: proxyUrl,
    https_proxy: proxyUrl,
    http_proxy: proxyUrl,
    NO_PROXY: '127.0.0.1,localhost,.localhost',
    no_proxy: '127.0.0.1,localhost,.localhost',
  };
}

/** A user-assigned identity as `openmsi identity create` prints it (the fields the client suites use). */
export interface CreatedIdentity {
  id: string;
  clientId: string;
  principalId: string;
}

/** What an SDK client fixture prints: the token (or its claims) and the secret it read, or the error. */
export interface SdkClientResult {
  ok: boolean;
  claims?: Record<string, unknown>;
  token?: string;
  value?: string;
  message?: string;
}

/** The command's trimmed stdout, or undefined when it cannot run (a client that is not installed). */
export function probe(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** The variables of `--shell dotenv` output (`NAME=value`, values optionally quoted). */
export function parseDotenv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (match === null) continue;
    const raw = match[2]!;
    env[match[1]!] = /^(['"]).*\1$/.test(raw) ? raw.slice(1, -1) : raw;
  }
  return env;
}

/** A proxy that records every request sent to it and refuses it: what would have left the machine. */
export async function refusingProxy(): Promise<{ url: string; attempts: string[]; server: Server }> {
  const attempts: string[] = [];
  const server = createServer((socket) => {
    socket.once('data', (data: Buffer) => {
      attempts.push(data.toString('latin1').split('\r\n')[0] ?? '');
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`, attempts, server };
}
