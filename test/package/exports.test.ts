import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

/** Third-party services import the verifier from the published package; the exports map must resolve (after `npm run build`). */
describe('package exports', () => {
  it('exposes the token verifier as openmsi and openmsi/verifier', async () => {
    // Module names in variables: resolved at run time against the built package, not at type-check time.
    const rootName = 'openmsi';
    const verifierName = 'openmsi/verifier';
    const root = (await import(rootName)) as Record<string, unknown>;
    const verifier = (await import(verifierName)) as Record<string, unknown>;
    for (const mod of [root, verifier]) {
      assert.equal(typeof mod['createTokenVerifier'], 'function');
      assert.equal(typeof mod['remoteJwks'], 'function');
      assert.equal(typeof mod['TokenVerificationError'], 'function');
    }
  });
});
