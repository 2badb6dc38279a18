/**
 * Two `openmsi server` replicas, separate processes on one PostgreSQL database, each with its own copy of the
 * data dir and the same public URL (docs/operations.md), and an `openmsi agent` process given both
 * (`--authority A --authority B`):
 * - the agent enrols through B while A is down, keeps serving new audiences when the replica it uses is killed
 *   with SIGKILL, and goes back to A when A is ready again (read from the agent's own metrics);
 * - a role assignment removed through one replica is refused by the other within 1 s (bounded poll), both ways;
 * - a join token used at one replica is refused at the other, both ways.
 * The in-process authority `t` only prepares the installation (data dir, database, admin token); the replicas
 * under test are the two processes. Failover decisions in detail: test/agent/failover.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startTestAuthority, type TestAuthority } from '../support/authority.js';
import { cliArgs } from '../support/cli.js';
import { runNode, type FixtureProcess } from '../support/child-process.js';
import { agentRequest, startAgentProcess, type AgentProcess } from '../support/agent-process.js';
import { httpsRequest } from '../support/https.js';
import { httpGet, parseExposition, sampleValue } from '../support/prometheus.js';
import { until } from '../support/poll.js';
import { assignRole, deleteAssignment, ROLE, timeUntil } from '../rbac/authz/helpers.js';
import { putResourceGroup } from '../../src/directory/resources.js';
import { createJoinToken } from '../../src/directory/hosts.js';
import { generateHostKey } from '../../src/agent/host-credential.js';
import { HOST_API_PATHS } from '../../src/shared/host-protocol.js';

const postgresUrl = process.env['OPENMSI_TEST_POSTGRES_URL'];
const GROUP = 'failover';
const ARM = 'https://management.azure.com/';

/** One replica: its own copy of the data dir, its own loopback port, started and killed as a process. */
class Replica {
  readonly url: string;
  readonly name: string;
  readonly #dir: string;
  readonly #port: number;
  readonly #t: TestAuthority;
  #process: FixtureProcess | undefined;
  constructor(name: string, dir: string, port: number, t: TestAuthority) {
    this.name = name;
    this.#dir = dir;
    this.#port = port;
    this.#t = t;
    this.url = `https://127.0.0.1:${String(port)}`;
  }

