import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT as ROOT } from '../support/paths.js';
import { BUILT_MAIN } from '../support/cli.js';

const RECORDER = pathToFileURL(join(ROOT, 'test', 'support', 'module-recorder.mjs')).href;

/** Libraries only a running server, agent or dev stack needs: together about half a second of start-up. */
const SERVER_LIBRARIES = ['fastify', 'pino', 'pino-pretty', 'kysely', 'pg', 'better-sqlite3', '@peculiar/x509', 'yaml'];

/** The npm packages whose modules `openmsi <args>` loaded. */
function packagesLoaded(args: string[]): Set<string> {
  const dir = mkdtempSync(join(tmpdir(), 'openmsi-startup-'));
  const record = join(dir, 'modules.txt');
  try {
    // The exit status is not the point (`server` on an empty data dir fails once it has loaded the server).
    spawnSync(process.execPath, ['--import', RECORDER, BUILT_MAIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, OPENMSI_MODULE_RECORD: record, OPENMSI_DATA_DIR: dir },
      stdio: 'ignore',
      timeout: 30_000,
    });
    const packages = new Set<string>();
    for (const url of readFileSync(record, 'utf8').split('\n')) {
      const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
      if (match?.[1] !== undefined) packages.add(match[1]);
    }
    return packages;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('CLI start-up', () => {
  for (const args of [
    ['--help'],
    ['group', 'list', '--help'],
    ['keyvault', 'secret', 'show', '--help'],
    ['keyvault', 'key', 'sign', '--help'],
    ['dev', 'env', '--help'],
    ['server', '--help'],
    ['agent', '--help'],
  ]) {
    it(`openmsi ${args.join(' ')} loads no server-side library (they load when a server, agent or dev stack starts)`, () => {
      const loaded = packagesLoaded(args);
      assert.ok(loaded.has('commander'), `the recorder saw the CLI's own imports (got ${[...loaded].join(', ')})`);
      assert.deepEqual(
        SERVER_LIBRARIES.filter((name) => loaded.has(name)),
        [],
      );
    });
  }

  it('the server command does load them when it runs (the recorder sees lazily imported modules)', () => {
    // `server` on a data dir that does not exist fails after importing the server: proof the lazy path is real.
    const loaded = packagesLoaded(['server']);
    assert.ok(loaded.has('fastify') && loaded.has('kysely'), `got ${[...loaded].join(', ')}`);
  });
});
