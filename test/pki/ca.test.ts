import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { X509Certificate, webcrypto } from 'node:crypto';
import { createCertificateAuthority, createSelfSignedSigningCertificate, derToPem, issueServerCertificate, pemToDer, thumbprints } from '../../src/pki/ca.js';
import type { CertificateAndKey } from '../../src/pki/ca.js';
import { DAY, FakeClock, systemClock } from '../../src/shared/clock.js';

/** GET / over TLS to the loopback server; resolves with the body or rejects with the TLS error. */
function get(port: number, options: { ca?: string; servername?: string; host?: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host: options.host ?? '127.0.0.1',
        port,
        path: '/',
        ca: options.ca,
        servername: options.servername,
        agent: false,
        timeout: 5000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

void describe('local CA over a real loopback TLS handshake', () => {
  let ca: CertificateAndKey;
  let leaf: CertificateAndKey;
  let server: https.Server;
  let port: number;

  before(async () => {
    ca = await createCertificateAuthority({ clock: systemClock });
    leaf = await issueServerCertificate({
      caCertPem: ca.certPem,
      caKeyPkcs8Pem: ca.keyPkcs8Pem,
      hostnames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
      clock: systemClock,
    });
    server = https.createServer({ cert: leaf.certPem, key: leaf.keyPkcs8Pem }, (_req, res) => res.end('hello'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  void it('verifies 127.0.0.1 with the CA trusted', async () => {
    assert.equal(await get(port, { ca: ca.certPem }), 'hello');
  });

  void it('verifies localhost with the CA trusted', async () => {
    assert.equal(await get(port, { ca: ca.certPem, servername: 'localhost' }), 'hello');
  });

  void it('fails without the CA', async () => {
    await assert.rejects(get(port, {}), (err: NodeJS.ErrnoException) => {
      assert.match(String(err.code), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER_CERT/);
      return true;
    });
  });

  void it('fails for a name not in the SAN', async () => {
    await assert.rejects(get(port, { ca: ca.certPem, servername: 'example.com' }), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  void it('fails when a different CA is trusted', async () => {
    const other = await createCertificateAuthority({ clock: systemClock });
    await assert.rejects(get(port, { ca: other.certPem }));
  });

  void it('builds the certificates the way clients expect', () => {
    const caCert = new X509Certificate(ca.certPem);
    const leafCert = new X509Certificate(leaf.certPem);
    assert.equal(caCert.ca, true);
    assert.equal(leafCert.ca, false);
    assert.ok(leafCert.checkIssued(caCert));
    assert.ok(leafCert.verify(caCert.publicKey));
    assert.equal(leafCert.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    assert.deepEqual(leafCert.keyUsage, ['1.3.6.1.5.5.7.3.1']); // Node reports the EKU here
    assert.equal(leafCert.publicKey.asymmetricKeyType, 'ec');
  });
});

void describe('CA validity and helpers', () => {
  void it('backdates notBefore by five minutes and honours validityDays on the injected clock', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const ca = await createCertificateAuthority({ clock, commonName: 'test, O=evil', validityDays: 10 });
    const cert = new X509Certificate(ca.certPem);
    assert.equal(new Date(cert.validFrom).getTime(), Date.UTC(2026, 0, 1) - 5 * 60_000);
    assert.equal(new Date(cert.validTo).getTime(), Date.UTC(2026, 0, 1) + 10 * DAY);
    // The comma stays inside the CN rather than creating an O= attribute.
    assert.doesNotMatch(cert.subject, /^O=evil$/m);
    const leaf = await issueServerCertificate({
      caCertPem: ca.certPem,
      caKeyPkcs8Pem: ca.keyPkcs8Pem,
      hostnames: ['localhost'],
      ipAddresses: [],
      clock,
    });
    // Never outlives the CA.
    assert.equal(new X509Certificate(leaf.certPem).validTo, cert.validTo);
  });

  void it('rejects bad input with TypeError and a mismatched CA key with Error', async () => {
    const ca = await createCertificateAuthority({ clock: systemClock });
    const other = await createCertificateAuthority({ clock: systemClock });
    const base = { caCertPem: ca.certPem, caKeyPkcs8Pem: ca.keyPkcs8Pem, clock: systemClock };
    await assert.rejects(issueServerCertificate({ ...base, hostnames: [], ipAddresses: [] }), TypeError);
    await assert.rejects(issueServerCertificate({ ...base, hostnames: [], ipAddresses: ['999.1.1.1'] }), TypeError);
    await assert.rejects(issueServerCertificate({ ...base, hostnames: ['bad host'], ipAddresses: [] }), TypeError);
    await assert.rejects(issueServerCertificate({ ...base, caKeyPkcs8Pem: other.keyPkcs8Pem, hostnames: ['localhost'], ipAddresses: [] }), /does not match/);
    await assert.rejects(createCertificateAuthority({ clock: systemClock, validityDays: 0 }), TypeError);
    await assert.rejects(createCertificateAuthority({ clock: systemClock, commonName: ' ' }), TypeError);
    const long = await createCertificateAuthority({ clock: systemClock, commonName: `openmsi local CA (${'h'.repeat(100)})` });
    assert.equal(new X509Certificate(long.certPem).subject.length, 'CN='.length + 64);
  });

  void it('creates a self-signed RSA signing certificate with stable thumbprints', async () => {
    const keyPair = await webcrypto.subtle.generateKey(
      { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      true,
      ['sign', 'verify'],
    );
    const der = await createSelfSignedSigningCertificate({ subject: 'openmsi token signing', keyPair, clock: systemClock, validityDays: 365 });
    const cert = new X509Certificate(der);
    assert.equal(cert.subject, 'CN=openmsi token signing');
    assert.ok(cert.verify(cert.publicKey));
    const pem = derToPem(der);
    assert.deepEqual(pemToDer(pem), der);
    const fromDer = thumbprints(der);
    const fromPem = thumbprints(pem);
    assert.equal(fromDer.sha1.length, 20);
    assert.equal(fromDer.sha256.length, 32);
    assert.deepEqual(fromDer, fromPem);
    assert.equal(fromDer.sha1.toString('hex').toUpperCase(), cert.fingerprint.replaceAll(':', ''));
    assert.equal(fromDer.sha256.toString('hex').toUpperCase(), cert.fingerprint256.replaceAll(':', ''));
    assert.throws(() => pemToDer('nothing here'), /No PEM block/);
  });
});
