import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpCallError, httpCall, parseJsonBody } from '../../src/shared/http-client.js';

/** A loopback server whose answer each test picks by path. */
function startServer(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ server: Server; origin: string }> {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => handler(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    server.listen(0, '127.0.0.1', () => resolve({ server, origin: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}` }));
  });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('expected the call to fail');
}

describe('httpCall', () => {
  let server: Server;
  let origin: string;
  before(async () => {
    ({ server, origin } = await startServer((req, res, body) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/echo') {
        res.writeHead(201, { 'content-type': 'application/json', 'x-seen': 'yes' });
        res.end(JSON.stringify({ method: req.method, host: req.headers.host, length: req.headers['content-length'] ?? null, body, url: req.url }));
      } else if (path === '/declared-large') {
        res.writeHead(200, { 'content-length': '2048' });
        res.end('x'.repeat(2048));
      } else if (path === '/streamed-large') {
        res.writeHead(200); // chunked: no content-length to check first
        res.write('x'.repeat(600));
        res.end('x'.repeat(600));
      } else if (path === '/silent') {
        // never answers: the client's idle timeout or its signal ends the call
      } else {
        res.writeHead(404);
        res.end('not here');
      }
    }));
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('sends the method, headers and body with its content-length, and resolves with any status, its headers and text', async () => {
    const answer = await httpCall(`${origin}/echo?a=1`, { method: 'POST', headers: { 'x-test': '1' }, body: 'héllo', timeoutMs: 5000 });
    assert.equal(answer.status, 201);
    assert.equal(answer.headers['x-seen'], 'yes');
    assert.deepEqual(JSON.parse(answer.text), { method: 'POST', host: new URL(origin).host, length: '6', body: 'héllo', url: '/echo?a=1' });
    const missing = await httpCall(`${origin}/nothing`, { timeoutMs: 5000 });
    assert.deepEqual([missing.status, missing.text], [404, 'not here']);
  });

  it('connectTo dials another address while the URL still names the server in the Host header and path', async () => {
    const port = Number(new URL(origin).port);
    const answer = await httpCall(`http://dev.vault.localhost:${String(port)}/echo?x=2`, { connectTo: { host: '127.0.0.1', port }, timeoutMs: 5000 });
    const seen = JSON.parse(answer.text) as { host: string; url: string };
    assert.deepEqual([seen.host, seen.url], [`dev.vault.localhost:${String(port)}`, '/echo?x=2']);
  });

  it('refuses an answer over maxResponseBytes, whether declared by content-length or streamed', async () => {
    for (const path of ['/declared-large', '/streamed-large']) {
      const err = await rejection(httpCall(`${origin}${path}`, { timeoutMs: 5000, maxResponseBytes: 1000 }));
      assert.ok(err instanceof HttpCallError && err.kind === 'too-large', `${path}: ${String(err)}`);
    }
    const fits = await httpCall(`${origin}/declared-large`, { timeoutMs: 5000, maxResponseBytes: 2048 });
    assert.equal(fits.text.length, 2048);
  });

  it('an idle socket fails with kind timeout and code ETIMEDOUT', async () => {
    const err = await rejection(httpCall(`${origin}/silent`, { timeoutMs: 200 }));
    assert.ok(err instanceof HttpCallError, String(err));
    assert.deepEqual([err.kind, err.code], ['timeout', 'ETIMEDOUT']);
  });

  it("an aborted call rejects with the signal's reason, as fetch does", async () => {
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    const call = httpCall(`${origin}/silent`, { timeoutMs: 10_000, signal: controller.signal });
    setTimeout(() => controller.abort(reason), 50);
    assert.equal(await rejection(call), reason);
  });

  it('a refused connection fails with kind connection and the socket error code', async () => {
    const closed = await startServer(() => undefined);
    const port = (closed.server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.server.close(() => resolve()));
    const err = await rejection(httpCall(`http://127.0.0.1:${String(port)}/`, { timeoutMs: 5000 }));
    assert.ok(err instanceof HttpCallError, String(err));
    assert.deepEqual([err.kind, err.code], ['connection', 'ECONNREFUSED']);
  });
});

describe('parseJsonBody', () => {
  it('parses JSON and answers undefined for an empty or malformed body', () => {
    assert.deepEqual(parseJsonBody('{"a":[1]}'), { a: [1] });
    assert.equal(parseJsonBody('null'), null);
    assert.equal(parseJsonBody(''), undefined);
    assert.equal(parseJsonBody('{oops'), undefined);
  });
});
