// A simulated agent: a lightweight client speaking the real host protocol (src/shared/host-protocol.ts) to one
// replica. It makes its own ES256 key, enrols with a single-use join token, signs a fresh host assertion (new
// jti, 300 s lifetime) for every call, reads its host (`GET self`) and asks the managed-identity grant for each
// identity's token. It keeps no token cache of its own: the run decides when a token is due. One keep-alive
// connection per agent (`maxSockets: 1`), as one agent process holds; a restart drops it (new Agent).
import { createHash, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { Agent, request } from 'node:https';

const HOST_API_BASE = '/openmsi/hosts';
const MANAGED_IDENTITY_GRANT_TYPE = 'urn:openmsi:params:oauth:grant-type:managed-identity';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** The real agent's upstream timeout (AGENT_DEFAULTS.upstreamTimeoutMs). */
export const REQUEST_TIMEOUT_MS = 10_000;

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** RFC 7638 thumbprint of an EC public JWK (what the authority derives the key id from). */
function thumbprint(jwk) {
  return createHash('sha256')
    .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
    .digest('base64url');
}

export class SimulatedAgent {
  /**
   * @param {{ index: number, port: number, publicHost: string, ca: Buffer, joinToken: string }} options
   *   `port`: the replica this agent talks to (a TCP load balancer would pick one); `publicHost`: `host:port` of
   *   the public URL both replicas advertise (Host header and the assertions' audiences).
   */
  constructor({ index, port, publicHost, ca, joinToken }) {
    this.index = index;
    this.port = port;
    this.publicHost = publicHost;
    this.ca = ca;
    this.joinToken = joinToken;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    const jwk = publicKey.export({ format: 'jwk' });
    this.publicJwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
    this.kid = thumbprint(this.publicJwk);
    this.restart();
  }

  /** A new process: no kept-alive connection, no TLS session to resume. */
  restart() {
    this.agent?.destroy();
    this.agent = new Agent({ keepAlive: true, maxSockets: 1, ca: this.ca });
  }

  close() {
    this.agent?.destroy();
  }

  /** A host assertion for `aud`, signed with this agent's key (ES256, raw r||s as JWS wants). */
  assertion(aud) {
    const now = Math.floor(Date.now() / 1000);
    const head = b64url({ alg: 'ES256', kid: this.kid, typ: 'JWT' });
    const body = b64url({ iss: this.hostResourceId, sub: this.hostResourceId, aud, jti: randomUUID(), iat: now, exp: now + 300 });
    const signature = sign('sha256', Buffer.from(`${head}.${body}`), { key: this.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    return `${head}.${body}.${signature}`;
  }

  /** One HTTPS call to this agent's replica: `{ status, body, ms }`; a connection error or timeout throws. */
  call(method, path, { headers = {}, body } = {}) {
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.port,
          servername: 'localhost',
          path,
          method,
          agent: this.agent,
          headers: { host: this.publicHost, ...headers, ...(body === undefined ? {} : { 'content-length': Buffer.byteLength(body) }) },
          timeout: REQUEST_TIMEOUT_MS,
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** `POST enrol` with the join token: registers this agent's key, learns its host and token endpoint. */
  async enrol() {
    const res = await this.call('POST', `${HOST_API_BASE}/enrol`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ joinToken: this.joinToken, publicJwk: this.publicJwk }),
    });
    if (res.status !== 201) throw new Error(`enrol: HTTP ${res.status} ${res.body.slice(0, 200)}`);
    const grant = JSON.parse(res.body);
    if (grant.keyId !== this.kid) throw new Error(`enrol: key id ${grant.keyId}, expected ${this.kid}`);
    this.hostResourceId = grant.hostResourceId;
    this.tokenEndpoint = grant.tokenEndpoint;
    this.tokenPath = new URL(grant.tokenEndpoint).pathname;
    this.hostApiAudience = `${new URL(grant.tokenEndpoint).origin}${HOST_API_BASE}`;
    return res;
  }

  /** `GET self`: the identities assigned to the host now. */
  async self() {
    const res = await this.call('GET', `${HOST_API_BASE}/self`, { headers: { authorization: `Bearer ${this.assertion(this.hostApiAudience)}` } });
    if (res.status === 200) this.identities = JSON.parse(res.body).identities;
    return res;
  }

  /** The managed-identity grant for identity `i` of {@link identities} (`{ status, ms, expiresIn? }`). */
  async grant(i) {
    const identity = this.identities[i];
    const params = {
      grant_type: MANAGED_IDENTITY_GRANT_TYPE,
      client_assertion_type: JWT_BEARER,
      client_assertion: this.assertion(this.tokenEndpoint),
      resource: 'https://vault.azure.net',
      ...(identity.type === 'SystemAssigned' ? {} : { mi_object_id: identity.objectId }),
    };
    const res = await this.call('POST', this.tokenPath, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params).toString(),
    });
    if (res.status === 200) {
      const token = JSON.parse(res.body);
      if (typeof token.access_token !== 'string') throw new Error('grant: 200 without an access_token');
      res.expiresIn = Number(token.expires_in);
    }
    res.body = res.status === 200 ? '' : res.body.slice(0, 300);
    return res;
  }
}
