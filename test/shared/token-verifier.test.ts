import { after, before, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createHash, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { CompactSign, SignJWT } from 'jose';
import { TokenVerificationError, createTokenVerifier, discoverJwks, localJwks, remoteJwks } from '../../src/shared/token-verifier.js';
import type { JwksDocument, TokenVerificationErrorCode } from '../../src/shared/token-verifier.js';
import { FakeClock, SECOND, epochSeconds } from '../../src/shared/clock.js';
import { loopbackTls } from '../support/https.js';

const TID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const OID = '5b3e2d1c-0000-4000-8000-000000000001';
const ISSUER = `https://sts.openmsi.test/${TID}/`;
const AUDIENCE = 'https://vault.azure.net';

interface TestKey {
  kid: string;
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

function newKey(kid: string = randomUUID()): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' } };
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function claims(clock: { now(): number }, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = epochSeconds(clock);
  const base: Record<string, unknown> = {
    aud: AUDIENCE,
    iss: ISSUER,
    iat: now,
    nbf: now,
    exp: now + 3600,
    appid: 'c0ffee00-0000-4000-8000-000000000002',
    appidacr: '2',
    idp: ISSUER,
    idtyp: 'app',
    oid: OID,
    sub: OID,
    tid: TID,
    uti: randomUUID(),
    ver: '1.0',
  };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
}

function sign(key: TestKey, payload: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid, x5t: key.kid, ...header }).sign(key.privateKey);
}

