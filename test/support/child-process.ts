/**
 * Runs a TypeScript fixture script in a child process (`node --import tsx <script>`) and follows its stdout
 * line by line. Every wait is bounded; `stop()` SIGKILLs a child that is still running.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { withinOrFail } from './poll.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface FixtureExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface FixtureProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Complete stdout lines received so far (a trailing partial line is never included). */
  readonly lines: readonly string[];
  stderr(): string;
  /** Resolves with the first line (already received or still to come) matching `predicate`. */
  waitForLine(predicate: (line: string) => boolean, timeoutMs: number): Promise<string>;
  /** Resolves once the child has exited and its output has been fully read. */
  readonly closed: Promise<FixtureExit>;
  /** Waits (bounded) for the child to exit by itself; rejects on timeout, leaving it running. */
  waitForExit(timeoutMs: number): Promise<FixtureExit>;
  /** SIGKILLs the child if it is still running and waits (bounded) for it to close. */
  stop(timeoutMs?: number): Promise<FixtureExit>;
}

/** Starts `test/support/<script>` with `args`. */
export function runFixture(script: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): FixtureProcess {
  const path = fileURLToPath(new URL(`./${script}`, import.meta.url));
  return runNode(['--import', 'tsx', path, ...args], env);
}

/** Starts `node ...argv` (a built script: no tsx) and follows it as {@link runFixture} does. */
export function runNode(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): FixtureProcess {
  const script = argv.find((arg) => !arg.startsWith('-') && arg !== 'tsx') ?? 'node';
  const child = spawn(process.execPath, argv, { cwd: repoRoot, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  let exit: FixtureExit | undefined;
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const listener of [...listeners]) listener();
  };

  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      lines.push(partial.slice(0, nl));
      partial = partial.slice(nl + 1);
    }
    notify();
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    // Keep the tail only: enough to explain a failure.
    stderr = (stderr + chunk).slice(-8000);
  });
  const closed = new Promise<FixtureExit>((resolve) => {
    child.on('close', (code, signal) => {
      exit = { code, signal };
      notify();
      resolve(exit);
    });
  });
  // A spawn failure also ends in 'close'; keep the error from being thrown as unhandled.
  child.on('error', (err) => {
    stderr += `\nspawn error: ${err.message}`;
  });

  // stderr as it is when the bound runs out, not when the wait began.
  const closedWithin = (timeoutMs: number, message: string): Promise<FixtureExit> => withinOrFail(closed, timeoutMs, () => `${message}; stderr:\n${stderr}`);

  return {
    child,
    lines,
    stderr: () => stderr,
    closed,
    waitForLine(predicate, timeoutMs) {
      return new Promise<string>((resolve, reject) => {
        let scanned = 0;
        const check = (): void => {
          for (; scanned < lines.length; scanned++) {
            const line = lines[scanned]!;
            if (predicate(line)) {
              finish();
              resolve(line);
              return;
            }
          }
          if (exit !== undefined) {
            finish();
            reject(new Error(`fixture ${script} exited (code ${exit.code}, signal ${exit.signal}) before the expected line; stderr:\n${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`fixture ${script}: no expected line within ${timeoutMs} ms; stdout so far:\n${lines.slice(-5).join('\n')}\nstderr:\n${stderr}`));
        }, timeoutMs);
        const finish = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    waitForExit(timeoutMs) {
      return closedWithin(timeoutMs, `fixture ${script} did not exit within ${timeoutMs} ms`);
    },
    stop(timeoutMs = 10_000) {
      if (exit === undefined) child.kill('SIGKILL');
      return closedWithin(timeoutMs, `fixture ${script} did not exit within ${timeoutMs} ms of SIGKILL`);
    },
  };
}
