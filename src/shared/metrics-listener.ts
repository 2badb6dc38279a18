/**
 * The plain-HTTP listener Prometheus scrapes (`GET /metrics`), shared by the server (`openmsi server
 * --metrics-port`) and the agent (`openmsi agent --metrics-port`): its own port, never a public one.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** Every metric name starts with this. */
export const METRIC_PREFIX = 'openmsi_';

/** A plain-HTTP listener answering `GET /metrics` from `registry` and 404 to anything else. */
export interface MetricsListener {
  /** `http://host:port` as bound. */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `registry` at `GET /metrics` on `host:port` (port 0 picks one). Shared by the server and the agent. */
export async function listenMetrics(registry: Registry, host: string, port: number): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
      () => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics collection failed\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${String(bound)}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
