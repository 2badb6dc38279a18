/** `openmsi server --metrics-port` / `--metrics-host` through the built CLI, as an operator starts it. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/authority.js';
import { cliArgs } from '../support/cli.js';
import { runNode } from '../support/child-process.js';
import { httpGet, parseExposition } from '../support/prometheus.js';

describe('openmsi server --metrics-port', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-metrics-cli-'));
  const env = { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: '', OPENMSI_LOG_LEVEL: 'info' };
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('serves openmsi_ metrics on 127.0.0.1:<port>/metrics and says where in the ready line', async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const server = runNode(
      cliArgs('server', '--init', '--data-dir', dataDir, '--port', String(port), '--metrics-port', String(metricsPort), '--log-format', 'json'),
      env,
    );
    try {
      const ready = await server.waitForLine((line) => line.includes('openmsi server ready'), 30_000);
      assert.equal((JSON.parse(ready) as { metrics?: string }).metrics, `http://127.0.0.1:${String(metricsPort)}/metrics`);
      const scrape = await httpGet(`http://127.0.0.1:${String(metricsPort)}/metrics`);
      assert.equal(scrape.status, 200);
      const { types } = parseExposition(scrape.body);
      assert.equal(types.get('openmsi_tokens_issued_total'), 'counter');
      for (const name of types.keys()) assert.ok(name.startsWith('openmsi_'), name);
    } finally {
      server.child.kill('SIGTERM');
      await server.waitForExit(15_000).catch(() => server.stop());
    }
  });

  it('refuses --metrics-host without --metrics-port', async () => {
    const run = runNode(cliArgs('server', '--data-dir', dataDir, '--metrics-host', '0.0.0.0'), env);
    const exit = await run.waitForExit(15_000);
    assert.notEqual(exit.code, 0);
    assert.match(run.stderr(), /--metrics-host needs --metrics-port/);
  });
});
