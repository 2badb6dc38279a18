import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { createTestHost, startTestAgent, IMDS_PATH, VAULT, type TestAgent, type TestHost } from '../support/world.js';

const META = { metadata: 'true' };
const STRING_FIELDS = ['access_token', 'refresh_token', 'expires_in', 'expires_on', 'ext_expires_in', 'not_before', 'resource', 'token_type', 'client_id'];

/** §8.4: every field a string, numbers decimal, both expiries, resource echoed exactly, no error fields. */
function assertSuccessShape(body: string, resource: string, clientId: string): Record<string, string> {
  const json = JSON.parse(body) as Record<string, unknown>;
  assert.deepEqual(Object.keys(json).slice(0, STRING_FIELDS.length), STRING_FIELDS);
  for (const [k, v] of Object.entries(json)) assert.equal(typeof v, 'string', `${k} must be a string`);
  const b = json as Record<string, string>;
  for (const k of ['expires_in', 'expires_on', 'ext_expires_in', 'not_before']) assert.match(b[k]!, /^\d+$/, k);
  assert.equal(b['refresh_token'], '');
  assert.equal(b['token_type'], 'Bearer');
  assert.equal(b['resource'], resource);
  assert.equal(b['client_id'], clientId);
  assert.ok(!('error' in json) && !('message' in json) && !('error_description' in json));
  const claims = decodeJwt(b['access_token']!);
  assert.equal(Number(b['expires_on']), claims.exp);
  const expiresIn = Number(b['expires_in']);
  const now = Math.floor(Date.now() / 1000);
  assert.ok(Math.abs(expiresIn - (claims.exp! - now)) <= 2, `expires_in ${String(expiresIn)} = exp - now`);
  return b;
}

