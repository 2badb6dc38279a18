import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { probe } from '../../support/clients.js';

const run = promisify(execFile);
const SCENARIO = new URL('./fixtures/imds-link-local-scenario.ts', import.meta.url).pathname;

// A network namespace of its own (root, unshare) with iptables' nat table: .ci/run installs iptables.
const skip =
  process.getuid?.() !== 0
    ? 'needs root to make a network namespace'
    : probe('unshare', ['--net', 'sh', '-c', 'iptables -t nat -L -n >/dev/null && echo ok']) !== 'ok'
      ? 'unshare --net with iptables (nat) is not available (apt-get install iptables)'
      : false;

void describe('IMDS at its real address, 169.254.169.254:80, as code on an Azure VM reaches it', { skip }, () => {
  void it('an unchanged ManagedIdentityCredential() with no environment variables gets the machine identity through the documented DNAT rules', async () => {
    const { stdout } = await run('unshare', ['--net', process.execPath, '--import', 'tsx', SCENARIO], { timeout: 170_000, maxBuffer: 1 << 20 });
    const summary = JSON.parse(stdout) as { oid: string; aud: string; tid: string; expectedOid: string; tenantId: string };
    assert.equal(summary.oid, summary.expectedOid);
    assert.equal(summary.aud, 'https://vault.azure.net');
    assert.equal(summary.tid, summary.tenantId);
  });
});
