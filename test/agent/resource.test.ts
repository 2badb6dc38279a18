/**
 * `resource` on every token surface (src/agent/surfaces/common.ts `requireResource`, src/shared/resource.ts)
 * and what an agent audits of it (src/agent/audit/fold.ts `recordOf`), end to end against a real authority.
 * Issue 15: a resource over 2,048 characters or with a control character must be a 400 with the surface's
 * body (never a 5xx, which clients retry), refused before the authority is asked, never in a token's `aud`,
 * and audited bounded, so that the host's audit trail keeps flowing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import fc from 'fast-check';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { createTestHost, startTestAgent, IMDS_PATH, VAULT, type RawResponse, type TestAgent, type TestHost } from '../support/world.js';
import { AuthorityClient, UpstreamError } from '../../src/agent/upstream.js';
import { AGENT_AUDIT_FIELD_LIMITS, AUDIT_TRUNCATION_MARKER } from '../../src/shared/host-protocol.js';
import { CONTROL_CHARACTER, MAX_RESOURCE_LENGTH } from '../../src/shared/resource.js';

const META = { metadata: 'true' };

type Surface = 'imds' | 'app-service' | 'cloud-shell' | 'arc';
const SURFACES: readonly Surface[] = ['imds', 'app-service', 'cloud-shell', 'arc'];

/** Resources every rule must refuse, whatever else they are. */
const LONG = `${VAULT}/${'a'.repeat(MAX_RESOURCE_LENGTH)}`;
const BAD_RESOURCES: [string, string][] = [
  ['over 2048 characters', LONG],
  ['exactly 2049 characters', `${VAULT}/${'a'.repeat(MAX_RESOURCE_LENGTH - VAULT.length)}`],
  ['a NUL in the path', `${VAULT}/\u0000`],
  ['a NUL at the end', `${VAULT}\u0000`],
  ['a line break', `${VAULT}/\r\nx-injected: 1`],
  ['a tab', `${VAULT}/\t`],
  ['DEL', `${VAULT}/\u007f`],
  ['a C1 control', `${VAULT}/\u0085`],
  ['an escape', `${VAULT}/\u001b[31m`],
  ['not a URI', 'not a uri'],
  ['http', 'http://vault.azure.net'],
  ['user info', 'https://user:pw@vault.azure.net'],
];

/** Whether a resource must be refused whatever the rule's details: too long, or a control character. */
const mustRefuse = (resource: string): boolean => resource.length > MAX_RESOURCE_LENGTH || CONTROL_CHARACTER.test(resource);

/** Resource strings: arbitrary text, URIs with a control character spliced in, lengths around the bound, valid ones. */
const resources = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc
    .tuple(fc.constantFrom(VAULT, 'https://management.azure.com/', 'api://app', 'https://x.example/p'), fc.integer({ min: 0, max: 0x9f }), fc.nat({ max: 40 }))
    .filter(([, c]) => c < 0x20 || c >= 0x7f)
    .map(([base, c, at]) => `${base.slice(0, at % (base.length + 1))}${String.fromCharCode(c)}${base.slice(at % (base.length + 1))}`),
  fc.integer({ min: MAX_RESOURCE_LENGTH - 30, max: MAX_RESOURCE_LENGTH + 30 }).map((n) => `${VAULT}/${'r'.repeat(n - VAULT.length - 1)}`),
  fc.uuid(),
  fc.constantFrom(VAULT, `${VAULT}/`, 'https://management.core.windows.net/', 'api://my-app/x', 'https://storage.azure.com/a%20b'),
  fc.webUrl({ validSchemes: ['https'] }),
);

