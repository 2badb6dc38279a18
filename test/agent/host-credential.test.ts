import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { FakeClock, HOUR } from '../../src/shared/clock.js';
import { HOST_API_BASE, HOST_API_PATHS, HOST_ASSERTION_MAX_LIFETIME_SECONDS, type HostCredentialGrant } from '../../src/shared/host-protocol.js';
import type { UpstreamError } from '../../src/agent/upstream.js';
import { AuthorityClient } from '../../src/agent/upstream.js';
import { enrolHost, HostCredentialKeeper, loadHostCredential, agentFiles, refuseJoinTokenForEnrolledDir } from '../../src/agent/host-credential.js';
import { createAgent } from '../../src/agent/agent.js';
import { captureLogs } from '../support/authority.js';

const HOST = '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/m1';

/** A stand-in for the authority's host API (plain http on loopback), scripted per test. */
describe('host credential: enrol, renew, refusal (against a scripted host API)', () => {
  let server: Server;
  let origin: string;
  let dataDir: string;
  const clock = new FakeClock(Date.UTC(2026, 5, 1));
  const seen: { path: string; headers: IncomingMessage['headers']; body: string }[] = [];
  let answer: (path: string, body: string) => { status: number; body: unknown } = () => ({ status: 500, body: {} });
  let keyCounter = 0;

  const grant = (): HostCredentialGrant => ({
    tenantId: 't1',
    hostResourceId: HOST,
    keyId: `key-${String(++keyCounter)}`,
    issuedOn: Math.floor(clock.now() / 1000),
    expiresOn: Math.floor(clock.now() / 1000) + 24 * 3600,
    tokenEndpoint: `${origin}/t1/oauth2/token`,
  });

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'openmsi-hostcred-'));
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        seen.push({ path: req.url ?? '', headers: req.headers, body });
        const a = answer(req.url ?? '', body);
        res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  });
  after(() => {
    server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('enrols with the join token and a locally made public key; the private key stays in a 0600 file', async () => {
    answer = () => ({ status: 201, body: grant() });
    const upstream = new AuthorityClient({ authorityUrl: origin, clock });
    const credential = await enrolHost({ dataDir, upstream, joinToken: 'join-123' });
    const request = seen.at(-1)!;
    assert.equal(request.path, HOST_API_PATHS.enrol);
    const body = JSON.parse(request.body) as { joinToken: string; publicJwk: JWK };
    assert.equal(body.joinToken, 'join-123');
    assert.equal(body.publicJwk.kty, 'EC');
    assert.equal(body.publicJwk.crv, 'P-256');
    assert.equal(body.publicJwk.d, undefined, 'never the private part');
    const files = agentFiles(dataDir);
    assert.equal(statSync(files.credential).mode & 0o777, 0o600);
    assert.equal(statSync(files.key(credential.record.keyId)).mode & 0o777, 0o600);
    assert.equal((JSON.parse(readFileSync(files.key(credential.record.keyId), 'utf8')) as JWK).d !== undefined, true);
    const loaded = await loadHostCredential(dataDir);
    assert.equal(loaded?.record.keyId, credential.record.keyId);
    assert.equal(loaded?.record.authorityUrl, origin);
    upstream.close();
  });

  it('refuses a join token for a data dir enrolled as another host, before starting anything; the same token again is the same host', async () => {
    const loaded = (await loadHostCredential(dataDir))!;
    assert.equal(loaded.record.joinTokenDigest, createHash('sha256').update('join-123').digest('hex'), 'the hash of the token it enrolled with');
    assert.ok(!readFileSync(agentFiles(dataDir).credential, 'utf8').includes('join-123'), 'never the token itself');
    const requests = seen.length;
    const { logger, lines } = captureLogs();
    await assert.rejects(createAgent({ dataDir, joinToken: 'join-for-build-02', port: 0, logger }), (err: Error) => {
      assert.equal(
        err.message,
        `--join-token: ${dataDir} is already enrolled as host m1 (${HOST}), and this join token is not the one it enrolled with. ` +
          `For another host's agent on this machine, give it a data dir and port of its own (--data-dir DIR --port N). ` +
          `To enrol this data dir again, stop its agent and delete ${agentFiles(dataDir).credential} first. To start it as m1, leave out --join-token.`,
      );
      return true;
    });
    assert.equal(seen.length, requests, 'nothing was asked of the authority');
    assert.deepEqual(lines, [], 'a refusal, not an info log');
    assert.ok(!existsSync(agentFiles(dataDir).runtime), 'no agent started');
    refuseJoinTokenForEnrolledDir(dataDir, loaded.record, 'join-123');
    const { joinTokenDigest: _, ...legacy } = loaded.record;
    assert.throws(
      () => refuseJoinTokenForEnrolledDir(dataDir, legacy, 'join-123'),
      /is not the one it enrolled with/,
      'a credential saved before the hash was kept cannot tell: refused',
    );
  });

  it('signs host assertions as the contract says (ES256, kid, iss = sub = host, aud = host API, short exp, jti)', async () => {
    const credential = (await loadHostCredential(dataDir))!;
    answer = () => ({ status: 200, body: { tenantId: 't1', identities: [] } });
    const upstream = new AuthorityClient({ authorityUrl: origin, clock });
    await upstream.self(credential.key);
    const request = seen.at(-1)!;
    assert.equal(request.path, HOST_API_PATHS.self);
    const bearer = /^Bearer (.+)$/.exec(String(request.headers.authorization))![1]!;
    assert.equal(decodeProtectedHeader(bearer).alg, 'ES256');
    assert.equal(decodeProtectedHeader(bearer).kid, credential.record.keyId);
    const claims = decodeJwt(bearer);
    assert.equal(claims.iss, HOST);
    assert.equal(claims.sub, HOST);
    assert.equal(claims.aud, origin + HOST_API_BASE);
    assert.ok(typeof claims.jti === 'string' && claims.jti.length > 10);
    assert.ok(claims.exp! - claims.iat! <= HOST_ASSERTION_MAX_LIFETIME_SECONDS);
    const publicJwk = JSON.parse(readFileSync(agentFiles(dataDir).key(credential.record.keyId), 'utf8')) as JWK;
    delete publicJwk.d;
    await jwtVerify(bearer, await importJWK(publicJwk, 'ES256'), { currentDate: new Date(clock.now()) });
    upstream.close();
  });

  it('maps failures: HostNotRecognised, 5xx and a closed port', async () => {
    const credential = (await loadHostCredential(dataDir))!;
    const upstream = new AuthorityClient({ authorityUrl: origin, clock });
    answer = () => ({ status: 401, body: { error: { code: 'HostNotRecognised', message: 'revoked' } } });
    await assert.rejects(upstream.self(credential.key), (err: UpstreamError) => err.kind === 'host-not-recognised');
    answer = () => ({ status: 503, body: {} });
    await assert.rejects(upstream.self(credential.key), (err: UpstreamError) => err.kind === 'unavailable');
    answer = () => ({ status: 400, body: { error: { code: 'InvalidRequest', message: 'bad' } } });
    await assert.rejects(upstream.self(credential.key), (err: UpstreamError) => err.kind === 'refused');
    const closed = new AuthorityClient({ authorityUrl: 'http://127.0.0.1:1', clock });
    await assert.rejects(closed.self(credential.key), (err: UpstreamError) => err.kind === 'unavailable');
    upstream.close();
    closed.close();
  });

  it('renews at half-life with a new key (old key file removed), backs off on failure, stops on HostNotRecognised, adopts a new enrolment', async () => {
    const start = (await loadHostCredential(dataDir))!;
    const upstream = new AuthorityClient({ authorityUrl: origin, clock });
    const { logger, lines } = captureLogs();
    let notRecognised = 0;
    const keeper = new HostCredentialKeeper({
      dataDir,
      upstream,
      credential: start,
      logger,
      clock,
      random: () => 0.5,
      retryBaseMs: 1000,
      retryMaxMs: 60_000,
      onNotRecognised: () => notRecognised++,
    });
    assert.equal(keeper.renewAt, start.record.issuedOn * 1000 + 12 * HOUR);
    clock.advance(11 * HOUR);
    const before = seen.length;
    await keeper.renewIfDue();
    assert.equal(seen.length, before, 'not due yet');
    clock.advance(1 * HOUR);
    answer = () => ({ status: 503, body: {} });
    await keeper.renewIfDue();
    assert.equal(seen.at(-1)!.path, HOST_API_PATHS.renew);
    assert.equal(keeper.current.record.keyId, start.record.keyId, 'kept on failure');
    assert.ok(keeper.renewAt > clock.now() && keeper.renewAt <= clock.now() + 1000, 'retries after the backoff');
    clock.advance(1000);
    answer = () => ({ status: 201, body: grant() });
    await keeper.renewIfDue();
    const renewed = keeper.current.record.keyId;
    assert.notEqual(renewed, start.record.keyId);
    const renewBody = JSON.parse(seen.at(-1)!.body) as { publicJwk: JWK };
    assert.equal(renewBody.publicJwk.d, undefined);
    assert.equal(
      decodeProtectedHeader(/^Bearer (.+)$/.exec(String(seen.at(-1)!.headers.authorization))![1]!).kid,
      start.record.keyId,
      'signed by the current credential',
    );
    assert.ok(!existsSync(agentFiles(dataDir).key(start.record.keyId)));
    assert.deepEqual(
      readdirSync(dataDir).filter((f) => f.startsWith('host-key-')),
      [`host-key-${renewed}.jwk`],
    );
    assert.equal((await loadHostCredential(dataDir))?.record.keyId, renewed);
    clock.advance(13 * HOUR);
    answer = () => ({ status: 401, body: { error: { code: 'HostNotRecognised', message: 'revoked' } } });
    await keeper.renewIfDue();
    assert.equal(notRecognised, 1);
    assert.ok(lines.some((l) => /no longer recognises this host/.test(l)));
    // A refused credential is not renewed again at once (a tight loop of refused calls), only after the cap.
    const refusedCalls = seen.length;
    await keeper.renewIfDue();
    assert.equal(seen.length, refusedCalls, 'not retried at once');
    assert.equal(keeper.renewAt, clock.now() + 60_000);
    // A new enrolment (--join-token-file) is adopted: renewal from its half-life, the refused key file removed.
    answer = () => ({ status: 201, body: grant() });
    const fresh = await enrolHost({ dataDir, upstream, joinToken: 'join-again' });
    keeper.adopt(fresh);
    assert.equal(keeper.current.record.keyId, fresh.record.keyId);
    assert.equal(keeper.renewAt, fresh.record.issuedOn * 1000 + 12 * HOUR);
    assert.deepEqual(
      readdirSync(dataDir).filter((f) => f.startsWith('host-key-')),
      [`host-key-${fresh.record.keyId}.jwk`],
    );
    keeper.stop();
    upstream.close();
  });
});
