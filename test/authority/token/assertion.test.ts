/**
 * The one JWT-bearer assertion check (src/authority/token/assertion.ts), store-less: real signatures (jose), a
 * fake clock and an in-memory replay store. Every refusal is pinned by its AADSTS code, and the replay record by
 * its key and lifetime.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';
import { FakeClock } from '../../../src/shared/clock.js';
import { OAuthError } from '../../../src/shared/oauth-error.js';
import {
  ENTRA_ASSERTION_ERRORS,
  JWT_BEARER_ASSERTION_TYPE,
  verifyAssertion,
  type AssertionErrors,
  type AssertionPolicy,
  type DecodedAssertion,
} from '../../../src/authority/token/assertion.js';

const NOW = Date.UTC(2031, 4, 6, 7, 8, 9);
const NOW_S = Math.floor(NOW / 1000);
const ISSUER = '2f0c1a52-5a1e-4b8e-9d53-0a5f3c1e2b7d';
const AUDIENCE = 'https://login.localhost:8443/tenant/oauth2/v2.0/token';
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function memoryReplay() {
  const seen = new Map<string, number>();
  return {
    seen,
    store: {
      remember: (key: string, expiresAt: number) => {
        if (seen.has(key)) return Promise.resolve(false);
        seen.set(key, expiresAt);
        return Promise.resolve(true);
      },
      purgeExpired: () => Promise.resolve(0),
    },
  };
}

interface Options {
  claims?: JWTPayload;
  header?: Record<string, unknown>;
  alg?: string;
  key?: KeyObject;
}

async function sign({ claims = {}, header = {}, alg = 'ES256', key = ec.privateKey }: Options = {}): Promise<string> {
  return new SignJWT({ iss: ISSUER, sub: ISSUER, aud: AUDIENCE, exp: NOW_S + 600, jti: `jti-${String(Math.random())}`, ...claims })
    .setProtectedHeader({ alg, kid: 'k1', ...header })
    .sign(key);
}

function policy(overrides: Partial<AssertionPolicy<string>> = {}): AssertionPolicy<string> & { decoded: DecodedAssertion[] } {
  const decoded: DecodedAssertion[] = [];
  return {
    algorithms: ['ES256', 'RS256'],
    audiences: ['https://other.example/token', AUDIENCE],
    clock: new FakeClock(NOW),
    replay: memoryReplay().store,
    resolveKey: (d) => {
      decoded.push(d);
      return Promise.resolve({ key: d.alg === 'RS256' ? rsa.publicKey : ec.publicKey, issuer: ISSUER, subject: 'the-credential' });
    },
    decoded,
    ...overrides,
  };
}

const form = (assertion: string | undefined, type: string | null = JWT_BEARER_ASSERTION_TYPE) => ({
  ...(type === null ? {} : { client_assertion_type: type }),
  ...(assertion === undefined ? {} : { client_assertion: assertion }),
});

/** 'ok', or the refusal as `status error aadsts: description`. */
async function outcome(params: Record<string, string>, p: AssertionPolicy<string> = policy()): Promise<string> {
  try {
    await verifyAssertion(params, p);
    return 'ok';
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    return `${String(err.status)} ${err.error} ${String(err.aadsts)}: ${err.message}`;
  }
}

