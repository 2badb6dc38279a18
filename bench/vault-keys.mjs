#!/usr/bin/env node
// Key Vault key operations per second through the vault, against node:crypto doing the same operation in the
// same run (issue 17): RSA-2048 decrypt (RSA-OAEP) and ES256 sign over a SHA-256 digest, each by a caller
// holding Key Vault Crypto User on an RBAC vault of `openmsi server`, with a valid token over HTTPS keep-alive.
// The baseline is the bare primitive in a loop on the same pinned core: `privateDecrypt` with OAEP/SHA-1, and
// `crypto.sign('sha256', ...)` with IEEE P1363 output (node:crypto has no ECDSA over a given digest, so its
// sign also hashes the 32-byte input; the vault signs the digest with @noble/curves, keys spec §0.3).
// Server and baseline pinned to CPU 0, autocannon to CPU 1 when `taskset` exists; alternating rounds.
//
//   npm run bench:keys                          # 3 rounds of 10 s per side, 32 connections
//   BENCH_DURATION=5 BENCH_ROUNDS=1 node bench/vault-keys.mjs
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { autocannonRun, freePort, hasTaskset, httpsCall, openmsiJson, median, pinned, waitFor } from './lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const duration = Number(process.env.BENCH_DURATION ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const roundCount = Number(process.env.BENCH_ROUNDS ?? 3);

