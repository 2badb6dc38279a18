/**
 * The external issuers' key cache (src/authority/federation/issuer-keys.ts): discovery → jwks_uri over HTTPS,
 * caching, one refetch per cooldown on an unknown kid, a JWKS URL or a static JWKS instead, single-flight
 * fetches, a bounded cache, failures as IssuerUnavailableError, and Node's trust (NODE_EXTRA_CA_CERTS).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { IssuerKeys, IssuerUnavailableError, type IssuerKeySource } from '../../../src/authority/federation/issuer-keys.js';
import { startTestOidcIssuer, type TestOidcIssuer } from '../../support/oidc-issuer.js';
import { REPO_ROOT } from '../../support/paths.js';

const run = promisify(execFile);

describe('external issuer keys', () => {
  let dir: string;
  let issuer: TestOidcIssuer;
  let now: number;
  const clock = () => now;
  const source = (over: Partial<IssuerKeySource> = {}): IssuerKeySource => ({
    issuer: issuer.issuer,
    jwks: null,
    jwksUri: null,
    ca: issuer.caPem,
    version: 1,
    ...over,
  });
  const fetched = () => issuer.requests.length;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'openmsi-issuer-keys-'));
    issuer = await startTestOidcIssuer({ dir });
  });
  after(async () => {
    await issuer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds the key through discovery → jwks_uri once, then from the cache until it is an hour old', async () => {
    now = 1_000_000;
    const keys = new IssuerKeys({ now: clock });
    const before = fetched();
    assert.ok(await keys.getKey(source(), issuer.current.kid, 'RS256'));
    assert.deepEqual(issuer.requests.slice(before), ['/cluster-1/.well-known/openid-configuration', '/cluster-1/openid/v1/jwks']);
    for (let i = 0; i < 5; i++) assert.ok(await keys.getKey(source(), issuer.current.kid, 'RS256'));
    assert.equal(fetched() - before, 2, 'served from the cache');
    now += 3_600_000;
    assert.ok(await keys.getKey(source(), issuer.current.kid, 'RS256'));
    assert.equal(fetched() - before, 4, 'refetched after an hour');
  });

  it('an unknown kid refetches at most once per 5 minutes; a rotated key is then found', async () => {
    now = 2_000_000;
    const keys = new IssuerKeys({ now: clock });
    assert.ok(await keys.getKey(source(), issuer.current.kid, 'RS256'));
    const start = fetched();
    const next = await issuer.newKey();
    issuer.rotate(next, { keepOld: true });
    for (let i = 0; i < 10; i++) assert.equal(await keys.getKey(source(), next.kid, 'RS256'), undefined, 'within the cooldown: not asked again');
    assert.equal(fetched(), start);
    now += 300_000;
    assert.ok(await keys.getKey(source(), next.kid, 'RS256'), 'after the cooldown: one refetch finds it');
    assert.equal(fetched() - start, 2);
    assert.equal(await keys.getKey(source(), 'forged', 'RS256'), undefined);
    assert.equal(fetched() - start, 2, 'a forged kid right after costs nothing');
  });

  it('concurrent lookups share one fetch', async () => {
    now = 3_000_000;
    const keys = new IssuerKeys({ now: clock });
    const start = fetched();
    const found = await Promise.all(Array.from({ length: 20 }, () => keys.getKey(source(), issuer.current.kid, 'RS256')));
    assert.ok(found.every((k) => k !== undefined));
    assert.equal(fetched() - start, 2);
  });

  it('a static JWKS is never fetched; a JWKS URL skips discovery; a changed setting is not served from the cache', async () => {
    now = 4_000_000;
    const keys = new IssuerKeys({ now: clock });
    const start = fetched();
    assert.ok(await keys.getKey(source({ jwks: issuer.jwks(), ca: null, issuer: 'https://127.0.0.1:1/nowhere' }), issuer.current.kid, 'RS256'));
    assert.equal(fetched(), start);
    assert.ok(await keys.getKey(source({ jwksUri: `${issuer.issuer}/openid/v1/jwks` }), issuer.current.kid, 'RS256'));
    assert.deepEqual(issuer.requests.slice(start), ['/cluster-1/openid/v1/jwks']);
    assert.ok(await keys.getKey(source({ jwksUri: `${issuer.issuer}/openid/v1/jwks`, version: 2 }), issuer.current.kid, 'RS256'));
    assert.equal(fetched() - start, 2, 'the new version fetched again');
  });

  it('failures are IssuerUnavailableError, not retried within the failure cooldown; the last good set keeps serving', async () => {
    now = 5_000_000;
    const keys = new IssuerKeys({ now: clock, timeoutMs: 500 });
    await assert.rejects(keys.getKey(source({ ca: null, version: 0 }), issuer.current.kid, 'RS256'), IssuerUnavailableError, 'an untrusted certificate');
    await assert.rejects(keys.getKey(source({ issuer: 'https://127.0.0.1:1/down', ca: null }), 'k', 'RS256'), IssuerUnavailableError);
    await assert.rejects(keys.getKey(source({ issuer: 'http://127.0.0.1:1/plain' }), 'k', 'RS256'), /not https/);
    await assert.rejects(keys.getKey(source({ jwksUri: `${issuer.issuer}/missing`, version: 3 }), 'k', 'RS256'), /HTTP 404/);
    assert.ok(await keys.getKey(source(), issuer.current.kid, 'RS256'));
    issuer.hang = true;
    try {
      now += 3_600_000;
      const started = Date.now();
      assert.ok(await keys.getKey(source(), issuer.current.kid, 'RS256'), 'stale keys serve while the issuer hangs');
      assert.ok(Date.now() - started < 2000, 'bounded by the timeout');
      const again = Date.now();
      assert.ok(await keys.getKey(source(), issuer.current.kid, 'RS256'));
      assert.ok(Date.now() - again < 100, 'not asked again within the failure cooldown');
    } finally {
      issuer.hang = false;
    }
  });

  it('keeps at most maxIssuers issuers', async () => {
    now = 6_000_000;
    const keys = new IssuerKeys({ now: clock, maxIssuers: 2 });
    const start = fetched();
    assert.ok(await keys.getKey(source(), issuer.current.kid, 'RS256'));
    await assert.rejects(keys.getKey(source({ issuer: 'https://127.0.0.1:1/a' }), 'k', 'RS256'));
    await assert.rejects(keys.getKey(source({ issuer: 'https://127.0.0.1:1/b' }), 'k', 'RS256'));
    assert.ok(await keys.getKey(source(), issuer.current.kid, 'RS256'));
    assert.equal(fetched() - start, 4, 'the first issuer was evicted and fetched again');
  });

  it("uses Node's trust when the issuer has no CA of its own: NODE_EXTRA_CA_CERTS adds the issuer's CA", async () => {
    const script = `
      import { IssuerKeys } from './src/authority/federation/issuer-keys.ts';
      const keys = new IssuerKeys({ now: () => Date.now() });
      try {
        const key = await keys.getKey({ issuer: ${JSON.stringify(issuer.issuer)}, jwks: null, jwksUri: null, ca: null, version: 1 }, ${JSON.stringify(issuer.current.kid)}, 'RS256');
        console.log(key === undefined ? 'unknown' : 'found');
      } catch (err) { console.log(err.name); }`;
    const child = (env: NodeJS.ProcessEnv) =>
      run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: REPO_ROOT,
        env: { PATH: process.env['PATH'], ...env },
        timeout: 30_000,
      });
    assert.equal((await child({ NODE_EXTRA_CA_CERTS: issuer.caPath })).stdout.trim(), 'found');
    assert.equal((await child({})).stdout.trim(), 'IssuerUnavailableError');
  });
});
