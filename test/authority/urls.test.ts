import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AuthorityUrls } from '../../src/authority/urls.js';
import { defaultOrigin, explicitPublicUrl } from '../../src/shared/public-url.js';

const TID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const NAMES = ['localhost', 'Authority.Internal', '127.0.0.1', '0:0:0:0:0:0:0:1', '10.1.2.3'];

describe('advertised authority URLs', () => {
  it('derive the canonical origin from the listen address and the bound port unless a public URL is set', () => {
    for (const host of ['127.0.0.1', '0.0.0.0', '::', 'localhost']) assert.equal(defaultOrigin(host, 9443), 'https://localhost:9443');
    assert.equal(defaultOrigin('::1', 9443), 'https://[::1]:9443');
    assert.equal(defaultOrigin('10.1.2.3', 9443), 'https://10.1.2.3:9443');
    assert.equal(defaultOrigin('fd00::5', 9443), 'https://[fd00::5]:9443');

    const urls = new AuthorityUrls({ listenHost: '127.0.0.1', port: 0, certificateNames: NAMES });
    urls.bind(40123);
    assert.equal(urls.origin, 'https://localhost:40123');
    assert.equal(urls.v1Issuer(TID), `https://localhost:40123/${TID}/`);

    assert.equal(urls.canonicalIsCertified(), true);
    assert.equal(new AuthorityUrls({ listenHost: '10.9.9.9', port: 1, certificateNames: NAMES }).canonicalIsCertified(), false);

    const fixed = new AuthorityUrls({ publicUrl: 'https://authority.internal', listenHost: '0.0.0.0', port: 8443, certificateNames: NAMES });
    fixed.bind(9443);
    assert.equal(fixed.origin, 'https://authority.internal');
  });

  it('read a legacy defaulted public URL as unset, and keep an explicit one', () => {
    assert.equal(explicitPublicUrl({ publicUrl: 'https://localhost:8443', port: 8443 }), undefined);
    assert.equal(explicitPublicUrl({ port: 8443 }), undefined);
    assert.equal(explicitPublicUrl({ publicUrl: 'https://localhost:9443', port: 8443 }), 'https://localhost:9443');
    assert.equal(explicitPublicUrl({ publicUrl: 'https://authority.internal', port: 8443 }), 'https://authority.internal');
  });

  it('advertise the Host a client used only when it is a certificate name on the bound port', () => {
    const urls = new AuthorityUrls({ listenHost: '127.0.0.1', port: 8443, certificateNames: NAMES });
    assert.equal(urls.forHost('127.0.0.1:8443').v2Issuer(TID), `https://127.0.0.1:8443/${TID}/v2.0`);
    assert.equal(urls.forHost('[::1]:8443').tokenEndpoint(TID, 'v2'), `https://[::1]:8443/${TID}/oauth2/v2.0/token`);
    assert.equal(urls.forHost('AUTHORITY.internal:8443').origin, 'https://authority.internal:8443');
    assert.equal(urls.forHost('10.1.2.3:8443').origin, 'https://10.1.2.3:8443');
    // Forged or foreign: a name the certificate does not hold, another port, a path or credentials smuggled in.
    for (const forged of [
      'evil.example:8443',
      '127.0.0.1:9999',
      '127.0.0.1',
      'localhost:8443/evil',
      'evil@127.0.0.1:8443',
      '127.0.0.1:8443?x',
      '',
      undefined,
    ]) {
      assert.equal(urls.forHost(forged).origin, 'https://localhost:8443', String(forged));
    }
  });

  it('accept a client assertion addressed to the token endpoint of any advertised name, and nothing else', () => {
    const urls = new AuthorityUrls({ listenHost: '127.0.0.1', port: 8443, certificateNames: NAMES });
    const audiences = urls.assertionAudiences([TID, 'openmsi.local']);
    for (const origin of ['https://localhost:8443', 'https://127.0.0.1:8443', 'https://[::1]:8443', 'https://authority.internal:8443']) {
      assert.ok(audiences.includes(`${origin}/${TID}/oauth2/v2.0/token`), origin);
      assert.ok(audiences.includes(`${origin}/openmsi.local/oauth2/token`), origin);
    }
    assert.ok(!audiences.some((aud) => aud.includes(':9999') || aud.includes('evil')));
  });
});
