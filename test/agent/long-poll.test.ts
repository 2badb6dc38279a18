/**
 * The agent against the real authority's `self` long poll (no store shortcut): an identity removed from the host
 * is refused by the agent well under a second after the change, with the interval poll set far beyond that, so
 * only the long poll can have carried the news.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { createTestHost, startAgentIn, IMDS_PATH, VAULT, type TestAgent, type TestHost } from '../support/world.js';
import { putResource } from '../../src/directory/resources.js';
import { until } from '../support/poll.js';

const META = { metadata: 'true' };
const imds = (selector: string) => `${IMDS_PATH}?api-version=2018-02-01&resource=${encodeURIComponent(VAULT)}${selector}`;

void describe('agent long poll against the authority', () => {
  let t: TestAuthority;
  let host: TestHost;
  let a: TestAgent;

  before(async () => {
    t = await startTestAuthority();
    host = await createTestHost(t, 'long-polled');
    // The interval poll (used only without the long poll) is a minute: a prompt refusal must come from the long poll.
    a = await startAgentIn(host.dataDir, { identityPollMs: 60_000 });
  });
  after(async () => {
    await a?.agent.close();
    await t?.close();
    host?.cleanup();
  });

  void it('an identity removed from the host is refused within a second, cached tokens included', async () => {
    const sel = `&client_id=${host.uami2.clientId}`;
    assert.equal((await a.get(imds(sel), META)).status, 200);
    await until('the first long poll to wait', () => (a.agent.identities.host?.version !== undefined ? true : undefined), 5000, 10);
    const started = performance.now();
    // Detach the second identity, as `az vm identity remove` does (a PUT of the machine).
    const machine = (await t.ctx.store.resources.get(host.hostId))!;
    await putResource(t.ctx.store, {
      subscriptionId: t.subscriptionId,
      resourceGroup: host.resourceGroup,
      type: 'Microsoft.HybridCompute/machines',
      name: host.name,
      identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [host.uami.id]: {} } },
      properties: machine.properties,
      clock: t.ctx.clock,
    });
    await until('the agent to refuse the removed identity', async () => ((await a.get(imds(sel), META)).status === 400 ? true : undefined), 5000, 10);
    const measured = performance.now() - started;
    assert.ok(measured < 1000, `refused ${measured.toFixed(0)} ms after the change`);
    assert.ok(a.agent.identities.longPolls >= 1);
    process.stdout.write(`agent refused a removed identity ${measured.toFixed(1)} ms after the change (long poll)\n`);
    assert.equal((await a.get(imds(`&client_id=${host.uami.clientId}`), META)).status, 200, 'the other identity keeps working');
  });
});