async function assertCode(promise: Promise<unknown>, code: TokenVerificationErrorCode, token?: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof TokenVerificationError, `expected TokenVerificationError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (token !== undefined) {
      assert.ok(!err.message.includes(token), 'message must not contain the token');
      for (const part of token.split('.')) if (part.length > 8) assert.ok(!err.message.includes(part));
    }
    return true;
  });
}

void describe('createTokenVerifier with a local JWKS', () => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const key = newKey();
  const other = newKey();
  const ecKey = (() => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return { ...publicKey.export({ format: 'jwk' }), kid: 'ec-key', use: 'sig' };
  })();
  const jwks: JwksDocument = { keys: [key.jwk, ecKey] };
  const verifier = createTokenVerifier({ jwks: localJwks(() => jwks), issuers: [ISSUER], audiences: [AUDIENCE], clock });

  void it('accepts a good token and returns header and claims', async () => {
    const result = await verifier.verify(await sign(key, claims(clock)));
    assert.deepEqual(result.header, { alg: 'RS256', kid: key.kid, x5t: key.kid });
    assert.equal(result.claims.oid, OID);
    assert.equal(result.claims.tid, TID);
    assert.equal(result.claims.idtyp, 'app');
  });

  void it('tolerates one trailing slash of difference in the audience, and no more', async () => {
    await verifier.verify(await sign(key, claims(clock, { aud: `${AUDIENCE}/` })));
    const slashVerifier = createTokenVerifier({ jwks: localJwks(() => jwks), issuers: [ISSUER], audiences: [`${AUDIENCE}/`], clock });
    await slashVerifier.verify(await sign(key, claims(clock, { aud: AUDIENCE })));
    await assertCode(verifier.verify(await sign(key, claims(clock, { aud: `${AUDIENCE}//` }))), 'bad_audience');
    await assertCode(verifier.verify(await sign(key, claims(clock, { aud: 'https://management.azure.com/' }))), 'bad_audience');
    await assertCode(verifier.verify(await sign(key, claims(clock, { aud: [AUDIENCE] }))), 'bad_audience');
  });

  void it('malformed: not a compact JWS, bad header JSON, missing kid, empty signature', async () => {
    for (const token of ['', 'abc', 'a.b', 'a.b.c.d', '..', `${b64({ alg: 'RS256', kid: key.kid })}.${b64(claims(clock))}.`]) {
      await assertCode(verifier.verify(token), 'malformed');
    }
    await assertCode(verifier.verify(`${Buffer.from('{not json').toString('base64url')}.${b64({})}.c2ln`), 'malformed');
    await assertCode(verifier.verify(`${b64({ alg: 'RS256' })}.${b64(claims(clock))}.c2ln`), 'malformed');
    await assertCode(verifier.verify(undefined as unknown as string), 'malformed');
    await assertCode(verifier.verify('x'.repeat(20_000)), 'malformed');
    // A correctly signed JWS whose payload is not a JSON object.
    const notObject = await new CompactSign(new TextEncoder().encode('[1]')).setProtectedHeader({ alg: 'RS256', kid: key.kid }).sign(key.privateKey);
    await assertCode(verifier.verify(notObject), 'malformed');
  });

  void it('unsupported_alg: none, HS256 (including the RSA-public-key-as-HMAC-secret trick) and unlisted algorithms', async () => {
    const none = `${b64({ alg: 'none', kid: key.kid })}.${b64(claims(clock))}.`;
    await assertCode(verifier.verify(none), 'unsupported_alg', none);
    const noneNoKid = `${b64({ alg: 'none' })}.${b64(claims(clock))}.`;
    await assertCode(verifier.verify(noneNoKid), 'unsupported_alg');

    const hsSecret = new SignJWT(claims(clock)).setProtectedHeader({ alg: 'HS256', kid: key.kid });
    const hs = await hsSecret.sign(new TextEncoder().encode('a-shared-secret-that-is-long-enough-for-hs256'));
    await assertCode(verifier.verify(hs), 'unsupported_alg', hs);

    const pubPem = createHash('sha256').update(JSON.stringify(key.jwk)).digest();
    const confused = await new SignJWT(claims(clock)).setProtectedHeader({ alg: 'HS256', kid: key.kid }).sign(pubPem);
    await assertCode(verifier.verify(confused), 'unsupported_alg');

    const ps = await new SignJWT(claims(clock)).setProtectedHeader({ alg: 'PS256', kid: key.kid }).sign(key.privateKey);
    await assertCode(verifier.verify(ps), 'unsupported_alg');
  });

  void it('accepts only RS256 by default: an ES256 token from a published EC key is refused unless ES256 is listed', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ecJwks: JwksDocument = { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'ec-signing', use: 'sig', alg: 'ES256' }] };
    const es256 = await new SignJWT(claims(clock)).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: 'ec-signing' }).sign(privateKey);
    const byDefault = createTokenVerifier({ jwks: localJwks(() => ecJwks), issuers: [ISSUER], audiences: [AUDIENCE], clock });
    await assertCode(byDefault.verify(es256), 'unsupported_alg', es256);
    const listed = createTokenVerifier({ jwks: localJwks(() => ecJwks), issuers: [ISSUER], audiences: [AUDIENCE], clock, algorithms: ['ES256'] });
    assert.equal((await listed.verify(es256)).header.alg, 'ES256');
  });

  void it('unknown_key: kid not in the JWKS', async () => {
    const token = await sign(other, claims(clock));
    await assertCode(verifier.verify(token), 'unknown_key', token);
  });

  void it('bad_signature: forged with another key under a known kid, tampered payload, key type mismatch', async () => {
    await assertCode(verifier.verify(await sign(other, claims(clock), { kid: key.kid })), 'bad_signature');
    const good = await sign(key, claims(clock));
    const [h, , s] = good.split('.');
    const tampered = `${h}.${b64(claims(clock, { oid: 'someone-else' }))}.${s}`;
    await assertCode(verifier.verify(tampered), 'bad_signature', tampered);
    await assertCode(verifier.verify(await sign(key, claims(clock), { kid: 'ec-key' })), 'bad_signature');
  });

  void it('expired / not_yet_valid honour the injected clock and the 60 s tolerance', async () => {
    const now = epochSeconds(clock);
    await verifier.verify(await sign(key, claims(clock, { exp: now - 59 })));
    await assertCode(verifier.verify(await sign(key, claims(clock, { exp: now - 61 }))), 'expired');
    await verifier.verify(await sign(key, claims(clock, { nbf: now + 59 })));
    await assertCode(verifier.verify(await sign(key, claims(clock, { nbf: now + 61 }))), 'not_yet_valid');

    const token = await sign(key, claims(clock, { exp: now + 3600 }));
    clock.advance(3600 * SECOND + 61 * SECOND);
    await assertCode(verifier.verify(token), 'expired');
    clock.set(Date.UTC(2026, 0, 1));
  });

  void it('bad_issuer: exact match only', async () => {
    await assertCode(verifier.verify(await sign(key, claims(clock, { iss: ISSUER.slice(0, -1) }))), 'bad_issuer');
    await assertCode(verifier.verify(await sign(key, claims(clock, { iss: 'https://evil.example/' }))), 'bad_issuer');
  });

  void it('missing_claim: exp, iss, aud, oid, tid, sub, ver, iat, nbf', async () => {
    for (const claim of ['exp', 'iss', 'aud', 'oid', 'tid', 'sub', 'ver', 'iat', 'nbf']) {
      await assertCode(verifier.verify(await sign(key, claims(clock, { [claim]: undefined }))), 'missing_claim');
    }
    await assertCode(verifier.verify(await sign(key, claims(clock, { oid: 42 }))), 'missing_claim');
  });

  void it('treats a non-numeric exp or non-array roles as malformed', async () => {
    await assertCode(verifier.verify(await sign(key, claims(clock, { exp: 'tomorrow' }))), 'malformed');
    await assertCode(verifier.verify(await sign(key, claims(clock, { roles: 'Admin' }))), 'malformed');
    const withRoles = await verifier.verify(await sign(key, claims(clock, { roles: ['Secrets.Read'] })));
    assert.deepEqual(withRoles.claims.roles, ['Secrets.Read']);
  });

  void it('rejects invalid options with TypeError', () => {
    const source = localJwks(() => jwks);
    assert.throws(() => createTokenVerifier({ jwks: source, issuers: [], audiences: [AUDIENCE] }), TypeError);
    assert.throws(() => createTokenVerifier({ jwks: source, issuers: [ISSUER], audiences: [''] }), TypeError);
    assert.throws(() => createTokenVerifier({ jwks: source, issuers: [ISSUER], audiences: [AUDIENCE], algorithms: ['HS256'] }), TypeError);
    assert.throws(() => createTokenVerifier({ jwks: source, issuers: [ISSUER], audiences: [AUDIENCE], algorithms: ['none'] }), TypeError);
    assert.throws(() => createTokenVerifier({ jwks: {} as never, issuers: [ISSUER], audiences: [AUDIENCE] }), TypeError);
    assert.throws(() => createTokenVerifier({ jwks: source, issuers: [ISSUER], audiences: [AUDIENCE], clockToleranceSec: -1 }), TypeError);
  });

  void it('sees keys added to or removed from the local set immediately', async () => {
    const set: JwksDocument = { keys: [] };
    const v = createTokenVerifier({ jwks: localJwks(() => set), issuers: [ISSUER], audiences: [AUDIENCE], clock });
    const token = await sign(key, claims(clock));
    await assertCode(v.verify(token), 'unknown_key');
    set.keys = [key.jwk];
    await v.verify(token);
    set.keys = [];
    await assertCode(v.verify(token), 'unknown_key');
  });

  // Survivors of the mutation campaign (issue 15): each test below pins one security decision a mutant changed.

  void it('invariant: each allowed asymmetric algorithm verifies a token it signed, when listed (RS, PS, ES, EdDSA, Ed25519)', async () => {
    const ec = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve });
    const ed = generateKeyPairSync('ed25519');
    const rsa = { privateKey: key.privateKey, publicKey: createPublicKey(key.privateKey) };
    const table: [string, { privateKey: KeyObject; publicKey: KeyObject }][] = [
      ['RS256', rsa],
      ['RS384', rsa],
      ['RS512', rsa],
      ['PS256', rsa],
      ['PS384', rsa],
      ['PS512', rsa],
      ['ES256', ec('P-256')],
      ['ES384', ec('P-384')],
      ['ES512', ec('P-521')],
      ['EdDSA', ed],
      ['Ed25519', ed],
    ];
    for (const [alg, pair] of table) {
      const set: JwksDocument = { keys: [{ ...pair.publicKey.export({ format: 'jwk' }), kid: `k-${alg}`, use: 'sig' }] };
      const v = createTokenVerifier({ jwks: localJwks(() => set), issuers: [ISSUER], audiences: [AUDIENCE], clock, algorithms: [alg] });
      const token = await new SignJWT(claims(clock)).setProtectedHeader({ alg, kid: `k-${alg}` }).sign(pair.privateKey);
      assert.equal((await v.verify(token)).header.alg, alg, alg);
    }
  });

  void it('invariant: a segment that is not strict base64url is malformed, never handed to a lenient decoder', async () => {
    // atob() drops whitespace: without the shape check a padded copy of a good token would verify (or get another code).
    const good = await sign(key, claims(clock));
    const segments = good.split('.');
    for (let i = 0; i < 3; i++) {
      for (const spoil of [
        (s: string) => ` ${s}`,
        (s: string) => `${s} `,
        (s: string) => `!${s}`,
        (s: string) => `${s}!`,
        (s: string) => `${s}=`,
        (s: string) => `${s.slice(0, 8)}\t${s.slice(8)}`,
      ]) {
        const parts = [...segments];
        parts[i] = spoil(parts[i]!);
        const token = parts.join('.');
        await assertCode(verifier.verify(token), 'malformed');
      }
    }
    await assertCode(verifier.verify(`${good}.${segments[2]!}`), 'malformed');
    await assertCode(verifier.verify(`${segments[0]!}.${segments[1]!}`), 'malformed');
  });

  void it('invariant: MAX_TOKEN_LENGTH bound: a valid token of 16384 characters is accepted, one of 16385 is malformed', async () => {
    async function signedOfLength(length: number): Promise<string> {
      // Base64url makes 4 characters of 3 bytes: start just above the pad that reaches `length` (a few signatures,
      // not thousands from length - 600 down).
      const unpadded = (await sign(key, claims(clock, { pad: '' }))).length;
      for (let pad = Math.ceil(((length - unpadded) * 3) / 4) + 8; pad > 0; pad--) {
        for (const extra of ['', 'x', 'xy']) {
          const token = await sign(key, claims(clock, { pad: 'p'.repeat(pad) }), { extra });
          if (token.length === length) return token;
          if (token.length < length - 8) break;
        }
      }
      throw new Error(`no token of length ${String(length)}`);
    }
    const atBound = await signedOfLength(16 * 1024);
    assert.equal((await verifier.verify(atBound)).claims.oid, OID);
    await assertCode(verifier.verify(await signedOfLength(16 * 1024 + 1)), 'malformed');
  });

  void it('malformed, not unsupported_alg: a header whose alg is missing or not a string', async () => {
    for (const alg of [undefined, 42, null, ['RS256']]) {
      const header = b64(alg === undefined ? { kid: key.kid } : { alg, kid: key.kid });
      await assertCode(verifier.verify(`${header}.${b64(claims(clock))}.c2ln`), 'malformed');
    }
  });

  void it('an unsupported alg is named in the message only when it is a short alphanumeric word (no attacker text in logs)', async () => {
    const table: [string, string][] = [
      ['HS256', 'HS256'],
      ['A', 'A'],
      ['ABCDEFGHIJKLMNOP', 'ABCDEFGHIJKLMNOP'],
      ['ABCDEFGHIJKLMNOPQ', '(invalid)'],
      ['HS256\ninjected', '(invalid)'],
      ['injected\nHS256', '(invalid)'],
      ['HS-256', '(invalid)'],
      ['\u0000', '(invalid)'],
      ['', '(invalid)'],
    ];
    for (const [alg, shown] of table) {
      await assert.rejects(verifier.verify(`${b64({ alg, kid: key.kid })}.${b64(claims(clock))}.c2ln`), (err: unknown) => {
        assert.ok(err instanceof TokenVerificationError);
        assert.equal(err.code, 'unsupported_alg');
        assert.equal(err.message, `Token algorithm ${shown} is not allowed`, JSON.stringify(alg));
        return true;
      });
    }
  });

  void it('invariant: kid must be a non-empty string of at most 256 characters, even when such a key is published', async () => {
    const long = newKey('k'.repeat(257));
    const max = { ...long, kid: 'k'.repeat(256), jwk: { ...long.jwk, kid: 'k'.repeat(256) } };
    const empty = { ...long, kid: '', jwk: { ...long.jwk, kid: '' } };
    const set: JwksDocument = { keys: [long.jwk, max.jwk, empty.jwk] };
    const v = createTokenVerifier({ jwks: localJwks(() => set), issuers: [ISSUER], audiences: [AUDIENCE], clock });
    assert.equal((await v.verify(await sign(max, claims(clock)))).header.kid, max.kid);
    await assertCode(v.verify(await sign(long, claims(clock))), 'malformed');
    await assertCode(v.verify(await sign(empty, claims(clock))), 'malformed');
    await assertCode(v.verify(await sign(key, claims(clock), { kid: 42 })), 'malformed');
  });

  void it('invariant: oid, tid, sub and ver must be non-empty strings; roles must be an array of strings only', async () => {
    for (const claim of ['oid', 'tid', 'sub', 'ver']) {
      for (const value of ['', 0, null, ['x']]) {
        await assertCode(verifier.verify(await sign(key, claims(clock, { [claim]: value }))), 'missing_claim');
      }
    }
    for (const roles of [['Secrets.Read', 1], [1], [null], [{}], ['Secrets.Read', ['Admin']], { 0: 'Admin' }, 'Admin']) {
      await assertCode(verifier.verify(await sign(key, claims(clock, { roles }))), 'malformed');
    }
    assert.deepEqual((await verifier.verify(await sign(key, claims(clock, { roles: [] })))).claims.roles, []);
  });

  void it('a non-numeric nbf is malformed, not not_yet_valid; x5t is returned only when the header has a string one', async () => {
    await assertCode(verifier.verify(await sign(key, claims(clock, { nbf: 'tomorrow' }))), 'malformed');
    await assertCode(verifier.verify(await sign(key, claims(clock, { iat: 'today' }))), 'malformed');
    const noX5t = await new SignJWT(claims(clock)).setProtectedHeader({ alg: 'RS256', kid: key.kid }).sign(key.privateKey);
    assert.deepEqual((await verifier.verify(noX5t)).header, { alg: 'RS256', kid: key.kid });
    assert.deepEqual((await verifier.verify(await sign(key, claims(clock), { x5t: 42 }))).header, { alg: 'RS256', kid: key.kid });
  });

  void it('invariant: options that would silently weaken verification are refused with TypeError', () => {
    const source = localJwks(() => jwks);
    const base = { jwks: source, issuers: [ISSUER], audiences: [AUDIENCE] };
    const bad: Record<string, unknown>[] = [
      { issuers: [] },
      { issuers: [ISSUER, ''] },
      { issuers: [ISSUER, 42] },
      { issuers: ISSUER },
      { audiences: [] },
      { audiences: [AUDIENCE, ''] },
      { audiences: [AUDIENCE, 42] },
      { audiences: AUDIENCE },
      { algorithms: [] },
      { algorithms: ['RS256', ''] },
      { algorithms: ['RS256', 'HS256'] },
      { clock: {} },
      { clock: { now: 1 } },
      { clock: null },
      { clockToleranceSec: -1 },
      { clockToleranceSec: -0.5 },
      { clockToleranceSec: Number.NaN },
      { clockToleranceSec: Number.POSITIVE_INFINITY },
      { clockToleranceSec: Number.NEGATIVE_INFINITY },
      { clockToleranceSec: '60' },
      { jwks: {} },
      { jwks: null },
    ];
    for (const override of bad) {
      assert.throws(() => createTokenVerifier({ ...base, ...override }), TypeError, JSON.stringify(override));
    }
    assert.throws(() => localJwks(42 as never), TypeError);
    assert.throws(() => localJwks(undefined as never), TypeError);
  });

  void it('a clock tolerance of 0 is allowed and means no leeway', async () => {
    const strict = createTokenVerifier({ jwks: localJwks(() => jwks), issuers: [ISSUER], audiences: [AUDIENCE], clock, clockToleranceSec: 0 });
    const now = epochSeconds(clock);
    await strict.verify(await sign(key, claims(clock, { exp: now + 1, nbf: now })));
    await assertCode(strict.verify(await sign(key, claims(clock, { exp: now }))), 'expired');
    await assertCode(strict.verify(await sign(key, claims(clock, { nbf: now + 1 }))), 'not_yet_valid');
  });

  void it('invariant: only public signing JWKs are trusted (use sig or absent; RSA, EC, OKP; never a private key)', { timeout: 20_000 }, async () => {
    const publicJwk = key.jwk;
    const privateJwk = { ...key.privateKey.export({ format: 'jwk' }), kid: key.kid, use: 'sig' };
    const noUse = { ...publicJwk, use: undefined };
    const table: [string, Record<string, unknown>, 'accept' | TokenVerificationErrorCode][] = [
      ['use sig', publicJwk, 'accept'],
      ['no use', noUse, 'accept'],
      ['use enc', { ...publicJwk, use: 'enc' }, 'unknown_key'],
      ['use SIG', { ...publicJwk, use: 'SIG' }, 'unknown_key'],
      ['use empty', { ...publicJwk, use: '' }, 'unknown_key'],
      ['private key (d)', privateJwk, 'unknown_key'],
      ['private key (d) without use', { ...privateJwk, use: undefined }, 'unknown_key'],
      ['kty oct', { kty: 'oct', k: Buffer.from('a-shared-secret').toString('base64url'), kid: key.kid }, 'unknown_key'],
      ['kty missing', { ...publicJwk, kty: undefined }, 'unknown_key'],
      ['RSA without n', { kty: 'RSA', e: 'AQAB', kid: key.kid }, 'unknown_key'],
      ['17-bit RSA (jose refuses it)', { kty: 'RSA', n: 'AQAB', e: 'AQAB', kid: key.kid }, 'bad_signature'],
    ];
    const token = await sign(key, claims(clock));
    for (const [name, jwk, expected] of table) {
      const set: JwksDocument = { keys: [JSON.parse(JSON.stringify(jwk)) as Record<string, unknown>] };
      const v = createTokenVerifier({ jwks: localJwks(() => set), issuers: [ISSUER], audiences: [AUDIENCE], clock });
      if (expected === 'accept') assert.equal((await v.verify(token)).claims.oid, OID, name);
      else await assertCode(v.verify(token), expected);
    }
  });

  void it('invariant: new key material under the same kid replaces the cached key at once (RSA, EC, OKP)', async () => {
    const pairs: [string, () => { privateKey: KeyObject; publicKey: KeyObject }][] = [
      ['RS256', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
      ['ES256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
      ['EdDSA', () => generateKeyPairSync('ed25519')],
    ];
    for (const [alg, generate] of pairs) {
      const [before, after] = [generate(), generate()];
      const set: JwksDocument = { keys: [{ ...before.publicKey.export({ format: 'jwk' }), kid: 'same', use: 'sig' }] };
      const v = createTokenVerifier({ jwks: localJwks(() => set), issuers: [ISSUER], audiences: [AUDIENCE], clock, algorithms: [alg] });
      const signWith = (k: KeyObject) => new SignJWT(claims(clock)).setProtectedHeader({ alg, kid: 'same' }).sign(k);
      await v.verify(await signWith(before.privateKey));
      set.keys = [{ ...after.publicKey.export({ format: 'jwk' }), kid: 'same', use: 'sig' }];
      await v.verify(await signWith(after.privateKey));
      await assertCode(v.verify(await signWith(before.privateKey)), 'bad_signature');
    }
  });

  void it('the imported-key cache holds at most 256 keys: the 257th distinct key empties it', async () => {
    let reads = 0;
    const counted = (kid: string): Record<string, unknown> => {
      const jwk: Record<string, unknown> = { ...key.jwk, kid };
      // importPublicJwk reads `use` first: counting reads counts imports.
      Object.defineProperty(jwk, 'use', {
        enumerable: true,
        get: () => {
          reads++;
          return 'sig';
        },
      });
      return jwk;
    };
    const set: JwksDocument = { keys: Array.from({ length: 257 }, (_, i) => counted(`c${String(i)}`)) };
    const source = localJwks(() => set);
    const importsOf = async (kid: string): Promise<number> => {
      const before = reads;
      assert.ok(await source.getKey(kid, 'RS256'), kid);
      return reads - before;
    };
    assert.ok((await importsOf('c0')) > 0);
    assert.equal(await importsOf('c0'), 0, 'a cached key is not imported again');
    for (let i = 1; i < 256; i++) await importsOf(`c${String(i)}`);
    assert.equal(await importsOf('c0'), 0, '256 keys fit');
    assert.ok((await importsOf('c256')) > 0);
    assert.ok((await importsOf('c0')) > 0, 'the 257th key emptied the cache');
  });
});

