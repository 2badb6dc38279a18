// RS256 signing cost on this machine: jose (WebCrypto, thread-pool jobs) against node:crypto one-shot sign.
// Run pinned to one core to see the per-core cost: `taskset -c 0 node bench/rs256-sign.mjs`.
import { generateKeyPairSync, sign } from 'node:crypto';
import { SignJWT } from 'jose';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const claims = { aud: 'https://vault.azure.net', iss: 'x', oid: 'y', tid: 'z', exp: 1 };
for (const conc of [1, 32]) {
  let t = performance.now();
  let n = 0;
  while (performance.now() - t < 3000) {
    await Promise.all(Array.from({ length: conc }, () => new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k' }).sign(privateKey)));
    n += conc;
  }
  console.log(`jose/webcrypto concurrency ${conc}: ${(n / 3).toFixed(0)}/s`);
}
let t = performance.now();
let n = 0;
while (performance.now() - t < 3000) {
  const input = Buffer.from(JSON.stringify({ alg: 'RS256' }) + '.' + JSON.stringify(claims));
  sign('sha256', input, privateKey);
  n++;
}
console.log(`node:crypto sign: ${(n / 3).toFixed(0)}/s`);