describe('agent surfaces', () => {
  let t: TestAuthority;
  let host: TestHost;
  let a: TestAgent;

  before(async () => {
    t = await startTestAuthority();
    host = await createTestHost(t);
    a = await startTestAgent(t, host);
  });
  after(async () => {
    await a.agent.close();
    await t.close();
    host.cleanup();
  });

  it('IMDS: system-assigned token, with and without trailing slash, resource echoed with and without its slash', async () => {
    for (const path of [IMDS_PATH, `${IMDS_PATH}/`]) {
      for (const resource of [VAULT, `${VAULT}/`]) {
        const r = await a.get(`${path}?api-version=2018-02-01&resource=${encodeURIComponent(resource)}`, META);
        assert.equal(r.status, 200, r.body);
        assert.match(String(r.headers['content-type']), /^application\/json/);
        const body = assertSuccessShape(r.body, resource, host.system.clientId);
        assert.equal(decodeJwt(body['access_token']!)['oid'], host.system.objectId);
      }
    }
  });

  it('IMDS: every selector spelling resolves the user-assigned identity (ARM ids case-insensitively)', async () => {
    const u = host.uami;
    const spellings: [string, string][] = [
      ['client_id', u.clientId],
      ['clientid', u.clientId.toUpperCase()],
      ['object_id', u.objectId],
      ['principal_id', u.objectId],
      ['principalId', u.objectId],
      ['msi_res_id', u.id],
      ['mi_res_id', u.id.toLowerCase()],
      ['msi-res-id', u.id.toUpperCase()],
    ];
    for (const [name, value] of spellings) {
      const r = await a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${encodeURIComponent(VAULT)}&${name}=${encodeURIComponent(value)}`, META);
      assert.equal(r.status, 200, `${name}: ${r.body}`);
      const body = assertSuccessShape(r.body, VAULT, u.clientId);
      assert.equal(decodeJwt(body['access_token']!)['oid'], u.objectId, name);
    }
  });

  it('IMDS: every api-version clients send from 2018-02-01 on; older or missing refused', async () => {
    for (const v of ['2018-02-01', '2019-08-15', '2020-06-01', '2021-02-01']) {
      assert.equal((await a.get(`${IMDS_PATH}?api-version=${v}&resource=${VAULT}`, META)).status, 200, v);
    }
    const old = await a.get(`${IMDS_PATH}?api-version=2017-09-01&resource=${VAULT}`, META);
    assert.equal(old.status, 400);
    const missing = await a.get(`${IMDS_PATH}?resource=${VAULT}`, META);
    assert.deepEqual(missing.json(), { error: 'invalid_request', error_description: "Required query variable 'api-version' is missing" });
  });

  it('App Service 2019-08-01 at /msi/token with X-IDENTITY-HEADER (extra Metadata and Content-Type tolerated), every selector', async () => {
    const ok = await a.get(`/msi/token?api-version=2019-08-01&resource=${VAULT}`, {
      'x-identity-header': a.secret,
      metadata: 'true',
      'content-type': 'application/json',
    });
    assert.equal(ok.status, 200, ok.body);
    assertSuccessShape(ok.body, VAULT, host.system.clientId);
    for (const [name, value] of [
      ['client_id', host.uami2.clientId],
      ['mi_res_id', host.uami2.id],
      ['object_id', host.uami2.objectId],
      ['principal_id', host.uami2.objectId],
    ] as const) {
      const r = await a.get(`/MSI/token/?api-version=2019-08-01&resource=${VAULT}/&${name}=${encodeURIComponent(value)}`, { 'x-identity-header': a.secret });
      assert.equal(r.status, 200, `${name}: ${r.body}`);
      assertSuccessShape(r.body, `${VAULT}/`, host.uami2.clientId);
    }
  });

  it('App Service 2017-09-01 / Azure ML: secret header and clientid, on /msi/token and /oauth2/token', async () => {
    for (const path of ['/msi/token', '/MSI/token/', '/oauth2/token']) {
      const r = await a.get(`${path}?resource=${VAULT}&api-version=2017-09-01&clientid=${host.uami.clientId}`, { secret: a.secret });
      assert.equal(r.status, 200, `${path}: ${r.body}`);
      assertSuccessShape(r.body, VAULT, host.uami.clientId);
    }
  });

  it('Cloud Shell: POST form resource= (msrestazure) and GET ?resource=, both with Metadata: true', async () => {
    const post = await a.post('/oauth2/token', `resource=${encodeURIComponent('https://management.core.windows.net/')}`, {
      metadata: 'true',
      'content-type': 'application/x-www-form-urlencoded',
    });
    assert.equal(post.status, 200, post.body);
    assertSuccessShape(post.body, 'https://management.core.windows.net/', host.system.clientId);
    const userAssigned = await a.post('/oauth2/token', `resource=${VAULT}&client_id=${host.uami.clientId}`, {
      metadata: 'true',
      'content-type': 'application/x-www-form-urlencoded',
    });
    assertSuccessShape(userAssigned.body, VAULT, host.uami.clientId);
    const get = await a.get(`/oauth2/token?resource=${VAULT}`, META);
    assert.equal(get.status, 200, get.body);
    assertSuccessShape(get.body, VAULT, host.system.clientId);
    const noMeta = await a.post('/oauth2/token', `resource=${VAULT}`, { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(noMeta.status, 400);
  });

  it('/metadata/instance and /compute carry the VM compute fields; getplatformmetadata is 404', async () => {
    const all = await a.get('/metadata/instance?api-version=2021-02-01&format=json', META);
    assert.equal(all.status, 200, all.body);
    const compute = all.json<{ compute: Record<string, string> }>().compute;
    assert.equal(compute['name'], host.name);
    assert.equal(compute['resourceId'], host.hostId);
    assert.equal(compute['subscriptionId'], t.subscriptionId);
    assert.equal(compute['resourceGroupName'], host.resourceGroup);
    assert.equal(compute['location'], 'local');
    assert.match(compute['vmId']!, /^[0-9a-f-]{36}$/);
    const only = await a.get('/metadata/instance/compute?api-version=2021-02-01', META);
    assert.equal(only.json<Record<string, string>>()['name'], host.name);
    assert.equal((await a.get('/metadata/instance?format=json')).status, 400);
    const v2 = await a.get('/metadata/identity/getplatformmetadata?cred-api-version=2.0');
    assert.equal(v2.status, 404);
  });

  describe('refusals: documented status and body, and the agent keeps serving', () => {
    const cases: {
      name: string;
      send: () => Promise<{ status: number; body: string; headers: Record<string, unknown> }>;
      status: number;
      body: Record<string, string>;
    }[] = [
      {
        name: 'missing Metadata header',
        send: () => a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}`),
        status: 400,
        body: { error: 'invalid_request', error_description: 'Required metadata header not specified' },
      },
      {
        name: 'Metadata: True (not exactly lower-case true)',
        send: () => a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}`, { metadata: 'True' }),
        status: 400,
        body: { error: 'invalid_request', error_description: 'Required metadata header not specified' },
      },
      {
        name: 'X-Forwarded-For',
        send: () => a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}`, { ...META, 'x-forwarded-for': '10.0.0.1' }),
        status: 400,
        body: { error: 'invalid_request', error_description: 'Requests with X-Forwarded-For, Forwarded or another proxy header are not accepted' },
      },
      {
        name: 'wrong X-IDENTITY-HEADER',
        send: () => a.get(`/msi/token?api-version=2019-08-01&resource=${VAULT}`, { 'x-identity-header': 'not-the-secret' }),
        status: 401,
        body: { error: 'unauthorized_client', error_description: 'The X-IDENTITY-HEADER header is missing or does not match' },
      },
      {
        name: 'wrong 2017 secret',
        send: () => a.get(`/msi/token?api-version=2017-09-01&resource=${VAULT}`, { secret: 'nope' }),
        status: 401,
        body: { error: 'unauthorized_client', error_description: 'The secret header is missing or does not match' },
      },
      {
        name: 'foreign Host (DNS rebinding)',
        send: () => a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}`, { ...META, host: `evil.example:${String(a.agent.port)}` }),
        status: 400,
        body: { error: 'invalid_request', error_description: 'The Host header names an address this agent does not serve' },
      },
      {
        name: 'identity not assigned to the host',
        send: () => a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}&client_id=${host.other.clientId}`, META),
        status: 400,
        body: { error: 'invalid_request', error_description: 'Identity not found' },
      },
      {
        name: 'more than one selector',
        send: () => a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}&client_id=${host.uami.clientId}&object_id=${host.uami.objectId}`, META),
        status: 400,
        body: { error: 'invalid_request', error_description: 'Only one of client_id, object_id (principal_id) or msi_res_id (mi_res_id) may be given' },
      },
      {
        name: 'two spellings of one selector',
        send: () => a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}&msi_res_id=${host.uami.id}&mi_res_id=${host.uami.id}`, META),
        status: 400,
        body: { error: 'invalid_request', error_description: 'Only one of client_id, object_id (principal_id) or msi_res_id (mi_res_id) may be given' },
      },
      {
        name: 'duplicate query parameter',
        send: () => a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}&resource=https://storage.azure.com`, META),
        status: 400,
        body: { error: 'invalid_request', error_description: "Duplicate query parameter 'resource'" },
      },
      {
        name: 'missing resource',
        send: () => a.get(`${IMDS_PATH}?api-version=2018-02-01`, META),
        status: 400,
        body: { error: 'invalid_request', error_description: "Required query variable 'resource' is missing" },
      },
      {
        name: 'unknown path',
        send: () => a.get('/latest/meta-data/', META),
        status: 404,
        body: { error: 'not_found', error_description: 'No such endpoint' },
      },
      {
        name: 'POST to IMDS',
        send: () => a.post(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}`, '', META),
        status: 405,
        body: { error: 'method_not_allowed', error_description: 'Method not allowed' },
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const before = a.audit.events.length;
        const r = await c.send();
        assert.equal(r.status, c.status, r.body);
        assert.deepEqual(JSON.parse(r.body), c.body);
        assert.ok(!r.body.includes('unreachable'));
        for (const name of Object.keys(r.headers)) assert.ok(!name.startsWith('access-control-'), `CORS header ${name}`);
        const refused = a.audit.events.slice(before).find((e) => e.decision === 'refused');
        assert.ok(refused, 'the refusal is audited');
        assert.equal(refused.status, c.status);
        assert.equal(refused.caller.address, '127.0.0.1');
        const still = await a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}`, META);
        assert.equal(still.status, 200, 'the agent keeps serving');
      });
    }
  });

  it('OPTIONS (a CORS preflight) gets no CORS headers', async () => {
    const r = await a.get(IMDS_PATH, { origin: 'http://evil.example', 'access-control-request-method': 'GET' }).catch(() => undefined);
    assert.ok(r);
    const { rawRequest } = await import('../support/world.js');
    const pre = await rawRequest(a.agent.port, 'OPTIONS', IMDS_PATH, {
      origin: 'http://evil.example',
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'metadata',
    });
    assert.equal(pre.status, 405);
    for (const name of Object.keys(pre.headers)) assert.ok(!name.startsWith('access-control-'), name);
  });

  it('allows Host 127.0.0.1:P, localhost:P, [::1]:P and 169.254.169.254', async () => {
    const p = String(a.agent.port);
    for (const h of [`127.0.0.1:${p}`, `localhost:${p}`, `[::1]:${p}`, `LOCALHOST:${p}`, '169.254.169.254', '169.254.169.254:80']) {
      const r = await a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}`, { ...META, host: h });
      assert.equal(r.status, 200, h);
    }
    for (const h of ['127.0.0.1', `127.0.0.1:${String(a.agent.port + 1)}`, 'attacker.example', `169.254.169.254:${p}`]) {
      const r = await a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}`, { ...META, host: h });
      assert.equal(r.status, 400, h);
    }
  });

  it('every served token and refusal is audited with identity, audience, surface, source and caller; never a token or secret', async () => {
    const before = a.audit.events.length;
    await a.get(`/msi/token?api-version=2019-08-01&resource=https://storage.azure.com&client_id=${host.uami.clientId}`, { 'x-identity-header': a.secret });
    await a.get(`/msi/token?api-version=2019-08-01&resource=https://storage.azure.com&client_id=${host.uami.clientId}`, { 'x-identity-header': a.secret });
    const events = a.audit.events.slice(before);
    assert.deepEqual(
      events.map((e) => [e.decision, e.source, e.surface, e.identity, e.audience, e.status]),
      [
        ['served', 'authority', 'app-service', host.uami.objectId, 'https://storage.azure.com', 200],
        ['served', 'cache', 'app-service', host.uami.objectId, 'https://storage.azure.com', 200],
      ],
    );
    const dump = JSON.stringify(a.audit.events) + a.agent.server.listenerCount('request');
    assert.ok(!dump.includes(a.secret));
    assert.ok(!dump.includes('eyJ'));
    const logs = a.logLines.join('\n');
    assert.ok(!logs.includes(a.secret), 'no header secret in logs');
    assert.ok(!logs.includes('eyJ'), 'no token in logs');
  });
});
