// The agent's cached-token path over loopback keep-alive, with a bare node:http server answering the same
// fixed token body as the baseline in the same run; autocannon runs in its own process. Also the rate of
// cache misses (every request a new resource, so every request is a managed-identity grant).
//
//   node --import tsx bench/agent-cache.ts                  # 5 s per target, 16 connections
//   BENCH_DURATION=10 BENCH_CONNECTIONS=32 node --import tsx bench/agent-cache.ts
//
// The authority runs in this process (test fixtures), as does the agent: absolute numbers are pessimistic;
// the ratio to the bare server is the point.
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startTestAuthority } from '../test/helpers/authority.js';
import { createTestHost, startTestAgent } from '../test/agent/helpers.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const autocannon = join(root, 'node_modules/autocannon/autocannon.js');
const duration = Number(process.env['BENCH_DURATION'] ?? 5);
const connections = Number(process.env['BENCH_CONNECTIONS'] ?? 16);

async function load(url: string, headers: string[]): Promise<{ rps: number; p99: number; non2xx: number }> {
  const args = [autocannon, '--json', '-c', String(connections), '-d', String(duration), ...headers.flatMap((h) => ['-H', h]), url];
  const { stdout } = await run(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 });
  const result = JSON.parse(stdout) as { requests: { average: number }; latency: { p99: number }; non2xx: number };
  return { rps: result.requests.average, p99: result.latency.p99, non2xx: result.non2xx };
}

const t = await startTestAuthority();
const host = await createTestHost(t);
const a = await startTestAgent(t, host, { rateLimit: { perSecond: 1e9 } });
const path = '/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net';
const warm = await a.get(path, { metadata: 'true' });
if (warm.status !== 200) throw new Error(`warm-up failed: ${warm.body}`);
const fixed = warm.body;
const bare = createServer({ keepAliveTimeout: 65_000 }, (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(fixed), 'cache-control': 'no-store' }).end(fixed);
});
await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
const barePort = (bare.address() as AddressInfo).port;

const baseline = await load(`http://127.0.0.1:${String(barePort)}${path}`, ['metadata=true']);
const cached = await load(`${a.agent.url}${path}`, ['metadata=true']);
const before = a.agent.upstream.grantCalls;
const missStart = Date.now();
const misses = 200;
for (let i = 0; i < misses; i += 20) {
  await Promise.all(Array.from({ length: 20 }, (_, j) => a.get(`/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmiss-${String(i + j)}.example`, { metadata: 'true' })));
}
const missRate = ((a.agent.upstream.grantCalls - before) / (Date.now() - missStart)) * 1000;

process.stdout.write(
  `${JSON.stringify(
    {
      connections,
      durationSeconds: duration,
      bareNodeHttp: baseline,
      agentCachedToken: cached,
      ratio: Number((cached.rps / baseline.rps).toFixed(3)),
      cacheMissTokensPerSecond: Math.round(missRate),
    },
    null,
    2,
  )}\n`,
);
await a.agent.close();
bare.close();
await t.close();
host.cleanup();