/** The node:crypto baseline: `op` (decrypt | sign) in a bounded loop for `seconds` on CPU 0, in its own process. */
function baseline(op, jwk, seconds) {
  const code = `
    const c = require('node:crypto');
    const key = c.createPrivateKey({ key: ${JSON.stringify(jwk)}, format: 'jwk' });
    const input = ${op === 'decrypt' ? `c.publicEncrypt({ key, padding: c.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from('bench'))` : `c.createHash('sha256').update('bench').digest()`};
    const run = () => ${op === 'decrypt' ? `c.privateDecrypt({ key, padding: c.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, input)` : `c.sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' })`};
    for (let i = 0; i < 200; i++) run();
    const end = performance.now() + ${seconds * 1000};
    let n = 0;
    const start = performance.now();
    while (performance.now() < end) { run(); n++; }
    process.stdout.write(String(Math.round(n / ((performance.now() - start) / 1000))));`;
  const [cmd, args] = pinned(0, process.execPath, ['-e', code]);
  return Number(execFileSync(cmd, args, { encoding: 'utf8' }));
}

const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-bench-keys-'));
const children = [];
try {
  const port = await freePort();
  openmsiJson(dataDir, ['init', '--port', String(port)]);
  const caPath = join(dataDir, 'ca/ca.pem');
  const ca = readFileSync(caPath, 'utf8');
  const config = JSON.parse(readFileSync(join(dataDir, 'config.json'), 'utf8'));
  const [scmd, sargs] = pinned(0, process.execPath, [cli, '--data-dir', dataDir, 'server']);
  const server = spawn(scmd, sargs, { env: { ...process.env, OPENMSI_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(server);
  const authority = `localhost:${port}`;
  await waitFor(
    async () => (await httpsCall(port, `/${config.tenantId}/v2.0/.well-known/openid-configuration`, { host: authority, ca })).status === 200,
    'the server',
  );

  openmsiJson(dataDir, ['group', 'create', '-n', 'bench', '-l', 'local']);
  const vault = openmsiJson(dataDir, ['keyvault', 'create', '-g', 'bench', '-n', 'kv-bench']);
  const officer = openmsiJson(dataDir, ['ad', 'sp', 'create-for-rbac', '--name', 'bench-officer']);
  const user = openmsiJson(dataDir, ['ad', 'sp', 'create-for-rbac', '--name', 'bench-crypto-user']);
  openmsiJson(dataDir, ['role', 'assignment', 'create', '--assignee', officer.appId, '--role', 'Key Vault Crypto Officer', '--scope', vault.id]);
  openmsiJson(dataDir, ['role', 'assignment', 'create', '--assignee', user.appId, '--role', 'Key Vault Crypto User', '--scope', vault.id]);

  const domain = config.vaultDomain ?? 'vault.localhost';
  const vaultHost = `kv-bench.${domain}:${port}`;
  async function token(sp) {
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: sp.appId,
      client_secret: sp.password,
      scope: `https://${domain}:${port}/.default`,
    });
    const r = await httpsCall(port, `/${config.tenantId}/oauth2/v2.0/token`, {
      host: authority,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
      ca,
    });
    return JSON.parse(r.body).access_token;
  }
  const vaultCall = async (tok, method, path, body) => {
    const r = await httpsCall(port, path, {
      host: vaultHost,
      method,
      headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      ca,
    });
    if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
    return JSON.parse(r.body);
  };
  // Imported, so the baseline uses the very same private keys.
  const { generateKeyPairSync } = await import('node:crypto');
  const rsaJwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ecJwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const officerToken = await token(officer);
  await vaultCall(officerToken, 'PUT', '/keys/rsa?api-version=7.4', { key: rsaJwk });
  await vaultCall(officerToken, 'PUT', '/keys/ec?api-version=7.4', { key: ecJwk });
  const userToken = await token(user);
  const ciphertext = (
    await vaultCall(userToken, 'POST', '/keys/rsa/encrypt?api-version=7.4', { alg: 'RSA-OAEP', value: randomBytes(32).toString('base64url') })
  ).value;
  const workloads = {
    rsa2048Decrypt: {
      path: '/keys/rsa/decrypt?api-version=7.4',
      body: { alg: 'RSA-OAEP', value: ciphertext },
      baseline: () => baseline('decrypt', rsaJwk, duration),
    },
    es256Sign: {
      path: '/keys/ec/sign?api-version=7.4',
      body: { alg: 'ES256', value: createHash('sha256').update('bench').digest('base64url') },
      baseline: () => baseline('sign', ecJwk, duration),
    },
  };
  const report = {
    machine: { cpus: cpus().length, node: process.version, pinned: hasTaskset },
    settings: { durationSeconds: duration, rounds: roundCount, connections, keepAlive: true, store: 'sqlite' },
  };
  for (const [name, w] of Object.entries(workloads)) {
    await vaultCall(userToken, 'POST', w.path, w.body);
    const args = ['-c', String(connections), '-d', String(duration), '-m', 'POST', '-b', JSON.stringify(w.body)];
    const headers = { host: vaultHost, authorization: `Bearer ${userToken}`, 'content-type': 'application/json' };
    const load = () =>
      autocannonRun(`https://127.0.0.1:${port}${w.path}`, [...args, ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`])], {
        NODE_EXTRA_CA_CERTS: caPath,
      });
    load(); // warm-up (JIT, caches)
    const rounds = [];
    for (let i = 0; i < roundCount; i++) rounds.push({ vault: load(), nodeCrypto: w.baseline() });
    const vaultRps = rounds.map((r) => r.vault.requestsPerSecond);
    const bare = rounds.map((r) => r.nodeCrypto);
    const mid = rounds.find((r) => r.vault.requestsPerSecond === median(vaultRps)).vault;
    report[name] = {
      vault: { ...mid, roundsRequestsPerSecond: vaultRps, non2xx: rounds.reduce((n, r) => n + r.vault.non2xx, 0) },
      nodeCryptoOpsPerSecond: median(bare),
      roundsNodeCrypto: bare,
      ratio: Number((median(vaultRps) / median(bare)).toFixed(3)),
      roundRatios: rounds.map((r) => Number((r.vault.requestsPerSecond / r.nodeCrypto).toFixed(3))),
    };
    if (report[name].vault.non2xx > 0 || mid.errors > 0) {
      process.stderr.write(`${name}: the vault benchmark saw failed requests\n`);
      process.exitCode = 1;
    }
  }
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
} finally {
  for (const child of children) child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
}
