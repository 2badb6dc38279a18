import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestAuthority } from './authority.js';
import { BUILT_MAIN } from './cli.js';
import { REPO_ROOT as ROOT } from './paths.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `openmsi` CLI as a user would, against `t`'s data dir. */
export function openmsi(t: TestAuthority, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [BUILT_MAIN, ...args],
      { cwd: ROOT, env: { ...process.env, OPENMSI_DATA_DIR: t.dataDir, OPENMSI_AUTHORITY_URL: t.url, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolvePromise({ code, stdout, stderr });
      },
    );
  });
}

/** Like {@link openmsi}, but throws with stderr on a non-zero exit and parses stdout as JSON. */
export async function openmsiJson<T>(t: TestAuthority, args: string[]): Promise<T> {
  const result = await openmsi(t, args);
  if (result.code !== 0) throw new Error(`openmsi ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One plain-HTTP request to a loopback agent (never anything else). */
export function agentRequest(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<HttpAnswer> {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface AgentProcess {
  port: number;
  dataDir: string;
  child: ChildProcess;
  /** Everything the agent wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

/** The port the agent process `pid` recorded in `<dataDir>/run/agent.json` once it listens (0 before then). */
function boundAgentPort(dataDir: string, pid: number | undefined): number {
  try {
    const record = JSON.parse(readFileSync(join(dataDir, 'run', 'agent.json'), 'utf8')) as { port?: unknown; pid?: unknown };
    return record.pid === pid && typeof record.port === 'number' ? record.port : 0;
  } catch {
    return 0; // not written yet (the record is written atomically)
  }
}

/**
 * Starts `openmsi agent` as a separate process, exactly as an operator would, and waits until it answers
 * `/metadata/instance` (enrolled and serving).
 */
export async function startAgentProcess(
  t: TestAuthority,
  args: { joinToken?: string; dataDir?: string; port?: number; extra?: string[]; authorities?: string[] },
): Promise<AgentProcess> {
  // Port 0 unless asked for one: the agent binds a free port and records it in run/agent.json (read below).
  const asked = args.port ?? 0;
  const dataDir = args.dataDir ?? mkdtempSync(join(tmpdir(), 'openmsi-agent-'));
  // `--authority` for each of `authorities` (replicas, in order of preference), else `t`'s URL.
  const authorities = (args.authorities ?? [t.url]).flatMap((url) => ['--authority', url]);
  const argv = [BUILT_MAIN, 'agent', ...authorities, '--ca-file', t.caPath, '--data-dir', dataDir, '--port', String(asked)];
  if (args.joinToken !== undefined) argv.push('--join-token', args.joinToken);
  argv.push(...(args.extra ?? []));
  const child = spawn(process.execPath, argv, { cwd: ROOT, env: { ...process.env, OPENMSI_DATA_DIR: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 45_000;
  let port = asked;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`openmsi agent exited ${child.exitCode}:\n${output}`);
    if (port === 0) port = boundAgentPort(dataDir, child.pid);
    if (port !== 0) {
      try {
        const answer = await agentRequest(port, '/metadata/instance?api-version=2021-02-01', { headers: { Metadata: 'true' } });
        if (answer.status === 200) break;
      } catch {
        // not listening yet
      }
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`openmsi agent did not start within 45 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    port,
    dataDir,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The shared polling helper (test/support/poll.ts), re-exported for the suites that take it from here. */
export { until } from './poll.js';

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