describe('agent: resource on every surface', () => {
  let t: TestAuthority;
  let host: TestHost;
  let a: TestAgent;
  const tokenDir = join(mkdtempSync(join(tmpdir(), 'openmsi-arc-')), 'tokens');

  before(async () => {
    t = await startTestAuthority();
    host = await createTestHost(t);
    a = await startTestAgent(t, host, { arc: true, arcTokenDir: tokenDir });
  });
  after(async () => {
    await a.agent.close();
    await t.close();
    host.cleanup();
    rmSync(join(tokenDir, '..'), { recursive: true, force: true });
  });

  /** One token request for `resource` on `surface` (Arc: the challenge, then the request with its secret). */
  async function ask(surface: Surface, resource: string): Promise<RawResponse> {
    const q = encodeURIComponent(resource);
    switch (surface) {
      case 'imds':
        return a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${q}`, META);
      case 'app-service':
        return a.get(`/msi/token?api-version=2019-08-01&resource=${q}`, { 'x-identity-header': a.secret });
      case 'cloud-shell':
        return a.post('/oauth2/token', `resource=${q}`, { ...META, 'content-type': 'application/x-www-form-urlencoded' });
      case 'arc': {
        const path = `${IMDS_PATH}?api-version=2020-06-01&resource=${q}`;
        const first = await a.get(path, META);
        if (first.status !== 401) return first;
        const file = /^Basic realm=(\S+)$/.exec(String(first.headers['www-authenticate']))?.[1];
        assert.ok(file !== undefined, `arc challenge: ${first.body}`);
        return a.get(path, { ...META, authorization: `Basic ${readFileSync(file, 'utf8')}` });
      }
    }
  }

  /** The surface's refusal body: exactly `{error, error_description}` (docs/agent.md "Refusals"). */
  function assertRefusalBody(r: RawResponse, what: string): { error: string; error_description: string } {
    const body = r.json<Record<string, unknown>>();
    assert.deepEqual(Object.keys(body).sort(), ['error', 'error_description'], what);
    assert.equal(typeof body['error_description'], 'string', what);
    assert.ok(!CONTROL_CHARACTER.test(String(body['error_description'])), `${what}: no control character in the description`);
    return body as { error: string; error_description: string };
  }

  it('refuses an over-long, control-character or malformed resource with 400 invalid_resource on every surface, before asking the authority', async () => {
    for (const surface of SURFACES) {
      for (const [what, resource] of BAD_RESOURCES) {
        const calls = a.agent.upstream.grantCalls;
        const r = await ask(surface, resource);
        assert.equal(r.status, 400, `${surface} ${what}: ${r.body}`);
        const body = assertRefusalBody(r, `${surface} ${what}`);
        assert.equal(body.error, 'invalid_resource', `${surface} ${what}`);
        assert.match(body.error_description, /^AADSTS500011: /);
        assert.ok(body.error_description.length < 400, 'the description shows the resource bounded');
        assert.equal(a.agent.upstream.grantCalls, calls, `${surface} ${what}: the authority is not asked`);
      }
    }
    // An Arc request with a bad resource is refused before any challenge file is written.
    const before = a.audit.events.length;
    const r = await a.get(`${IMDS_PATH}?api-version=2020-06-01&resource=${encodeURIComponent(LONG)}`, META);
    assert.equal(r.status, 400);
    assert.equal(r.headers['www-authenticate'], undefined);
    assert.equal(a.audit.events.slice(before).filter((e) => e.reason === 'invalid_resource').length, 1, 'the refusal is audited');
  });

  it('invariant: for any resource, every surface answers a token whose aud is the resource, or a 4xx with its body — never a 5xx, never a control character in aud (property)', async () => {
    for (const surface of SURFACES) {
      await fc.assert(
        fc.asyncProperty(resources, async (resource) => {
          const calls = a.agent.upstream.grantCalls;
          const r = await ask(surface, resource);
          assert.ok(r.status < 500, `${surface} ${JSON.stringify(resource)}: ${String(r.status)} ${r.body}`);
          if (r.status === 200) {
            const body = r.json<Record<string, string>>();
            assert.equal(body['resource'], resource);
            const aud = decodeJwt(body['access_token']!).aud;
            assert.equal(aud, resource);
            assert.ok(!CONTROL_CHARACTER.test(String(aud)), 'no control character in aud');
            assert.ok(!mustRefuse(resource), 'a resource past the bound or with a control character is never served');
            return;
          }
          assert.ok(r.status >= 400 && r.status < 500, `${surface}: ${String(r.status)}`);
          const body = assertRefusalBody(r, surface);
          assert.ok(['invalid_resource', 'invalid_request'].includes(body.error), `${surface}: ${body.error}`);
          if (mustRefuse(resource)) {
            assert.equal(r.status, 400);
            assert.equal(body.error, 'invalid_resource');
            assert.equal(a.agent.upstream.grantCalls, calls, 'refused before the authority is asked');
          }
        }),
        { numRuns: 60 },
      );
    }
  });
});

describe('agent: an authority refusal of a resource', () => {
  it('is a 400 invalid-resource kind, not a refusal the agent answers with 500', async () => {
    const server = createServer((req, res) => {
      req.resume();
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'invalid_resource', error_description: 'AADSTS500011: The resource principal named x was not found in the tenant.' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = new AuthorityClient({ authorityUrl: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`, timeoutMs: 5000 });
    try {
      const { generateKeyPair } = await import('jose');
      const { privateKey } = await generateKeyPair('ES256');
      const key = { keyId: 'k', hostResourceId: '/subscriptions/s/resourceGroups/g/providers/Microsoft.HybridCompute/machines/m', privateKey };
      await assert.rejects(client.token(key, `${client.origin}/t/oauth2/token`, { kind: 'system' }, 'https://unknown.example'), (err: unknown) => {
        assert.ok(err instanceof UpstreamError);
        assert.equal(err.kind, 'invalid-resource');
        assert.equal(err.status, 400);
        return true;
      });
    } finally {
      client.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('agent audit of a bad resource reaches the authority (real pipeline)', () => {
  let t: TestAuthority;
  let host: TestHost;

  before(async () => {
    t = await startTestAuthority();
    host = await createTestHost(t);
  });
  after(async () => {
    await t.close();
    host.cleanup();
  });

  it('invariant: a resource over 2048 characters or with a control character is audited bounded, and the records after it still arrive', async () => {
    const a = await startTestAgent(t, host, { auditSink: undefined });
    let closed = false;
    try {
      const nul = `${VAULT}/\u0000\r\n`;
      assert.equal((await a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${encodeURIComponent(LONG)}`, META)).status, 400);
      assert.equal((await a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${encodeURIComponent(nul)}`, META)).status, 400);
      assert.equal((await a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${encodeURIComponent(VAULT)}`, META)).status, 200);
      // Closing the agent folds its window to the spool and uploads it (bounded: 2 s).
      await a.agent.close();
      closed = true;
    } finally {
      if (!closed) await a.agent.close();
    }
    const events = await t.ctx.store.audit.list({ involving: [[host.hostId]], limit: 100 });
    const audiences = events.filter((e) => e.action.startsWith('agent.token.')).map((e) => String(e.detail['audience']));
    const long = audiences.find((x) => x.startsWith(`${VAULT}/aaaa`));
    assert.ok(long !== undefined, `the over-long resource's refusal is stored: ${JSON.stringify(events.map((e) => e.action))}`);
    assert.equal(long.length, AGENT_AUDIT_FIELD_LIMITS.audience);
    assert.ok(long.endsWith(AUDIT_TRUNCATION_MARKER));
    assert.ok(audiences.includes(`${VAULT}/\\u0000\\u000d\\u000a`), 'control characters are recorded escaped, never raw');
    assert.ok(audiences.includes(VAULT), 'the request after them is audited too');
    assert.equal(events.filter((e) => e.action === 'agent.audit.dropped').length, 0, 'nothing was refused by the authority');
  });
});