void describe('remoteJwks over a real loopback HTTPS server', () => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const keyA = newKey('key-a');
  const keyB = newKey('key-b');
  let served: JwksDocument = { keys: [keyA.jwk] };
  let status = 200;
  let fetches = 0;
  let oversize = false;
  let chunked = false;
  let caPem: string;
  let server: https.Server;
  let base: string;

  before(async () => {
    const tls = await loopbackTls();
    caPem = tls.caPem;
    server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
      if (req.url === '/.well-known/openid-configuration') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/keys` }));
        return;
      }
      fetches++;
      res.statusCode = status;
      res.setHeader('content-type', 'application/json');
      // A slow-ish response widens the window in which concurrent lookups must share one fetch.
      if (chunked) {
        // No content-length: only the running count can stop it.
        for (let i = 0; i < 40; i++) res.write(`${'x'.repeat(64 * 1024)}`);
        res.end();
        return;
      }
      setTimeout(() => res.end(oversize ? JSON.stringify({ keys: [], pad: 'x'.repeat(2 * 1024 * 1024) }) : JSON.stringify(served)), 20);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // jose's remote key set times its cache and cooldown by Date.now(): mock it in step with the verifier's clock.
    mock.timers.enable({ apis: ['Date'], now: clock.now() });
  });

  after(async () => {
    mock.timers.reset();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function reset(): void {
    served = { keys: [keyA.jwk] };
    status = 200;
    fetches = 0;
    oversize = false;
    chunked = false;
  }

  function advance(ms: number): void {
    clock.advance(ms);
    mock.timers.tick(ms);
  }

  function makeVerifier(options: { cooldownMs?: number; cacheMaxAgeMs?: number } = {}) {
    const source = remoteJwks(`${base}/keys`, { ca: caPem, ...options });
    return { source, verifier: createTokenVerifier({ jwks: source, issuers: [ISSUER], audiences: [AUDIENCE], clock }) };
  }

  void it('only allows https URLs', () => {
    assert.throws(() => remoteJwks('http://example.com/keys'), TypeError);
    assert.throws(() => remoteJwks('http://127.0.0.1:1/keys'), TypeError);
    assert.throws(() => remoteJwks('ftp://example.com/keys'), TypeError);
    assert.throws(() => remoteJwks('not a url'), TypeError);
    assert.ok(remoteJwks('http://127.0.0.1:1/keys', { allowInsecureLoopback: true }));
    assert.throws(() => remoteJwks('http://example.com/keys', { allowInsecureLoopback: true }), TypeError);
  });

  void it('single-flight: N concurrent verifies of a newly published kid cause one fetch', async () => {
    reset();
    const { verifier } = makeVerifier();
    await verifier.verify(await sign(keyA, claims(clock)));
    assert.equal(fetches, 1);
    served = { keys: [keyA.jwk, keyB.jwk] };
    advance(31 * SECOND); // past the unknown-kid cooldown
    const token = await sign(keyB, claims(clock));
    const results = await Promise.all(Array.from({ length: 25 }, () => verifier.verify(token)));
    assert.equal(results.length, 25);
    assert.equal(fetches, 2);
  });

  void it('single-flight on a cold cache too', async () => {
    reset();
    const { verifier } = makeVerifier();
    const token = await sign(keyA, claims(clock));
    await Promise.all(Array.from({ length: 10 }, () => verifier.verify(token)));
    assert.equal(fetches, 1);
  });

  void it('cooldown: an unknown kid twice inside the cooldown fetches once; after the cooldown it refetches', async () => {
    reset();
    const { verifier } = makeVerifier();
    const token = await sign(keyB, claims(clock));
    await assertCode(verifier.verify(token), 'unknown_key');
    await assertCode(verifier.verify(token), 'unknown_key');
    assert.equal(fetches, 1);
    served = { keys: [keyA.jwk, keyB.jwk] };
    advance(10 * SECOND);
    await assertCode(verifier.verify(token), 'unknown_key');
    assert.equal(fetches, 1);
    advance(21 * SECOND);
    await verifier.verify(await sign(keyB, claims(clock)));
    assert.equal(fetches, 2);
  });

  void it('refetches when the cache is older than cacheMaxAgeMs, so removed keys stop verifying', async () => {
    reset();
    const { verifier } = makeVerifier({ cacheMaxAgeMs: 10 * 60_000 });
    await verifier.verify(await sign(keyA, claims(clock)));
    served = { keys: [keyB.jwk] };
    advance(5 * 60_000);
    await verifier.verify(await sign(keyA, claims(clock)));
    assert.equal(fetches, 1);
    advance(5 * 60_000);
    await assertCode(verifier.verify(await sign(keyA, claims(clock))), 'unknown_key');
    assert.equal(fetches, 2);
  });

  void it('keeps serving a stale set when a refresh fails, and fails loudly with no set at all', async () => {
    reset();
    const { verifier } = makeVerifier({ cacheMaxAgeMs: 60_000 });
    await verifier.verify(await sign(keyA, claims(clock)));
    status = 500;
    advance(2 * 60_000);
    await verifier.verify(await sign(keyA, claims(clock)));
    assert.equal(fetches, 2);
    // Inside the cooldown after a failure, no new attempt.
    await verifier.verify(await sign(keyA, claims(clock)));
    assert.equal(fetches, 2);

    const cold = makeVerifier();
    await assert.rejects(cold.verifier.verify(await sign(keyA, claims(clock))), (err: Error) => {
      assert.ok(!(err instanceof TokenVerificationError));
      assert.match(err.message, /unavailable/);
      return true;
    });
  });

  void it('counts a body that is not a JWK Set as a failed fetch, and does not ask again inside the cooldown', async () => {
    reset();
    served = { keys: 'none' } as unknown as JwksDocument;
    const { source, verifier } = makeVerifier();
    await assert.rejects(source.refresh(), /not a JWK Set/);
    await assert.rejects(verifier.verify(await sign(keyA, claims(clock))), /unavailable/);
    assert.equal(fetches, 1);
    served = { keys: [keyA.jwk] };
    advance(31 * SECOND);
    await verifier.verify(await sign(keyA, claims(clock)));
    assert.equal(fetches, 2);
  });

  void it('rejects oversized responses and untrusted servers', async () => {
    reset();
    oversize = true;
    const { source } = makeVerifier();
    await assert.rejects(source.refresh(), /exceeds/);
    oversize = false;
    const untrusted = remoteJwks(`${base}/keys`);
    await assert.rejects(untrusted.refresh(), /failed/);
  });

  void it('discovers jwks_uri from the OpenID configuration', async () => {
    reset();
    const source = await discoverJwks(base, { ca: caPem });
    const verifier = createTokenVerifier({ jwks: source, issuers: [ISSUER], audiences: [AUDIENCE], clock });
    await verifier.verify(await sign(keyA, claims(clock)));
    assert.equal(fetches, 1);
  });

  void it('invariant: http:// only for loopback hosts and only when allowed; no other scheme, ever (remoteJwks and discoverJwks)', async () => {
    for (const url of ['http://127.0.0.1:1/keys', 'http://localhost:1/keys', 'http://[::1]:1/keys']) {
      assert.throws(() => remoteJwks(url), TypeError, url);
      assert.ok(remoteJwks(url, { allowInsecureLoopback: true }), url);
      await assert.rejects(discoverJwks(url), TypeError, url);
    }
    for (const url of [
      'ftp://127.0.0.1/keys',
      'ws://localhost/keys',
      'file:///etc/keys',
      'http://127.0.0.2/keys',
      'http://[::2]/keys',
      'http://localhost.example/keys',
      'http://0.0.0.0/keys',
      'data:application/json,{}',
    ]) {
      assert.throws(() => remoteJwks(url, { allowInsecureLoopback: true }), TypeError, url);
      await assert.rejects(discoverJwks(url, { allowInsecureLoopback: true }), TypeError, url);
    }
  });

  void it('discovers and fetches over http on loopback when allowed', async () => {
    const plain = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      const own = `http://127.0.0.1:${String((plain.address() as AddressInfo).port)}`;
      res.end(JSON.stringify(req.url === '/.well-known/openid-configuration' ? { jwks_uri: `${own}/keys` } : { keys: [keyA.jwk] }));
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      const source = await discoverJwks(`http://127.0.0.1:${String((plain.address() as AddressInfo).port)}`, { allowInsecureLoopback: true, timeoutMs: 2000 });
      const verifier = createTokenVerifier({ jwks: source, issuers: [ISSUER], audiences: [AUDIENCE], clock });
      await verifier.verify(await sign(keyA, claims(clock)));
    } finally {
      plain.closeAllConnections();
      await new Promise<void>((resolve) => plain.close(() => resolve()));
    }
  });

  void it('invariant: cooldown, cache age, timeout and size options must be finite and non-negative (0 allowed); ca must be PEM text or a Buffer', () => {
    const url = `${base}/keys`;
    for (const name of ['cooldownMs', 'cacheMaxAgeMs', 'timeoutMs', 'maxResponseBytes']) {
      for (const value of [-1, -0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '5', null]) {
        assert.throws(() => remoteJwks(url, { ca: caPem, [name]: value }), TypeError, `${name}=${String(value)}`);
      }
      assert.ok(remoteJwks(url, { ca: caPem, [name]: 0 }), `${name}=0`);
    }
    for (const ca of [42, {}, ['pem'], null]) assert.throws(() => remoteJwks(url, { ca: ca as never }), TypeError, JSON.stringify(ca));
  });

  void it('takes the CA as a Buffer too', async () => {
    reset();
    const source = remoteJwks(`${base}/keys`, { ca: Buffer.from(caPem) });
    const verifier = createTokenVerifier({ jwks: source, issuers: [ISSUER], audiences: [AUDIENCE], clock });
    await verifier.verify(await sign(keyA, claims(clock)));
  });

  void it('a refreshed body whose keys are not all JSON objects is a failed fetch: the last good set keeps serving, no refetch inside the cooldown', async () => {
    const bodies: unknown[] = [
      { keys: [null] },
      { keys: [1] },
      { keys: ['key'] },
      { keys: [[]] },
      { keys: [true] },
      { keys: [keyA.jwk, null] },
      { keys: [keyA.jwk, 'x'] },
    ];
    for (const body of bodies) {
      reset();
      const { verifier } = makeVerifier({ cacheMaxAgeMs: 60_000 });
      await verifier.verify(await sign(keyA, claims(clock)));
      served = body as JwksDocument;
      advance(2 * 60_000);
      await verifier.verify(await sign(keyA, claims(clock)));
      await verifier.verify(await sign(keyA, claims(clock)));
      assert.equal(fetches, 2, JSON.stringify(body));
      advance(31 * SECOND);
    }
  });

  void it('bounds the response size also when the server streams it without a content-length; a body of exactly the limit is accepted', async () => {
    reset();
    chunked = true;
    const { source } = makeVerifier();
    await assert.rejects(source.refresh(), /exceeds/);
    chunked = false;
    const exact = remoteJwks(`${base}/keys`, { ca: caPem, maxResponseBytes: Buffer.byteLength(JSON.stringify(served)) });
    await exact.refresh();
    assert.ok(await exact.getKey('key-a', 'RS256'));
    const under = remoteJwks(`${base}/keys`, { ca: caPem, maxResponseBytes: Buffer.byteLength(JSON.stringify(served)) - 1 });
    await assert.rejects(under.refresh(), /exceeds/);
  });

  void it('getKey without an algorithm looks up an RS256 key; of two keys under one kid the first verifies', async () => {
    reset();
    served = { keys: [keyA.jwk, { ...keyB.jwk, kid: 'key-a' }] };
    const { source, verifier } = makeVerifier();
    assert.ok(await source.getKey('key-a'));
    await verifier.verify(await sign(keyA, claims(clock)));
    await assertCode(verifier.verify(await sign(keyB, claims(clock), { kid: 'key-a' })), 'bad_signature');
  });

  void it('takes the discovery URL itself as well as the issuer', async () => {
    reset();
    const source = await discoverJwks(`${base}/.well-known/openid-configuration`, { ca: caPem });
    assert.ok(await source.getKey('key-a', 'RS256'));
  });

  void it('times out a server that never answers', async () => {
    // Accepts TCP connections and never says anything, not even a TLS ServerHello.
    const sockets = new Set<net.Socket>();
    const hang = net.createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => hang.listen(0, '127.0.0.1', resolve));
    try {
      const source = remoteJwks(`https://127.0.0.1:${(hang.address() as AddressInfo).port}/keys`, { ca: caPem, timeoutMs: 200 });
      const started = performance.now();
      await assert.rejects(source.refresh());
      assert.ok(performance.now() - started < 2000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => hang.close(() => resolve()));
    }
  });
});
