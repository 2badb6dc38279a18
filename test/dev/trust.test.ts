/**
 * The trust-store installer against a temporary root directory and fake update commands: these tests never
 * touch this machine's trust store, even when run as root.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { createCertificateAuthority, issueServerCertificate } from '../../src/pki/ca.js';
import { systemClock } from '../../src/shared/clock.js';
import { installDevCa, uninstallDevCa, type DevTrustError, type DevTrustOptions } from '../../src/dev/trust.js';

describe('dev CA trust', () => {
  let base: string;
  let root: string;
  let caPem: string;
  let otherCaPem: string;
  let leafPem: string;
  let log: string;
  let fakeUpdate: string;
  let failingUpdate: string;

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'openmsi-dev-trust-'));
    const ca = await createCertificateAuthority({ clock: systemClock, commonName: 'openmsi dev CA' });
    // The anchor holds the certificate as X509Certificate prints it (final newline included).
    caPem = new X509Certificate(ca.certPem).toString();
    otherCaPem = (await createCertificateAuthority({ clock: systemClock, commonName: 'another dev CA' })).certPem;
    leafPem = (
      await issueServerCertificate({ caCertPem: ca.certPem, caKeyPkcs8Pem: ca.keyPkcs8Pem, hostnames: ['localhost'], ipAddresses: [], clock: systemClock })
    ).certPem;
    log = join(base, 'commands.log');
    fakeUpdate = join(base, 'fake-update');
    writeFileSync(fakeUpdate, `#!/bin/sh\necho "$0 $*" >> '${log}'\n`);
    chmodSync(fakeUpdate, 0o755);
    failingUpdate = join(base, 'failing-update');
    writeFileSync(failingUpdate, '#!/bin/sh\necho "simulated failure" >&2\nexit 3\n');
    chmodSync(failingUpdate, 0o755);
  });
  after(() => rmSync(base, { recursive: true, force: true }));
  beforeEach(() => {
    root = mkdtempSync(join(base, 'root-'));
    rmSync(log, { force: true });
  });

  const debianRoot = () => mkdirSync(join(root, 'usr/local/share/ca-certificates'), { recursive: true });
  const rhelRoot = () => mkdirSync(join(root, 'etc/pki/ca-trust/source/anchors'), { recursive: true });
  const opts = (extra: Partial<DevTrustOptions> = {}): DevTrustOptions => ({
    name: 'openmsi-dev',
    platform: 'linux',
    root,
    isRoot: () => true,
    commands: { updateCaCertificates: fakeUpdate, updateCaTrust: fakeUpdate, security: '/nonexistent/security' },
    ...extra,
  });
  const logged = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

  describe('dry-run plans per platform', () => {
    it('Debian/Ubuntu: the anchor under /usr/local/share/ca-certificates and update-ca-certificates', () => {
      const plan = installDevCa({ ...opts({ dryRun: true, commands: {} }), caPem, exists: (p) => p === join(root, 'usr/local/share/ca-certificates') });
      assert.deepEqual(plan, {
        platform: 'debian',
        dryRun: true,
        changed: true,
        filesWritten: [join(root, 'usr/local/share/ca-certificates/openmsi-dev.crt')],
        filesRemoved: [],
        commands: [['update-ca-certificates']],
      });
      assert.deepEqual(logged(), []);
    });

    it('Fedora/RHEL: the anchor under /etc/pki/ca-trust/source/anchors and update-ca-trust extract', () => {
      const plan = installDevCa({ ...opts({ dryRun: true, commands: {} }), caPem, exists: (p) => p === join(root, 'etc/pki/ca-trust/source/anchors') });
      assert.equal(plan.platform, 'rhel');
      assert.deepEqual(plan.filesWritten, [join(root, 'etc/pki/ca-trust/source/anchors/openmsi-dev.pem')]);
      assert.deepEqual(plan.commands, [['update-ca-trust', 'extract']]);
    });

    it('macOS: security add-trusted-cert into the System keychain (no root needed to plan)', () => {
      const plan = installDevCa({
        ...opts({ dryRun: true, platform: 'darwin', commands: {}, caFile: '/Users/me/.openmsi/ca.pem', isRoot: () => false }),
        caPem,
      });
      assert.deepEqual(plan.commands, [
        ['security', 'add-trusted-cert', '-d', '-r', 'trustRoot', '-k', '/Library/Keychains/System.keychain', '/Users/me/.openmsi/ca.pem'],
      ]);
      assert.deepEqual(plan.filesWritten, []);
      const removal = uninstallDevCa({ ...opts({ dryRun: true, platform: 'darwin', commands: {} }), caPem });
      assert.equal(removal.commands[0]![1], 'delete-certificate');
      assert.match(removal.commands[0]![3]!, /^[0-9A-F]{40}$/, 'found by SHA-1 fingerprint');
    });

    it('elsewhere: unsupported, saying what to do by hand', () => {
      for (const platform of ['win32', 'freebsd', 'linux'] as const) {
        assert.throws(
          () => installDevCa({ ...opts({ dryRun: true, platform, caFile: '/home/me/.openmsi/ca.pem' }), caPem, exists: () => false }),
          (err: DevTrustError) => err.code === 'unsupported' && err.message.includes('/home/me/.openmsi/ca.pem') && err.message.includes('NODE_EXTRA_CA_CERTS'),
        );
      }
    });
  });

  describe('Debian layout under a temporary root with a fake update-ca-certificates', () => {
    it('installs: writes the anchor (0644) and runs the command; a second run changes nothing', () => {
      debianRoot();
      const result = installDevCa({ ...opts(), caPem });
      const anchor = join(root, 'usr/local/share/ca-certificates/openmsi-dev.crt');
      assert.deepEqual(result, { platform: 'debian', dryRun: false, changed: true, filesWritten: [anchor], filesRemoved: [], commands: [[fakeUpdate]] });
      assert.equal(readFileSync(anchor, 'utf8'), caPem);
      assert.equal(statSync(anchor).mode & 0o777, 0o644);
      assert.deepEqual(logged(), [fakeUpdate]);
      assert.deepEqual(installDevCa({ ...opts(), caPem }), {
        platform: 'debian',
        dryRun: false,
        changed: false,
        filesWritten: [],
        filesRemoved: [],
        commands: [],
      });
      assert.equal(logged().length, 1, 'no command the second time');
    });

    it('replaces a different CA under the same name', () => {
      debianRoot();
      installDevCa({ ...opts(), caPem: otherCaPem });
      const result = installDevCa({ ...opts(), caPem });
      assert.equal(result.changed, true);
      assert.equal(readFileSync(join(root, 'usr/local/share/ca-certificates/openmsi-dev.crt'), 'utf8'), caPem);
    });

    it('uninstalls: removes the anchor and runs update-ca-certificates --fresh; nothing to do the second time', () => {
      debianRoot();
      installDevCa({ ...opts(), caPem });
      const anchor = join(root, 'usr/local/share/ca-certificates/openmsi-dev.crt');
      const result = uninstallDevCa(opts());
      assert.deepEqual(result, {
        platform: 'debian',
        dryRun: false,
        changed: true,
        filesWritten: [],
        filesRemoved: [anchor],
        commands: [[fakeUpdate, '--fresh']],
      });
      assert.equal(existsSync(anchor), false);
      assert.equal(logged()[1], `${fakeUpdate} --fresh`);
      assert.equal(uninstallDevCa(opts()).changed, false);
    });

    it('a failing update command names the command and its stderr, and takes the new anchor back out', () => {
      debianRoot();
      assert.throws(
        () => installDevCa({ ...opts({ commands: { updateCaCertificates: failingUpdate } }), caPem }),
        (err: DevTrustError) => err.code === 'command-failed' && err.message.includes(failingUpdate) && err.message.includes('simulated failure'),
      );
      assert.equal(existsSync(join(root, 'usr/local/share/ca-certificates/openmsi-dev.crt')), false);
    });

    it('without root: a needs-root error with the sudo commands, and nothing changed', () => {
      debianRoot();
      assert.throws(
        () => installDevCa({ ...opts({ isRoot: () => false, caFile: '/home/me/.openmsi/ca.pem' }), caPem }),
        (err: DevTrustError) =>
          err.code === 'needs-root' &&
          /rerun with sudo/.test(err.message) &&
          err.manualSteps[0] === `sudo install -m 0644 /home/me/.openmsi/ca.pem ${join(root, 'usr/local/share/ca-certificates/openmsi-dev.crt')}` &&
          err.manualSteps[1] === `sudo ${fakeUpdate}`,
      );
      assert.deepEqual(logged(), []);
    });
  });

  it('Fedora layout: installs the .pem anchor and runs update-ca-trust extract', () => {
    rhelRoot();
    const result = installDevCa({ ...opts(), caPem });
    assert.equal(result.platform, 'rhel');
    assert.deepEqual(result.commands, [[fakeUpdate, 'extract']]);
    assert.deepEqual(logged(), [`${fakeUpdate} extract`]);
    assert.deepEqual(uninstallDevCa(opts()).commands, [[fakeUpdate, 'extract']]);
  });

  it('macOS through an injected runner: the command as run, with a temp file when no caFile is given', () => {
    const calls: string[][] = [];
    let seenPem = '';
    const result = installDevCa({
      ...opts({ platform: 'darwin' }),
      caPem,
      run: (cmd, args) => {
        calls.push([cmd, ...args]);
        seenPem = readFileSync(args.at(-1)!, 'utf8');
      },
    });
    assert.equal(calls.length, 1);
    assert.deepEqual(result.commands, calls);
    assert.equal(seenPem, caPem);
    assert.equal(existsSync(calls[0]!.at(-1)!), false, 'temp file removed');
  });

  it('refuses bad names, non-PEM and non-CA certificates', () => {
    debianRoot();
    assert.throws(
      () => installDevCa({ ...opts({ name: '../etc/passwd' }), caPem }),
      (err: DevTrustError) => err.code === 'invalid-input',
    );
    assert.throws(() => installDevCa({ ...opts(), caPem: 'nope' }), /not a PEM certificate/);
    assert.throws(() => installDevCa({ ...opts(), caPem: leafPem }), /CN=localhost is not a CA certificate/);
    assert.throws(() => uninstallDevCa(opts({ platform: 'darwin' })), /needs the CA certificate/);
  });
});
