import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { createTestHost, startTestAgent, IMDS_PATH, VAULT, type TestAgent, type TestHost } from '../support/world.js';
import type { AgentSession, SessionLookup } from '../../src/agent/contracts.js';

const META = { metadata: 'true' };

/** A session table standing in for `openmsi run`'s (the real one lives in src/agent/sessions.ts). */
function sessionTable(entries: Record<string, AgentSession>): SessionLookup {
  return { bySecret: (secret) => entries[secret] };
}

describe('agent with machine-wide surfaces off (--no-imds --no-app-service): only session secrets work', () => {
  let t: TestAuthority;
  let host: TestHost;
  let a: TestAgent;

  before(async () => {
    t = await startTestAuthority();
    host = await createTestHost(t);
    a = await startTestAgent(t, host, {
      imds: false,
      appService: false,
      requestHook: (req, res) => {
        if (req.url !== '/openmsi/agent/sessions') return false;
        res.writeHead(201, { 'content-type': 'application/x-ndjson' }).end('{}\n');
        return true;
      },
      sessions: sessionTable({
        'session-one-secret': { id: 'session-1', identities: [`${host.name}-app`] },
        'session-two-secret': { id: 'session-2', identities: [host.uami2.clientId, '[system]'] },
      }),
    });
  });
  after(async () => {
    await a.agent.close();
    await t.close();
    host.cleanup();
  });

  it('refuses the machine-wide secret, IMDS, Cloud Shell and instance metadata', async () => {
    const machine = await a.get(`/msi/token?api-version=2019-08-01&resource=${VAULT}`, { 'x-identity-header': a.secret });
    assert.equal(machine.status, 401);
    assert.deepEqual(machine.json(), { error: 'unauthorized_client', error_description: 'The X-IDENTITY-HEADER header is missing or does not match' });
    for (const path of [`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}`, `/oauth2/token?resource=${VAULT}`, '/metadata/instance?format=json']) {
      const r = await a.get(path, META);
      assert.equal(r.status, 404, path);
      assert.deepEqual(r.json(), { error: 'not_found', error_description: 'This endpoint is turned off on this host' });
    }
  });

  it('the request hook (the control API at integration) sees requests only after the guard', async () => {
    assert.equal((await a.post('/openmsi/agent/sessions', '{}')).status, 201);
    const foreign = await a.post('/openmsi/agent/sessions', '{}', { host: 'evil.example' });
    assert.equal(foreign.status, 400);
    assert.equal((await a.post('/openmsi/agent/sessions', '{}', { 'x-forwarded-for': '1.2.3.4' })).status, 400);
  });

  it('a session secret gets tokens for its identities only (by name; without a selector its only identity)', async () => {
    const own = await a.get(`/msi/token?api-version=2019-08-01&resource=${VAULT}`, { 'x-identity-header': 'session-one-secret' });
    assert.equal(own.status, 200, own.body);
    assert.equal(decodeJwt(own.json<{ access_token: string }>().access_token)['oid'], host.uami.objectId);
    const byId = await a.get(`/msi/token?api-version=2019-08-01&resource=${VAULT}&client_id=${host.uami.clientId}`, {
      'x-identity-header': 'session-one-secret',
    });
    assert.equal(byId.status, 200);
    const notGranted = await a.get(`/msi/token?api-version=2019-08-01&resource=${VAULT}&client_id=${host.uami2.clientId}`, {
      'x-identity-header': 'session-one-secret',
    });
    assert.equal(notGranted.status, 400);
    assert.deepEqual(notGranted.json(), { error: 'invalid_request', error_description: 'Identity not found' });
    const twoSystem = await a.get(`/msi/token?api-version=2017-09-01&resource=${VAULT}`, { secret: 'session-two-secret' });
    assert.equal(decodeJwt(twoSystem.json<{ access_token: string }>().access_token)['oid'], host.system.objectId);
    const ended = await a.get(`/msi/token?api-version=2019-08-01&resource=${VAULT}`, { 'x-identity-header': 'session-gone' });
    assert.equal(ended.status, 401);
    const served = a.audit.events.filter((e) => e.session === 'session-1' && e.decision === 'served');
    assert.ok(served.length >= 2);
    assert.ok(served.every((e) => e.surface === 'session'));
    assert.ok(!JSON.stringify(a.audit.events).includes('session-one-secret'));
  });
});

describe('agent Azure Arc challenge (--arc, challenge directory overridden for the test)', () => {
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

  it('401 + unquoted Basic realm=<file>, the file ≤ 4096 bytes and 0600 in a 0700 directory; its contents accepted once', async () => {
    const path = `${IMDS_PATH}?api-version=2020-06-01&resource=${encodeURIComponent(VAULT)}&client_id=${host.uami.clientId}`;
    const challenge = await a.get(path, META);
    assert.equal(challenge.status, 401);
    const header = String(challenge.headers['www-authenticate']);
    const match = /^Basic realm=(\/[^"\s]+\.key)$/.exec(header);
    assert.ok(match, header);
    const file = match[1]!;
    assert.equal(join(file, '..'), tokenDir);
    assert.equal(statSync(tokenDir).mode & 0o777, 0o700);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(statSync(file).size <= 4096);
    const secret = readFileSync(file, 'utf8');
    const ok = await a.get(path, { ...META, authorization: `Basic ${secret}` });
    assert.equal(ok.status, 200, ok.body);
    const body = ok.json<Record<string, string>>();
    assert.equal(body['client_id'], host.uami.clientId);
    assert.equal(body['object_id'], host.uami.objectId);
    assert.equal(body['msi_res_id'], host.uami.id);
    assert.match(body['expires_in']!, /^\d+$/);
    assert.ok(!existsSync(file), 'the challenge file is removed once used');
    const replay = await a.get(path, { ...META, authorization: `Basic ${secret}` });
    assert.equal(replay.status, 401);
    assert.deepEqual(replay.json(), { error: 'unauthorized_client', error_description: 'The Authorization header does not hold a current challenge' });
    // IMDS api-versions are still IMDS.
    assert.equal((await a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}`, META)).status, 200);
  });
});