void describe('verifyAssertion', () => {
  void it('accepts a valid assertion: its claims and what the key resolution found; the resolver saw the header, claims and alg', async () => {
    const p = policy();
    const assertion = await sign({ claims: { jti: 'the-jti' } });
    const verified = await verifyAssertion(form(assertion), p);
    assert.equal(verified.subject, 'the-credential');
    assert.equal(verified.payload.jti, 'the-jti');
    assert.equal(p.decoded.length, 1);
    assert.deepEqual([p.decoded[0]?.alg, p.decoded[0]?.header.kid, p.decoded[0]?.payload.jti], ['ES256', 'k1', 'the-jti']);
    assert.equal(await outcome(form(await sign({ alg: 'RS256', key: rsa.privateKey }))), 'ok', 'any listed algorithm');
  });

  void it('refuses a missing or wrong client_assertion_type, and a missing assertion', async () => {
    const assertion = await sign();
    for (const type of [null, '', 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer']) {
      assert.match(await outcome(form(assertion, type)), /^400 invalid_request 50027: client_assertion_type must be/, String(type));
    }
    assert.match(await outcome(form(undefined)), /^400 invalid_request 900144: .*'client_assertion'/);
    assert.match(await outcome(form('  ')), /^400 invalid_request 900144/);
  });

  void it('refuses what is not a compact JWS of base64url JSON before looking up a key', async () => {
    const p = policy();
    const valid = await sign();
    for (const bad of ['a.b', `${valid}.x`, 'abc']) assert.match(await outcome(form(bad), p), /^400 invalid_request 50027: .*three parts/, bad);
    for (const bad of ['a.b.c', `${b64({ alg: 'ES256' })}.notjson.c`, `!!.${b64({})}.c`]) {
      assert.match(await outcome(form(bad), p), /^400 invalid_request 50027: .*not base64url JSON/, bad);
    }
    assert.equal(p.decoded.length, 0);
  });

  void it('refuses an algorithm not on the list (or none named) before looking up a key', async () => {
    const p = policy({ algorithms: ['ES256'] });
    assert.match(await outcome(form(await sign({ alg: 'RS256', key: rsa.privateKey })), p), /^401 invalid_client 5002738: .*RS256/);
    const noAlg = `${b64({ typ: 'JWT', kid: 'k1' })}.${b64({ iss: ISSUER, sub: ISSUER, aud: AUDIENCE, exp: NOW_S + 60, jti: 'x' })}.sig`;
    assert.match(await outcome(form(noAlg), policy({ algorithms: ['ES256'] })), /^401 invalid_client 5002738: .*none/);
    const unsigned = `${b64({ alg: 'none' })}.${b64({ iss: ISSUER, sub: ISSUER, aud: AUDIENCE, exp: NOW_S + 60, jti: 'x' })}.`;
    assert.match(await outcome(form(unsigned), p), /^401 invalid_client 5002738/);
    assert.equal(p.decoded.length, 0);
  });

  void it("the resolver's own refusal is the answer", async () => {
    const p = policy({ resolveKey: () => Promise.reject(new OAuthError(401, 'invalid_client', 'no such key', { aadsts: 700027 })) });
    assert.equal(await outcome(form(await sign()), p), '401 invalid_client 700027: no such key');
  });

  void it('refuses a signature by another key (700027), and a key of another type than the header says', async () => {
    assert.match(await outcome(form(await sign({ key: other.privateKey }))), /^401 invalid_client 700027: .*does not verify/);
    const p = policy({ resolveKey: () => Promise.resolve({ key: rsa.publicKey, issuer: ISSUER, subject: 's' }) });
    assert.match(await outcome(form(await sign()), p), /^400 invalid_request 50027: .*could not be verified/);
  });

  void it('verifies only with the header algorithm', async () => {
    // A listed algorithm whose key the resolver returns, but a header naming another listed algorithm.
    const p = policy({ resolveKey: () => Promise.resolve({ key: ec.publicKey, issuer: ISSUER, subject: 's' }) });
    assert.notEqual(await outcome(form(await sign({ alg: 'RS256', key: rsa.privateKey })), p), 'ok');
  });

  void it('exp is required; exp and nbf are checked against the injected clock with five minutes of skew', async () => {
    assert.match(await outcome(form(await sign({ claims: { exp: undefined } }))), /^400 invalid_request 50027: .*claim 'exp' is invalid/);
    assert.match(await outcome(form(await sign({ claims: { exp: 'soon' as unknown as number } }))), /^400 invalid_request 50027: .*claim 'exp'/);
    assert.equal(await outcome(form(await sign({ claims: { exp: NOW_S - 299 } }))), 'ok', 'expired within the skew');
    assert.match(await outcome(form(await sign({ claims: { exp: NOW_S - 301 } }))), /^401 invalid_client 700024/);
    assert.equal(await outcome(form(await sign({ claims: { nbf: NOW_S + 299 } }))), 'ok', 'not yet valid within the skew');
    assert.match(await outcome(form(await sign({ claims: { nbf: NOW_S + 301 } }))), /^401 invalid_client 700024/);
    assert.match(await outcome(form(await sign({ claims: { iat: 'then' as unknown as number } }))), /^401 invalid_client 700024/);
    // Valid by the wall clock, expired by the injected one.
    const later = policy({ clock: new FakeClock(NOW + 3_600_000) });
    assert.match(await outcome(form(await sign()), later), /^401 invalid_client 700024/);
  });

  void it('iss and sub must both be the resolved issuer', async () => {
    for (const claims of [{ iss: 'someone-else' }, { sub: 'someone-else' }, { iss: undefined }, { sub: undefined }]) {
      assert.match(await outcome(form(await sign({ claims }))), /^401 invalid_client 700021/, JSON.stringify(claims));
    }
  });

  void it('aud must be one of the accepted audiences, as a string or in an array', async () => {
    assert.equal(await outcome(form(await sign({ claims: { aud: 'https://other.example/token' } }))), 'ok');
    assert.equal(await outcome(form(await sign({ claims: { aud: ['https://nope.example', AUDIENCE] } }))), 'ok');
    for (const aud of ['https://nope.example', [], ['https://nope.example'], undefined, `${AUDIENCE}/`]) {
      assert.match(await outcome(form(await sign({ claims: { aud } }))), /^401 invalid_client 50013/, JSON.stringify(aud));
    }
  });

  void it('refuses an assertion valid for longer than 24 hours, from nbf or else from now', async () => {
    const day = 24 * 3600;
    assert.equal(await outcome(form(await sign({ claims: { exp: NOW_S + day } }))), 'ok');
    assert.match(await outcome(form(await sign({ claims: { exp: NOW_S + day + 1 } }))), /^400 invalid_request 50027: .*longer than 24 hours/);
    assert.equal(await outcome(form(await sign({ claims: { nbf: NOW_S - 200, exp: NOW_S - 200 + day } }))), 'ok');
    assert.match(await outcome(form(await sign({ claims: { nbf: NOW_S - 200, exp: NOW_S - 199 + day } }))), /longer than 24 hours/);
  });

  void it('requires a non-empty string jti', async () => {
    for (const jti of [undefined, '', 42]) {
      assert.match(await outcome(form(await sign({ claims: { jti: jti as string } }))), /^400 invalid_request 50027: .*'jti' claim is required/, String(jti));
    }
  });

  void it('records the jti per issuer until the assertion expires plus the skew, and refuses it the second time (700229)', async () => {
    const { seen, store } = memoryReplay();
    const p = policy({ replay: store });
    const assertion = await sign({ claims: { jti: 'once', exp: NOW_S + 600.25 } });
    assert.equal(await outcome(form(assertion), p), 'ok');
    const key = createHash('sha256').update(ISSUER).update('\0').update('once').digest('base64url');
    assert.deepEqual([...seen], [[key, Math.ceil((NOW_S + 600.25 + 300) * 1000)]]);
    assert.match(await outcome(form(assertion), p), /^401 invalid_client 700229/);
    // The same jti from another issuer is another record.
    const otherIssuer = policy({
      replay: store,
      resolveKey: () => Promise.resolve({ key: ec.publicKey, issuer: 'other-app', subject: 's' }),
    });
    assert.equal(await outcome(form(await sign({ claims: { jti: 'once', iss: 'other-app', sub: 'other-app' } })), otherIssuer), 'ok');
    assert.equal(seen.size, 2);
  });

  void it('nothing is recorded for a refused assertion', async () => {
    const { seen, store } = memoryReplay();
    const p = policy({ replay: store });
    await outcome(form(await sign({ claims: { aud: 'https://nope.example' } })), p);
    await outcome(form(await sign({ key: other.privateKey })), p);
    assert.equal(seen.size, 0);
  });

  void it("reports the caller's own errors when given (the host API's), Entra's otherwise", async () => {
    const mine = (name: string) => () => new OAuthError(401, 'invalid_client', `mine: ${name}`);
    const errors: AssertionErrors = {
      invalidType: mine('type'),
      malformed: mine('malformed'),
      unsupportedAlg: mine('alg'),
      expired: mine('expired'),
      badSignature: mine('signature'),
      issuerMismatch: mine('issuer'),
      audienceInvalid: mine('audience'),
      replayed: mine('replayed'),
    };
    const p = policy({ errors });
    assert.match(await outcome(form(await sign(), 'x'), p), /mine: type/);
    assert.match(await outcome(form('a.b'), p), /mine: malformed/);
    assert.match(await outcome(form(await sign({ alg: 'PS256', key: rsa.privateKey })), p), /mine: alg/);
    assert.match(await outcome(form(await sign({ claims: { exp: NOW_S - 1000 } })), p), /mine: expired/);
    assert.match(await outcome(form(await sign({ key: other.privateKey })), p), /mine: signature/);
    assert.match(await outcome(form(await sign({ claims: { iss: 'x' } })), p), /mine: issuer/);
    assert.match(await outcome(form(await sign({ claims: { aud: 'x' } })), p), /mine: audience/);
    const once = await sign();
    await outcome(form(once), p);
    assert.match(await outcome(form(once), p), /mine: replayed/);
    assert.equal(ENTRA_ASSERTION_ERRORS.replayed().aadsts, 700229);
  });
});