  async start(): Promise<void> {
    const env = { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: '', OPENMSI_DATA_DIR: '', OPENMSI_LOG_LEVEL: '' };
    // Every replica advertises the installation's one public URL (its issuer), as docs/operations.md says.
    const args = ['server', '--data-dir', this.#dir, '--store', this.#t.storeLocation, '--host', '127.0.0.1', '--port', String(this.#port)];
    this.#process = runNode(cliArgs(...args, '--public-url', this.#t.url, '--log-format', 'json'), env);
    await this.#process.waitForLine((line) => line.includes('openmsi server ready'), 60_000);
  }

  /** `kill -9`: no shutdown, connections reset. */
  async kill(): Promise<void> {
    await this.#process?.stop();
    this.#process = undefined;
  }
}

describe(
  'agent failover across two server replicas on PostgreSQL',
  { skip: postgresUrl ? false : 'OPENMSI_TEST_POSTGRES_URL not set', timeout: 300_000 },
  () => {
    let t: TestAuthority;
    let a: Replica;
    let b: Replica;
    let agent: AgentProcess | undefined;
    let metricsPort: number;
    const dirs: string[] = [];

    before(async () => {
      t = await startTestAuthority({ backend: 'postgres' });
      const replica = async (name: string) => {
        const dir = mkdtempSync(join(tmpdir(), `openmsi-replica-${name}-`));
        dirs.push(dir);
        cpSync(t.dataDir, dir, { recursive: true });
        return new Replica(name, dir, await freePort(), t);
      };
      a = await replica('a');
      b = await replica('b');
      await Promise.all([a.start(), b.start()]);
      await putResourceGroup(t.ctx.store, { subscriptionId: t.subscriptionId, name: GROUP, location: 'local', clock: t.ctx.clock });
    });
    after(async () => {
      await agent?.stop();
      await a.kill();
      await b.kill();
      await t.close();
      for (const dir of [...dirs, ...(agent === undefined ? [] : [agent.dataDir])]) rmSync(dir, { recursive: true, force: true });
    });

    const joinToken = async (name: string) =>
      (await createJoinToken(t.ctx.store, { subscriptionId: t.subscriptionId, resourceGroup: GROUP, name, createdBy: t.admin.objectId, clock: t.ctx.clock }))
        .token;

    /** A token from the agent for a new audience each time (a cache miss: the agent must reach an authority). */
    const tokenFor = async (resource: string) => {
      const answer = await agentRequest(agent!.port, `/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent(resource)}`, {
        headers: { Metadata: 'true' },
      });
      return { status: answer.status, token: answer.status === 200 ? (JSON.parse(answer.body) as { access_token: string }).access_token : answer.body };
    };

    /** The agent's own view: the index of the authority in use (0 = A, 1 = B) and its switch counters. */
    const agentMetrics = async () => {
      const { samples } = parseExposition((await httpGet(`http://127.0.0.1:${String(metricsPort)}/metrics`)).body);
      const inUse = samples.find((s) => s.name === 'openmsi_agent_authority_in_use' && s.value === 1)?.labels['index'];
      return {
        inUse,
        failovers: sampleValue(samples, 'openmsi_agent_authority_failovers_total', {}),
        returns: sampleValue(samples, 'openmsi_agent_authority_returns_total', {}),
      };
    };
    const untilInUse = (index: string) =>
      until(`the agent using authority ${index}`, async () => ((await agentMetrics()).inUse === index ? true : undefined), 60_000, 250);

    it('enrols through B while A is down, serves new audiences through B when A is killed, and goes back to A when it is ready', async (ctx) => {
      await a.kill();
      metricsPort = await freePort();
      agent = await startAgentProcess(t, {
        joinToken: await joinToken('failover-host'),
        authorities: [a.url, b.url],
        extra: ['--metrics-port', String(metricsPort), '--poll-interval', '1'],
      });
      const record = JSON.parse(readFileSync(join(agent.dataDir, 'host-credential.json'), 'utf8')) as { authorityUrl: string; authorityUrls?: string[] };
      assert.equal(record.authorityUrl, a.url, 'A stays the preferred authority');
      assert.deepEqual(record.authorityUrls, [a.url, b.url]);
      assert.equal((await tokenFor('https://one.example')).status, 200);
      assert.equal((await agentMetrics()).inUse, '1', 'enrolled and served through B');

      await a.start();
      await untilInUse('0');
      assert.equal((await tokenFor('https://two.example')).status, 200);

      // The replica not in use dies and comes back: nothing changes for the agent.
      await b.kill();
      assert.equal((await tokenFor('https://three.example')).status, 200);
      await b.start();

      // The replica in use dies (its keep-alive connections with it).
      const cached = await tokenFor('https://one.example');
      await a.kill();
      const failoverStart = Date.now();
      const fresh = await tokenFor('https://four.example');
      ctx.diagnostic(`the first new audience after A was killed: served through B in ${String(Date.now() - failoverStart)} ms`);
      assert.equal(fresh.status, 200, fresh.token);
      assert.equal((await agentMetrics()).inUse, '1');
      assert.equal((await tokenFor('https://one.example')).token, cached.token, 'cached tokens keep serving');
      // B verifies the token A's installation issued through it (one issuer): the agent's tokens work everywhere.
      const arm = await tokenFor(ARM);
      assert.equal(arm.status, 200);
      const list = await httpsRequest(`${b.url}/subscriptions?api-version=2022-12-01`, { ca: t.caPem, headers: { authorization: `Bearer ${arm.token}` } });
      assert.equal(list.status, 200, list.body);

      await a.start();
      const backStart = Date.now();
      await untilInUse('0');
      ctx.diagnostic(`back on A ${String(Date.now() - backStart)} ms after it was ready again (probe backoff 1 s … 30 s)`);
      assert.equal((await tokenFor('https://five.example')).status, 200);
      const counts = await agentMetrics();
      assert.ok(counts.failovers >= 2, `failovers ${String(counts.failovers)}`);
      assert.ok(counts.returns >= 2, `returns ${String(counts.returns)}`);
    });

    it('a role assignment removed through one replica is refused by the other within 1 s, both ways', async (ctx) => {
      assert.ok(agent !== undefined, 'the agent of the first test runs');
      const hostId = (JSON.parse(readFileSync(join(agent.dataDir, 'host-credential.json'), 'utf8')) as { hostResourceId: string }).hostResourceId;
      const principal = (await t.ctx.store.resources.get(hostId))?.systemPrincipalId;
      assert.ok(principal !== undefined && principal !== null);
      const token = (await tokenFor(ARM)).token;
      const admin = await t.adminToken(ARM);
      const scope = `/subscriptions/${t.subscriptionId}/resourceGroups/${GROUP}`;
      const readAt = async (replica: Replica) =>
        (await httpsRequest(`${replica.url}${scope}?api-version=2021-04-01`, { ca: t.caPem, headers: { authorization: `Bearer ${token}` } })).status;

      for (const [from, to] of [
        [a, b],
        [b, a],
      ] as const) {
        const id = await assignRole({ ...t, url: from.url }, admin, scope, ROLE.Reader, principal, 'ServicePrincipal');
        await until(`the assignment made through ${from.name} allowed at ${to.name}`, async () => ((await readAt(to)) === 200 ? true : undefined), 10_000, 50);
        await deleteAssignment({ ...t, url: from.url }, admin, scope, id);
        const took = await timeUntil(async () => (await readAt(to)) === 403, 1500, 10);
        ctx.diagnostic(`removed through ${from.name}: refused by ${to.name} after ${String(took)} ms`);
        assert.ok(took !== undefined && took <= 1000, `refused by ${to.name} after ${String(took)} ms (bound 1000 ms)`);
      }
    });

    it('a join token used at one replica is refused at the other, both ways', async () => {
      const enrol = async (replica: Replica, token: string) => {
        const { publicJwk } = await generateHostKey();
        const answer = await httpsRequest(`${replica.url}${HOST_API_PATHS.enrol}`, {
          method: 'POST',
          ca: t.caPem,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ joinToken: token, publicJwk }),
        });
        return { status: answer.status, code: answer.status === 201 ? undefined : answer.json<{ error: { code: string } }>().error.code };
      };
      for (const [first, second, name] of [
        [a, b, 'once-a'],
        [b, a, 'once-b'],
      ] as const) {
        const token = await joinToken(name);
        assert.equal((await enrol(first, token)).status, 201);
        assert.deepEqual(await enrol(second, token), { status: 401, code: 'JoinTokenUsed' });
      }
    });
  },
);
