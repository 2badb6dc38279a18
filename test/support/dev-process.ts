/**
 * `openmsi dev` as a child process of the built CLI on free ports, for the suites that drive real clients
 * against it (az, the interactive sign-in flows): started, followed until its banner says ready (bounded), and
 * stopped with SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './authority.js';
import { BUILT_MAIN } from './cli.js';
import { REPO_ROOT } from './paths.js';

export interface DevProcess {
  readonly child: ChildProcess;
  /** The server's port (the agent's and the proxy's are free ports of their own). */
  readonly port: number;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM (when still running), then its exit. */
  stop(): Promise<void>;
}

/** Starts `openmsi --data-dir DIR dev` with `env` and resolves once it is ready (60 s at most). */
export async function startDevProcess(dataDir: string, env: NodeJS.ProcessEnv): Promise<DevProcess> {
  const [port, agentPort, proxyPort] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(
    process.execPath,
    [BUILT_MAIN, '--data-dir', dataDir, 'dev', '--port', String(port), '--agent-port', String(agentPort), '--proxy-port', String(proxyPort)],
    { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdout?.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const dev: DevProcess = {
    child,
    port,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
  const deadline = Date.now() + 60_000;
  while (!output.includes('openmsi dev ready')) {
    if (child.exitCode !== null) throw new Error(`openmsi dev exited ${String(child.exitCode)}:\n${output}`);
    if (Date.now() > deadline) {
      await dev.stop();
      throw new Error(`openmsi dev not ready in 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return dev;
}
