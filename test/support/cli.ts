/**
 * The one way tests start the `openmsi` CLI: the built one (dist/cli/main.js), as `npm install` links it.
 * scripts/run-tests.mjs builds it before any test file runs. Through tsx the source takes about a second more
 * to start, and tests start the CLI hundreds of times.
 */
import { join } from 'node:path';
import { REPO_ROOT as ROOT } from './paths.js';

/** The built CLI's entry point. */
export const BUILT_MAIN = join(ROOT, 'dist', 'cli', 'main.js');

/** `node <built CLI> ...args`, as an argv for spawn/execFile with `process.execPath`. */
export function cliArgs(...args: string[]): string[] {
  return [BUILT_MAIN, ...args];
}

/** A POSIX shell script that runs the built CLI with its arguments: for a PATH directory named `openmsi`. */
export function cliShim(): string {
  return `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(BUILT_MAIN)} "$@"\n`;
}
