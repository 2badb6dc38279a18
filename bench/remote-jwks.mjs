#!/usr/bin/env node
// The shared verifier over a remote JWKS, on loopback HTTPS with a private CA (the way a service verifies
// openmsi tokens). Three paths, each a fixed amount of work, one verification at a time:
//   warm     a known kid with the key set cached: what every request costs
//   unknown  an unknown kid inside the refetch cooldown: what a forged-kid flood costs (no fetch)
//   refetch  an unknown kid with no cooldown: one JWKS fetch per verification (the HTTPS fetch path)
//
//   npm run build && node bench/remote-jwks.mjs                 # the verifier in dist/
//   node bench/remote-jwks.mjs /path/to/other/token-verifier.js  # another build of it, to compare
//   BENCH_WARM=20000 BENCH_UNKNOWN=20000 BENCH_REFETCH=300 node bench/remote-jwks.mjs
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import https from 'node:https';
import { pathToFileURL } from 'node:url';
import { SignJWT } from 'jose';
import { createCertificateAuthority, issueServerCertificate } from '../dist/pki/ca.js';
import { systemClock } from '../dist/shared/clock.js';

const modulePath = process.argv[2];
const verifierUrl = modulePath === undefined ? new URL('../dist/shared/token-verifier.js', import.meta.url) : pathToFileURL(modulePath);
const { createTokenVerifier, remoteJwks } = await import(verifierUrl.href);
const counts = {
  warm: Number(process.env.BENCH_WARM ?? 20000),
  unknown: Number(process.env.BENCH_UNKNOWN ?? 20000),
  refetch: Number(process.env.BENCH_REFETCH ?? 300),
};

const ISSUER = 'https://localhost/bench-tenant/';
const AUDIENCE = 'https://vault.azure.net';
// Three published keys, as during a rotation (current, next, retired).
const keys = Array.from({ length: 3 }, () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomUUID();
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' } };
});
const body = JSON.stringify({ keys: keys.map((k) => k.jwk) });

const ca = await createCertificateAuthority({ clock: systemClock });
const leaf = await issueServerCertificate({
  caCertPem: ca.certPem,
  caKeyPkcs8Pem: ca.keyPkcs8Pem,
  hostnames: ['localhost'],
  ipAddresses: ['127.0.0.1'],
  clock: systemClock,
});
let fetches = 0;
const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPkcs8Pem }, (_req, res) => {
  fetches++;
  res.setHeader('content-type', 'application/json');
  res.end(body);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const jwksUrl = `https://127.0.0.1:${server.address().port}/keys`;

function sign(kid, privateKey) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ oid: randomUUID(), tid: randomUUID(), sub: randomUUID(), ver: '1.0', nbf: now })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(privateKey);
}

function verifier(options) {
  return createTokenVerifier({ jwks: remoteJwks(jwksUrl, { ca: ca.certPem, ...options }), issuers: [ISSUER], audiences: [AUDIENCE] });
}

async function run(name, n, verify, token) {
  if (n === 0) return;
  const before = fetches;
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  let rejected = 0;
  for (let i = 0; i < n; i++) {
    try {
      await verify(token);
    } catch (err) {
      if (err?.name !== 'TokenVerificationError') throw err;
      rejected++;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const { user, system } = process.cpuUsage(cpu);
  // CPU time per verification is steadier than wall time on a shared machine.
  const cpuMicros = (user + system) / n;
  console.log(
    `${name.padEnd(8)} ${String(n).padStart(6)} verifications  ${String(Math.round(n / seconds)).padStart(7)}/s wall  ` +
      `${cpuMicros.toFixed(1).padStart(7)} µs CPU each  rejected ${rejected}  fetches ${fetches - before}`,
  );
}

const known = await sign(keys[1].kid, keys[1].privateKey);
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const forged = await sign(randomUUID(), stranger);

const warm = verifier();
await warm.verify(known);
await run('warm', counts.warm, (t) => warm.verify(t), known);
await run('unknown', counts.unknown, (t) => warm.verify(t), forged);
const eager = verifier({ cooldownMs: 0 });
await eager.verify(known);
await run('refetch', counts.refetch, (t) => eager.verify(t), forged);

server.closeAllConnections();
server.close();
