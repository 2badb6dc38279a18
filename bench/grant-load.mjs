#!/usr/bin/env node
// A load generator for token grants whose body must differ per request: a managed-identity grant carries a
// fresh host assertion each time (its `jti` is accepted once). autocannon's programmatic API, one request
// body built per request in `setupRequest` (an ES256 signature with node:crypto: tens of µs, on the load
// generator's own core). Also drives a fixed body, so both grants in a comparison see the same generator.
//
//   node bench/grant-load.mjs '<json spec>'   → prints the same summary as lib.mjs's autocannonRun
//   spec: { url, connections, duration, body } or { url, connections, duration, hostAssertion: { privateJwk,
//           keyId, hostResourceId, audience, form } }; the CA comes from NODE_EXTRA_CA_CERTS (lib.mjs's grantLoadRun)
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import autocannon from 'autocannon';

const spec = JSON.parse(process.argv[2]);

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A form with a fresh host assertion, as the agent's upstream client signs it (src/agent/upstream.ts). */
function hostAssertionBody({ privateJwk, keyId, hostResourceId, audience, form }) {
  const key = createPrivateKey({ key: privateJwk, format: 'jwk' });
  const header = b64({ alg: 'ES256', kid: keyId, typ: 'JWT' });
  return () => {
    const now = Math.floor(Date.now() / 1000);
    const input = `${header}.${b64({ jti: randomUUID(), iss: hostResourceId, sub: hostResourceId, aud: audience, iat: now, nbf: now - 5, exp: now + 120 })}`;
    const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    return new URLSearchParams({ ...form, client_assertion: `${input}.${signature}` }).toString();
  };
}

const makeBody = spec.hostAssertion === undefined ? () => spec.body : hostAssertionBody(spec.hostAssertion);
const headers = { 'content-type': 'application/x-www-form-urlencoded' };
const result = await autocannon({
  url: spec.url,
  connections: spec.connections,
  duration: spec.duration,
  requests: [
    {
      method: 'POST',
      headers,
      setupRequest: (request) => ({ ...request, method: 'POST', headers, body: makeBody() }),
    },
  ],
});
process.stdout.write(JSON.stringify(result));
