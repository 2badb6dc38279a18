#!/usr/bin/env node
// Federated grants per second (workload identity federation: an external OIDC token as the client assertion of
// a user-assigned identity) against client_credentials + client_secret grants, in the same run, on the same
// authority. The external issuer is a loopback HTTPS OIDC issuer in this process with its own CA (trusted by the
// authority through `openmsi federation issuer set --ca`); its keys are fetched once (discovery → JWKS) during
// the warm-up, so the measured grants run with a warm issuer cache, and every request presents the same token,
// as SDKs re-reading a projected token file do. Authority on CPU 0, load generator on CPU 1 (taskset).
//
//   npm run bench:federation
//   BENCH_DURATION=20 BENCH_CONNECTIONS=64 npm run bench:federation
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:https';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { autocannonRun, freePort, hasTaskset, waitFor } from './lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const { createCertificateAuthority, issueServerCertificate } = await import(join(root, 'dist/pki/ca.js'));
const duration = Number(process.env.BENCH_DURATION ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const clock = { now: () => Date.now() };

function openmsi(dataDir, args) {
  return JSON.parse(execFileSync(process.execPath, [cli, '--data-dir', dataDir, ...args], { encoding: 'utf8' }) || 'null');
}

async function load(url, body, caPath) {
  const args = ['-c', String(connections), '-d', String(duration), '-m', 'POST', '-H', 'content-type=application/x-www-form-urlencoded', '-b', body];
  return autocannonRun(url, args, { NODE_EXTRA_CA_CERTS: caPath });
}

/** A loopback OIDC issuer (discovery + JWKS) with its own CA; counts the requests it serves. */
async function startIssuer(dir) {
  const ca = await createCertificateAuthority({ commonName: 'bench OIDC issuer CA', clock });
  const leaf = await issueServerCertificate({
    caCertPem: ca.certPem,
    caKeyPkcs8Pem: ca.keyPkcs8Pem,
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    clock,
  });
  const caPath = join(dir, 'issuer-ca.pem');
  writeFileSync(caPath, ca.certPem);
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-key', alg: 'RS256', use: 'sig' };
  const state = { issuer: '', served: 0 };
  const server = createServer({ cert: leaf.certPem, key: leaf.keyPkcs8Pem }, (req, res) => {
    state.served++;
    res.setHeader('content-type', 'application/json');
    if (req.url === '/cluster/.well-known/openid-configuration') res.end(JSON.stringify({ issuer: state.issuer, jwks_uri: `${state.issuer}/jwks` }));
    else if (req.url === '/cluster/jwks') res.end(JSON.stringify({ keys: [jwk] }));
    else res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.issuer = `https://127.0.0.1:${server.address().port}/cluster`;
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ sub: 'system:serviceaccount:bench:workload', aud: ['api://AzureADTokenExchange'] })
    .setProtectedHeader({ alg: 'RS256', kid: 'bench-key', typ: 'JWT' })
    .setIssuer(state.issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(privateKey);
  return { state, caPath, token, close: () => new Promise((r) => server.close(r)) };
}

const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-bench-fed-'));
const children = [];
let issuer;
try {
  const port = await freePort();
  openmsi(dataDir, ['init', '--port', String(port)]);
  const caPath = join(dataDir, 'ca/ca.pem');
  const [acmd, aargs] = hasTaskset
    ? ['taskset', ['-c', '0', process.execPath, cli, '--data-dir', dataDir, 'authority']]
    : [process.execPath, [cli, '--data-dir', dataDir, 'authority']];
  const authority = spawn(acmd, aargs, { env: { ...process.env, OPENMSI_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(authority);
  const config = JSON.parse(readFileSync(join(dataDir, 'config.json'), 'utf8'));
  config.publicUrl ??= `https://localhost:${port}`;
  const ca = readFileSync(caPath);
  const { request } = await import('node:https');
  await waitFor(
    () =>
      new Promise((resolve) => {
        const req = request(`${config.publicUrl}/${config.tenantId}/v2.0/.well-known/openid-configuration`, { ca }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        });
        req.on('error', () => resolve(false));
        req.end();
      }),
    'the authority',
  );

  issuer = await startIssuer(dataDir);
  openmsi(dataDir, ['group', 'create', '-n', 'bench', '-l', 'local']);
  const identity = openmsi(dataDir, ['identity', 'create', '-n', 'workload', '-g', 'bench']);
  openmsi(dataDir, ['federation', 'issuer', 'set', '--issuer', issuer.state.issuer, '--ca', `@${issuer.caPath}`]);
  openmsi(dataDir, [
    'identity',
    'federated-credential',
    'create',
    '--identity-name',
    'workload',
    '-g',
    'bench',
    '-n',
    'cluster',
    '--issuer',
    issuer.state.issuer,
    '--subject',
    'system:serviceaccount:bench:workload',
  ]);
  const sp = openmsi(dataDir, ['ad', 'sp', 'create-for-rbac', '--name', 'bench']);
  const scope = 'https://vault.azure.net/.default';
  const federatedBody = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: identity.clientId,
    scope,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: issuer.token,
  }).toString();
  const secretBody = new URLSearchParams({ grant_type: 'client_credentials', client_id: sp.appId, client_secret: sp.password, scope }).toString();
  const tokenUrl = `${config.publicUrl}/adfs/oauth2/v2.0/token`;

  // One federated grant first, while this process (the issuer) is free to answer the authority's discovery and
  // JWKS fetches: the load runs below block this process (autocannon is run synchronously).
  const first = await new Promise((resolve, reject) => {
    const req = request(tokenUrl, { method: 'POST', ca, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    req.end(federatedBody);
  });
  if (first.status !== 200) throw new Error(`the first federated grant failed: ${first.status} ${first.text}`);
  // Warm up both (JIT, TLS), then measure.
  await load(tokenUrl, federatedBody, caPath).catch(() => undefined);
  await load(tokenUrl, secretBody, caPath).catch(() => undefined);
  const servedBefore = issuer.state.served;
  const federated = await load(tokenUrl, federatedBody, caPath);
  const clientCredentials = await load(tokenUrl, secretBody, caPath);
  const report = {
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version, pinned: hasTaskset },
    settings: { durationSeconds: duration, connections, keepAlive: true, store: 'sqlite' },
    federatedGrant: federated,
    clientCredentialsSecretGrant: clientCredentials,
    issuerRequestsWhileMeasuring: issuer.state.served - servedBefore,
    ratio: Number((federated.requestsPerSecond / clientCredentials.requestsPerSecond).toFixed(3)),
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  if (federated.non2xx > 0 || federated.errors > 0 || clientCredentials.non2xx > 0) {
    process.stderr.write('the benchmark saw failed requests\n');
    process.exitCode = 1;
  }
} finally {
  for (const child of children) child.kill('SIGTERM');
  await issuer?.close();
  await new Promise((r) => setTimeout(r, 500));
  if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
}
