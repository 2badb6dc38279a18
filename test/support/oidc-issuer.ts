/**
 * A test OIDC issuer on loopback HTTPS with its own CA, as a Kubernetes cluster or GitHub Actions would be
 * for workload identity federation: it serves `{issuer}/.well-known/openid-configuration` and its JWKS, and
 * signs tokens (service-account-token shaped by default). Loopback only.
 */
import { createServer, type Server } from 'node:https';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type JWTPayload } from 'jose';
import { loopbackTls } from './https.js';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

export interface SigningKey {
  kid: string;
  alg: string;
  pair: KeyPair;
  jwk: JWK;
}

export interface TestOidcIssuer {
  /** The `iss` tokens carry: `https://127.0.0.1:{port}{path}`. */
  issuer: string;
  origin: string;
  /** The issuer's own CA (PEM), and a file holding it (for NODE_EXTRA_CA_CERTS / REQUESTS_CA_BUNDLE). */
  caPem: string;
  caPath: string;
  /** The key the JWKS publishes and tokens are signed with. */
  current: SigningKey;
  /** Paths requested, in order. */
  requests: string[];
  /** Signs `claims` over {@link defaults} (a claim set to `undefined` is left out). */
  sign(claims?: Record<string, unknown>, options?: { key?: SigningKey; kid?: string }): Promise<string>;
  /** A key of the same kind that the JWKS does not publish. */
  newKey(alg?: string): Promise<SigningKey>;
  /** Publishes `key` (alongside or instead of the current one) and signs with it from now on. */
  rotate(key: SigningKey, options?: { keepOld?: boolean }): void;
  /** Answer nothing at all (a hung issuer) until set back. */
  hang: boolean;
  jwks(): { keys: JWK[] };
  close(): Promise<void>;
}

export const TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';

async function makeKey(alg = 'RS256'): Promise<SigningKey> {
  const pair = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  return { kid, alg, pair, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' } };
}

/** Starts an issuer on 127.0.0.1 (port 0) whose issuer URL has the path `path` (default `/cluster-1`). */
export async function startTestOidcIssuer(options: { dir: string; path?: string; subject?: string }): Promise<TestOidcIssuer> {
  const tls = await loopbackTls('test OIDC issuer CA');
  const caPath = join(options.dir, `oidc-issuer-ca-${randomUUID().slice(0, 8)}.pem`);
  writeFileSync(caPath, tls.caPem);
  let published: SigningKey[] = [await makeKey()];
  const requests: string[] = [];
  const path = options.path ?? '/cluster-1';
  let issuer = '';
  const state = { hang: false };
  const server: Server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const url = req.url ?? '/';
    requests.push(url);
    if (state.hang) return; // never answers
    const send = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url === `${path}/.well-known/openid-configuration`) {
      send({
        issuer,
        jwks_uri: `${issuer}/openid/v1/jwks`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
      });
    } else if (url === `${path}/openid/v1/jwks`) {
      send({ keys: published.map((k) => k.jwk) });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `https://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  issuer = `${origin}${path}`;
  const subject = options.subject ?? 'system:serviceaccount:default:workload';

  const result: TestOidcIssuer = {
    issuer,
    origin,
    caPem: tls.caPem,
    caPath,
    current: published[0]!,
    requests,
    get hang() {
      return state.hang;
    },
    set hang(value: boolean) {
      state.hang = value;
    },
    async sign(claims = {}, signOptions = {}) {
      const key = signOptions.key ?? result.current;
      const now = Math.floor(Date.now() / 1000);
      const all: Record<string, unknown> = { iss: issuer, sub: subject, aud: [TOKEN_EXCHANGE_AUDIENCE], iat: now, nbf: now, exp: now + 3600, ...claims };
      const payload = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) as JWTPayload;
      return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: signOptions.kid ?? key.kid, typ: 'JWT' }).sign(key.pair.privateKey);
    },
    newKey: makeKey,
    rotate(key, rotateOptions = {}) {
      published = rotateOptions.keepOld === true ? [...published, key] : [key];
      result.current = key;
    },
    jwks: () => ({ keys: published.map((k) => k.jwk) }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return result;
}
