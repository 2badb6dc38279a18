/**
 * The authority pool's decisions on their own (src/agent/authority-pool.ts): calls are synthetic (the test says
 * which authority fails), readiness probes are real `GET /readyz` requests to loopback servers whose answer the
 * test sets. The agent's calls through it, on fake replicas: failover.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AuthorityPool, type AuthoritySwitch } from '../../src/agent/authority-pool.js';
import { UpstreamError } from '../../src/agent/upstream.js';
import { untilTrue } from '../support/poll.js';

/** A loopback server answering `GET /readyz` with `ready[i]` (200 or 503). */
async function readinessServer(status: () => number): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/readyz' ? status() : 404, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  return { url: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`, server };
}

describe('AuthorityPool', () => {
  const ready = [200, 200, 200];
  const servers: Server[] = [];
  const urls: string[] = [];
  before(async () => {
    for (let i = 0; i < 3; i++) {
      const { url, server } = await readinessServer(() => ready[i]!);
      urls.push(url);
      servers.push(server);
    }
  });
  after(async () => {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  /** A call that fails with a connection error on the authorities in `down`, and answers its index elsewhere. */
  const work = (pool: AuthorityPool, down: Set<number>) =>
    pool.call(async (endpoint) => {
      if (down.has(endpoint.index)) throw new UpstreamError('unavailable', `cannot reach ${endpoint.origin}`);
      return Promise.resolve(endpoint.index);
    });

  it('goes back step by step to the most preferred authority that is ready', async () => {
    const switches: AuthoritySwitch[] = [];
    const pool = new AuthorityPool({ urls, probeMinMs: 20, probeMaxMs: 80, onSwitch: (e) => switches.push(e) });
    try {
      ready[0] = 503;
      ready[1] = 503;
      const down = new Set([0, 1]);
      assert.equal(await work(pool, down), 2);
      assert.equal(pool.current.index, 2);
      ready[1] = 200;
      down.delete(1);
      await untilTrue('back on the second', () => pool.current.index === 1, 5000, 10);
      assert.equal(await work(pool, down), 1);
      ready[0] = 200;
      down.delete(0);
      await untilTrue('back on the first', () => pool.current.index === 0, 5000, 10);
      assert.deepEqual(
        switches.map((s) => [s.reason, s.from.index, s.to.index]),
        [
          ['failover', 0, 2],
          ['return', 2, 1],
          ['return', 1, 0],
        ],
      );
    } finally {
      pool.close();
      ready.fill(200);
    }
  });

  it('backs off an authority that says it is ready but then fails: no flapping at probe speed', async () => {
    const pool = new AuthorityPool({ urls: urls.slice(0, 2), probeMinMs: 10, probeMaxMs: 400 });
    try {
      // A answers its readiness probe but every call to it fails.
      const down = new Set([0]);
      const deadline = Date.now() + 1200;
      while (Date.now() < deadline) {
        assert.equal(await work(pool, down), 1, 'every call is served');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      // Without the backoff a 10 ms probe would return about 100 times; with it the delays double to the cap.
      assert.ok(pool.returns >= 2 && pool.returns <= 9, `returns: ${String(pool.returns)}`);
      assert.equal(pool.failovers, pool.returns + 1);
    } finally {
      pool.close();
    }
  });

  it('a call sent before a return that ends after it does not undo the return', async () => {
    const pool = new AuthorityPool({ urls: urls.slice(0, 2), probeMinMs: 20, probeMaxMs: 80 });
    try {
      ready[0] = 503;
      assert.equal(await work(pool, new Set([0])), 1);
      let finish: () => void = () => undefined;
      const slow = pool.call(async (endpoint) => {
        await new Promise<void>((resolve) => (finish = resolve));
        return endpoint.index;
      });
      ready[0] = 200;
      await untilTrue('back on the first', () => pool.current.index === 0, 5000, 10);
      finish();
      assert.equal(await slow, 1, 'the slow call was served where it was sent');
      assert.equal(pool.current.index, 0);
      assert.equal(pool.failovers, 1);
    } finally {
      pool.close();
      ready.fill(200);
    }
  });

  it('throws the last failure when no authority can serve, and stays on the one in use', async () => {
    const pool = new AuthorityPool({ urls, probeMinMs: 20, probeMaxMs: 80 });
    try {
      await assert.rejects(work(pool, new Set([0, 1, 2])), (err: unknown) => err instanceof UpstreamError && err.message.includes(urls[2]!));
      assert.equal(pool.current.index, 0);
      assert.equal(pool.failovers, 0);
    } finally {
      pool.close();
    }
  });

  it('does not try another authority after an answer that is not a failure of the authority, nor after an abort', async () => {
    const pool = new AuthorityPool({ urls });
    try {
      const tried: number[] = [];
      await assert.rejects(
        pool.call(async (endpoint) => {
          tried.push(endpoint.index);
          return Promise.reject(new UpstreamError('host-not-recognised', 'no', { status: 401 }));
        }),
      );
      const controller = new AbortController();
      controller.abort();
      await assert.rejects(
        pool.call(async (endpoint) => {
          tried.push(endpoint.index);
          return Promise.reject(new UpstreamError('unavailable', 'aborted'));
        }, controller.signal),
      );
      assert.deepEqual(tried, [0, 0]);
    } finally {
      pool.close();
    }
  });

  it('drops duplicate origins and refuses an empty list', () => {
    const pool = new AuthorityPool({ urls: [urls[0]!, `${urls[0]!}/path`, urls[1]!] });
    assert.deepEqual(
      pool.endpoints.map((e) => e.origin),
      [urls[0], urls[1]],
    );
    pool.close();
    assert.throws(() => new AuthorityPool({ urls: [] }), /at least one authority/);
  });
});
