// RS256 signing cost on this machine: jose (WebCrypto, thread-pool jobs) against node:crypto one-shot sign.
// Run pinned to one core to see the per-core cost: `taskset -c 0 node bench/rs256-sign.mjs`.
// `--floor SECONDS`: only the node:crypto one-shot rate (the token issuer's signer), as JSON — the signing floor
// the grant benchmark (token-grant.mjs) measures on the authority's core in the same run.
import { generateKeyPairSync, sign } from 'node:crypto';
import { SignJWT } from 'jose';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const claims = { aud: 'https://vault.azure.net', iss: 'x', oid: 'y', tid: 'z', exp: 1 };

/** Signatures per second of wall time, and CPU µs per signature (steadier on a busy machine). */
function oneShot(seconds) {
  const t = performance.now();
  const cpu = process.cpuUsage();
  let n = 0;
  while (performance.now() - t < seconds * 1000) {
    const input = Buffer.from(JSON.stringify({ alg: 'RS256' }) + '.' + JSON.stringify(claims));
    sign('sha256', input, privateKey);
    n++;
  }
  const used = process.cpuUsage(cpu);
  return {
    signaturesPerSecond: Math.round(n / ((performance.now() - t) / 1000)),
    cpuMicrosPerSignature: Number(((used.user + used.system) / n).toFixed(1)),
  };
}

const floorAt = process.argv.indexOf('--floor');
if (floorAt >= 0) {
  oneShot(0.5); // warm-up
  process.stdout.write(JSON.stringify(oneShot(Number(process.argv[floorAt + 1] ?? 3))) + '\n');
} else {
  for (const conc of [1, 32]) {
    const t = performance.now();
    let n = 0;
    while (performance.now() - t < 3000) {
      await Promise.all(Array.from({ length: conc }, () => new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k' }).sign(privateKey)));
      n += conc;
    }
    console.log(`jose/webcrypto concurrency ${conc}: ${(n / 3).toFixed(0)}/s`);
  }
  console.log(`node:crypto sign: ${oneShot(3).signaturesPerSecond}/s`);
}
