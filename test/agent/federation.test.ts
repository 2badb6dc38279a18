/**
 * The agent's outbound-federation parts on their own (src/agent/federation/): assertion reuse until 80 % of
 * life, the upstream exchange's request and its failure mapping (against a loopback HTTPS stand-in with its own
 * CA, trusted through the extra-CA option only), and the token files (0600, atomic, rewritten before expiry).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../src/shared/clock.js';
import { httpsProxyFor } from '../../src/shared/config.js';
import type { FederationAssertionGrant, HostIdentity } from '../../src/shared/host-protocol.js';
import { FederationAssertions, refreshDue } from '../../src/agent/federation/assertions.js';
import { REFUSAL_HOLD_MS, UpstreamExchange, scopeOf, upstreamTokenEndpoint } from '../../src/agent/federation/exchange.js';
import { FederatedTokenFiles, parseTokenFileSpec } from '../../src/agent/federation/token-files.js';
import { UpstreamError } from '../../src/agent/upstream.js';
import { captureLogs } from '../support/logs.js';
import { untilTrue } from '../support/poll.js';
import { loopbackTls } from '../support/https.js';

const grantAt = (issuedAt: number, lifetime: number, assertion = `a.${String(issuedAt)}.s`): FederationAssertionGrant => ({
  assertion,
  issuer: 'https://issuer.example/openmsi',
  issuedAt,
  expiresOn: issuedAt + lifetime,
});

describe('agent federation: assertions', () => {
  it('reuses an assertion until 80 % of its life, then fetches a new one; concurrent callers share one fetch', async () => {
    const clock = new FakeClock(1_000_000_000);
    let fetches = 0;
    const assertions = new FederationAssertions({
      clock,
      fetch: () => {
        fetches++;
        return Promise.resolve(grantAt(Math.floor(clock.now() / 1000), 3600, `assertion-${String(fetches)}`));
      },
    });
    const [a, b] = await Promise.all([assertions.get('OID'), assertions.get('oid')]);
    assert.equal(fetches, 1);
    assert.equal(a, b);
    assert.equal(refreshDue(a), a.issuedAt + 2880);
    clock.advance(2879_000);
    assert.equal((await assertions.get('oid')).assertion, 'assertion-1');
    clock.advance(1000);
    assert.equal((await assertions.get('oid')).assertion, 'assertion-2');
    assertions.drop(['OID']);
    assert.equal((await assertions.get('oid')).assertion, 'assertion-3');
  });
});

describe('agent federation: the upstream exchange', () => {
  let server: Server;
  let caPem: string;
  let origin: string;
  const seen: { url: string; body: URLSearchParams }[] = [];
  let reply: { status: number; body: string } = { status: 200, body: '{}' };

  before(async () => {
    const tls = await loopbackTls('test upstream CA');
    caPem = tls.caPem;
    server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', body: new URLSearchParams(Buffer.concat(chunks).toString('utf8')) });
        res.writeHead(reply.status, { 'content-type': 'application/json' }).end(reply.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `https://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const link = () => ({ tenantId: 'contoso.onmicrosoft.com', clientId: '3f1c2a4e-8d6b-4b7a-9e2f-5c4d3b2a1f00', authorityHost: origin });

  it('posts client_credentials with the assertion as a jwt-bearer client assertion and scope {resource}/.default', async () => {
    const clock = new FakeClock(2_000_000_000);
    const exchange = new UpstreamExchange({ caPem, timeoutMs: 5000, clock });
    try {
      reply = { status: 200, body: JSON.stringify({ token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: 'upstream-token' }) };
      const token = await exchange.token(link(), 'the-assertion', 'https://vault.azure.net');
      assert.deepEqual(token, { accessToken: 'upstream-token', expiresOn: 2_000_000 + 3599, notBefore: 2_000_000, receivedAt: 2_000_000 });
      const request = seen.at(-1)!;
      assert.equal(request.url, '/contoso.onmicrosoft.com/oauth2/v2.0/token');
      assert.equal(upstreamTokenEndpoint(link()), `${origin}/contoso.onmicrosoft.com/oauth2/v2.0/token`);
      assert.deepEqual(Object.fromEntries(request.body), {
        grant_type: 'client_credentials',
        client_id: link().clientId,
        scope: 'https://vault.azure.net/.default',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: 'the-assertion',
      });
      assert.equal(scopeOf('00000000-0000-0000-0000-000000000001'), '00000000-0000-0000-0000-000000000001/.default');
    } finally {
      exchange.close();
    }
  });

  it('answers a refusal from memory for REFUSAL_HOLD_MS per (link, resource), then asks again', async () => {
    const clock = new FakeClock(3_000_000_000);
    const exchange = new UpstreamExchange({ caPem, timeoutMs: 5000, clock });
    try {
      reply = { status: 400, body: JSON.stringify({ error: 'unauthorized_client', error_description: 'AADSTS700016: Application not found.' }) };
      const refused = (err: unknown) => err instanceof UpstreamError && err.kind === 'federation-refused';
      const before = seen.length;
      await assert.rejects(exchange.token(link(), 'x', 'https://vault.azure.net'), refused);
      await assert.rejects(exchange.token(link(), 'x', 'https://vault.azure.net'), refused);
      assert.equal(seen.length, before + 1, 'the second refusal came from memory');
      await assert.rejects(exchange.token(link(), 'x', 'https://storage.azure.com'), refused);
      assert.equal(seen.length, before + 2, 'another resource asks');
      clock.advance(REFUSAL_HOLD_MS);
      reply = { status: 200, body: JSON.stringify({ access_token: 'now-ok', expires_in: 3599 }) };
      assert.equal((await exchange.token(link(), 'x', 'https://vault.azure.net')).accessToken, 'now-ok');
    } finally {
      exchange.close();
    }
  });

  it('relays a refusal (error, first line of the description) and maps 5xx, 429 and an untrusted server to unavailable', async () => {
    const clock = new FakeClock();
    const exchange = new UpstreamExchange({ caPem, timeoutMs: 5000, clock });
    const untrusted = new UpstreamExchange({ timeoutMs: 5000 });
    try {
      reply = {
        status: 401,
        body: JSON.stringify({
          error: 'invalid_client',
          error_description: 'AADSTS700213: No matching federated identity record found.\r\nTrace ID: x',
          error_codes: [700213],
        }),
      };
      await assert.rejects(exchange.token(link(), 'the-assertion', 'https://vault.azure.net'), (err: unknown) => {
        assert.ok(err instanceof UpstreamError);
        assert.equal(err.kind, 'federation-refused');
        assert.equal(err.status, 401);
        assert.equal(err.oauthError, 'invalid_client');
        assert.equal(err.description, 'AADSTS700213: No matching federated identity record found.');
        assert.doesNotMatch(err.message, /the-assertion/);
        return true;
      });
      clock.advance(REFUSAL_HOLD_MS); // past the refusal's hold
      for (const status of [500, 503, 429]) {
        reply = { status, body: '{}' };
        await assert.rejects(
          exchange.token(link(), 'x', 'https://vault.azure.net'),
          (err: unknown) => err instanceof UpstreamError && err.kind === 'unavailable',
        );
      }
      reply = { status: 200, body: JSON.stringify({ access_token: 'never' }) };
      await assert.rejects(
        untrusted.token(link(), 'x', 'https://vault.azure.net'),
        (err: unknown) => err instanceof UpstreamError && err.kind === 'unavailable',
      );
      reply = { status: 200, body: JSON.stringify({ access_token: 'no-expiry' }) };
      await assert.rejects(
        exchange.token(link(), 'x', 'https://vault.azure.net'),
        (err: unknown) => err instanceof UpstreamError && err.kind === 'federation-refused',
      );
    } finally {
      exchange.close();
      untrusted.close();
    }
  });
});

describe('agent federation: the upstream exchange through HTTPS_PROXY', () => {
  let upstream: Server;
  let caPem: string;
  let origin: string;
  let tunnel: HttpServer;
  let proxyUrl: URL;
  const connects: string[] = [];
  let refuseConnect = false;
  const upstreamRequests: string[] = [];

  before(async () => {
    const tls = await loopbackTls('test upstream CA (proxied)');
    caPem = tls.caPem;
    upstream = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
      upstreamRequests.push(req.url ?? '');
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token_type: 'Bearer', expires_in: 3599, access_token: 'via-proxy' }));
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    origin = `https://127.0.0.1:${String((upstream.address() as AddressInfo).port)}`;
    // A CONNECT proxy on loopback: it sees the tunnel's target and ciphertext, never the form.
    tunnel = createHttpServer((_req, res) => res.writeHead(405).end());
    tunnel.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      connects.push(req.url ?? '');
      if (refuseConnect) {
        client.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
        return;
      }
      const [host, port] = (req.url ?? '').split(':');
      const server = netConnect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        server.write(head);
        server.pipe(client);
        client.pipe(server);
      });
      server.on('error', () => client.destroy());
      client.on('error', () => server.destroy());
    });
    await new Promise<void>((resolve) => tunnel.listen(0, '127.0.0.1', resolve));
    proxyUrl = new URL(`http://127.0.0.1:${String((tunnel.address() as AddressInfo).port)}`);
  });
  after(async () => {
    tunnel.closeAllConnections();
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => tunnel.close(() => resolve()));
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  const link = () => ({ tenantId: 'contoso.onmicrosoft.com', clientId: '3f1c2a4e-8d6b-4b7a-9e2f-5c4d3b2a1f00', authorityHost: origin });

  it('tunnels the exchange through the proxy HTTPS_PROXY names, trusting the upstream CA inside the tunnel', async () => {
    connects.length = 0;
    refuseConnect = false;
    const env = { HTTPS_PROXY: proxyUrl.href };
    const exchange = new UpstreamExchange({ caPem, timeoutMs: 5000, proxyFor: (target) => httpsProxyFor(target, env) });
    try {
      const token = await exchange.token(link(), 'the-assertion', 'https://vault.azure.net');
      assert.equal(token.accessToken, 'via-proxy');
      assert.deepEqual(connects, [new URL(origin).host]);
      assert.equal(upstreamRequests.at(-1), '/contoso.onmicrosoft.com/oauth2/v2.0/token');
    } finally {
      exchange.close();
    }
  });

  it('goes direct for a host NO_PROXY names, and answers unavailable when the proxy refuses the tunnel', async () => {
    connects.length = 0;
    refuseConnect = false;
    const direct = new UpstreamExchange({
      caPem,
      timeoutMs: 5000,
      proxyFor: (target) => httpsProxyFor(target, { HTTPS_PROXY: proxyUrl.href, NO_PROXY: 'localhost,127.0.0.1' }),
    });
    try {
      assert.equal((await direct.token(link(), 'a', 'https://vault.azure.net')).accessToken, 'via-proxy');
      assert.deepEqual(connects, []);
    } finally {
      direct.close();
    }
    refuseConnect = true;
    const refused = new UpstreamExchange({ caPem, timeoutMs: 5000, proxyFor: (target) => httpsProxyFor(target, { https_proxy: proxyUrl.href }) });
    try {
      await assert.rejects(refused.token(link(), 'a', 'https://vault.azure.net'), (err: unknown) => err instanceof UpstreamError && err.kind === 'unavailable');
      assert.equal(connects.length, 1);
    } finally {
      refused.close();
      refuseConnect = false;
    }
  });
});

describe('agent federation: token files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'openmsi-token-files-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const identity: HostIdentity = {
    type: 'UserAssigned',
    objectId: '11111111-2222-3333-4444-555555555555',
    clientId: '66666666-7777-8888-9999-000000000000',
    resourceId: '/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app',
    upstream: { tenantId: 'adfs', clientId: '3f1c2a4e-8d6b-4b7a-9e2f-5c4d3b2a1f00', authorityHost: 'https://login.example.net' },
  };

  it('parses IDENTITY=PATH (client id or resource id) and refuses anything else', () => {
    assert.deepEqual(parseTokenFileSpec(`${identity.clientId}=${dir}/t`).selector, { kind: 'client', value: identity.clientId });
    assert.deepEqual(parseTokenFileSpec(`${identity.resourceId}=/t`).selector, { kind: 'resource', value: identity.resourceId });
    for (const bad of ['nopath', '=x', 'x=']) assert.throws(() => parseTokenFileSpec(bad), /IDENTITY=PATH/);
  });

  it('writes the assertion (0600, no newline) and the .env, and rewrites it at 80 % of its life; failures are retried', async () => {
    const path = join(dir, 'azure-identity-token');
    let fetches = 0;
    let failNext = true;
    const { logger, lines } = captureLogs();
    const files = new FederatedTokenFiles({
      specs: [{ selector: { kind: 'client', value: identity.clientId }, path }],
      resolve: () => Promise.resolve(identity),
      assertion: () => {
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error('authority unavailable'));
        }
        fetches++;
        // A 2 s life: due again after 1 s (80 %, in whole seconds).
        return Promise.resolve(grantAt(Math.floor(Date.now() / 1000), 2, `assertion-${String(fetches)}`));
      },
      logger,
      retryBaseMs: 20,
    });
    files.start();
    try {
      await untilTrue('the first write', () => files.writes >= 1, 5000, 10);
      assert.equal(readFileSync(path, 'utf8'), 'assertion-1');
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(statSync(`${path}.env`).mode & 0o777, 0o600);
      assert.equal(
        readFileSync(`${path}.env`, 'utf8'),
        `AZURE_CLIENT_ID=${identity.upstream!.clientId}\nAZURE_TENANT_ID=adfs\nAZURE_AUTHORITY_HOST=https://login.example.net\nAZURE_FEDERATED_TOKEN_FILE=${path}\n`,
      );
      assert.ok(lines.some((l) => l.includes('cannot write the federated token file')));
      await untilTrue('the rewrite', () => files.writes >= 2, 5000, 20);
      assert.equal(readFileSync(path, 'utf8'), 'assertion-2');
      for (const line of lines) assert.doesNotMatch(line, /assertion-\d/);
    } finally {
      files.stop();
    }
  });
});
