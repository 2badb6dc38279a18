// Shared by the benchmarks: CPU pinning (servers on CPU 0, the load generator on CPU 1, when `taskset`
// exists) and a free loopback port.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';

export const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
})();

/** `[cmd, args]` that run `cmd args` on `cpu` when taskset exists, else unpinned. */
export const pinned = (cpu, cmd, args) => (hasTaskset ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args]);

export function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
