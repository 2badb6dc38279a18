import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { combinedCaBundle, defaultShell, formatEnvironment, SYSTEM_CA_BUNDLES, type EnvShell } from '../../src/dev/env.js';

/** Values that break naive quoting in at least one shell. */
const NASTY = [
  '',
  'plain',
  'http://127.0.0.1:50342/msi/token',
  "it's",
  "''",
  'a b  c',
  '$HOME ${HOME} $(id) `id`',
  'back\\slash\\',
  'double"quote',
  'line1\nline2',
  '!event; rm -rf /; #comment',
  '*?[a]~',
  '\u2018smart\u2019 \u201Aquotes\u201B',
  'ünïcödé ✓',
  '-n',
  "\\'",
];

function has(cmd: string): boolean {
  return spawnSync(cmd, ['-c', 'exit 0'], { stdio: 'ignore' }).status === 0;
}

/** Evaluates `script` in `shell`, then prints V0..Vn separated by NUL. */
function evalIn(shell: string, script: string, count: number, printer: (names: string[]) => string[]): string[] {
  const names = Array.from({ length: count }, (_, i) => `V${String(i)}`);
  const out = execFileSync(shell, printer(names), { input: script, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } });
  return out.toString('utf8').split('\0').slice(0, count);
}

const vars = (): [string, string][] => NASTY.map((v, i) => [`V${String(i)}`, v]);

describe('formatEnvironment', () => {
  for (const shell of ['bash', 'zsh'] as const) {
    it(`${shell}: eval "$(…)" gives back every value exactly`, { skip: has(shell) ? false : `${shell} is not installed` }, () => {
      const got = evalIn(shell, formatEnvironment(vars(), shell), NASTY.length, (names) => [
        '-c',
        `eval "$(cat)"; printf '%s\\0' ${names.map((n) => `"$${n}"`).join(' ')}`,
      ]);
      assert.deepEqual(got, NASTY);
    });
  }

  it('fish: eval gives back every value exactly', { skip: has('fish') ? false : 'fish is not installed' }, () => {
    const got = evalIn('fish', formatEnvironment(vars(), 'fish'), NASTY.length, (names) => [
      '-c',
      `eval (cat | string collect); printf '%s\\0' ${names.map((n) => `"$${n}"`).join(' ')}`,
    ]);
    assert.deepEqual(got, NASTY);
  });

  it('powershell: Invoke-Expression gives back every value exactly', { skip: has('pwsh') ? false : 'pwsh (PowerShell) is not installed' }, () => {
    const script = `${formatEnvironment(vars(), 'powershell')}\n${NASTY.map((_, i) => `[Console]::Out.Write($env:V${String(i)} + [char]0)`).join('\n')}`;
    const out = execFileSync('pwsh', ['-NoProfile', '-Command', '-'], { input: script });
    assert.deepEqual(out.toString('utf8').split('\0').slice(0, NASTY.length), NASTY);
  });

  it('powershell: doubles straight and typographic single quotes', () => {
    assert.equal(formatEnvironment([['A', "it's \u2019x"]], 'powershell'), "$env:A = 'it''s \u2019\u2019x'");
  });

  it('fish: escapes backslashes and single quotes', () => {
    assert.equal(formatEnvironment([['A', "a\\b'c"]], 'fish'), "set -gx A 'a\\\\b\\'c';");
  });

  it("dotenv: Node's parser reads back every value it can write, bare where safe", () => {
    const portable = NASTY.filter((v) => {
      try {
        formatEnvironment([['A', v]], 'dotenv');
        return true;
      } catch {
        return false;
      }
    });
    assert.ok(portable.length >= 10, `most values are portable (${String(portable.length)})`);
    const text = formatEnvironment(
      portable.map((v, i) => [`V${String(i)}`, v]),
      'dotenv',
    );
    const parsed = parseEnv(text);
    portable.forEach((v, i) => assert.equal(parsed[`V${String(i)}`], v, JSON.stringify(v)));
    assert.equal(formatEnvironment([['U', 'http://127.0.0.1:50342/msi/token']], 'dotenv'), 'U=http://127.0.0.1:50342/msi/token');
    assert.equal(formatEnvironment([['P', '/home/a b/ca.pem']], 'dotenv'), "P='/home/a b/ca.pem'");
    assert.equal(formatEnvironment([['P', "it's"]], 'dotenv'), 'P="it\'s"');
  });

  it('dotenv: refuses values no dotenv dialect reads the same, naming the variable', () => {
    assert.throws(() => formatEnvironment([['MULTI', 'a\nb']], 'dotenv'), /MULTI's value cannot be written portably in dotenv/);
    assert.throws(() => formatEnvironment([['Q', `'"`]], 'dotenv'), /Q's value/);
  });

  it('refuses invalid names, NUL bytes and unknown shells', () => {
    for (const shell of ['bash', 'zsh', 'fish', 'powershell', 'dotenv'] as const) {
      assert.throws(() => formatEnvironment([['A;rm', 'x']], shell), /"A;rm" is not a valid environment variable name/);
      assert.throws(() => formatEnvironment([['A', 'x\0y']], shell), /NUL/);
    }
    assert.throws(() => formatEnvironment([['A', 'x']], 'csh' as EnvShell), /unknown shell "csh"/);
  });

  it('defaultShell follows $SHELL, PowerShell on Windows', () => {
    assert.equal(defaultShell({ SHELL: '/usr/bin/zsh' }, 'linux'), 'zsh');
    assert.equal(defaultShell({ SHELL: '/opt/homebrew/bin/fish' }, 'darwin'), 'fish');
    assert.equal(defaultShell({ SHELL: '/bin/sh' }, 'linux'), 'bash');
    assert.equal(defaultShell({}, 'linux'), 'bash');
    assert.equal(defaultShell({ SHELL: '/bin/zsh' }, 'win32'), 'powershell');
  });
});

describe('combinedCaBundle', () => {
  let dir: string;
  const devCa = '-----BEGIN CERTIFICATE-----\nREVWQ0E=\n-----END CERTIFICATE-----\n';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'openmsi-dev-env-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the first existing system bundle plus the dev CA, mode 0600 (issue 15: every file openmsi writes), atomically', () => {
    const system = join(dir, 'system.crt');
    writeFileSync(system, '-----BEGIN CERTIFICATE-----\nU1lT\n-----END CERTIFICATE-----'); // no final newline
    const out = join(dir, 'bundle.pem');
    const old = process.umask(0o000);
    try {
      const result = combinedCaBundle([join(dir, 'missing.crt'), system, join(dir, 'later.crt')], devCa, out);
      assert.deepEqual(result, { path: out, systemBundle: system });
    } finally {
      process.umask(old);
    }
    const text = readFileSync(out, 'utf8');
    assert.equal(text, `-----BEGIN CERTIFICATE-----\nU1lT\n-----END CERTIFICATE-----\n# openmsi dev CA\n${devCa}`);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    // Rewriting replaces the file whole and leaves no temp file behind.
    writeFileSync(system, 'NEW\n');
    combinedCaBundle([system], devCa, out);
    assert.equal(readFileSync(out, 'utf8'), `NEW\n# openmsi dev CA\n${devCa}`);
    assert.deepEqual(readdirSync(dir).sort(), ['bundle.pem', 'system.crt']);
  });

  it(
    'the real system bundle + a dev CA is a bundle Python requests loads',
    {
      skip: SYSTEM_CA_BUNDLES.some((p) => {
        try {
          return statSync(p).isFile();
        } catch {
          return false;
        }
      })
        ? false
        : 'no system CA bundle on this machine',
    },
    async () => {
      const { createCertificateAuthority } = await import('../../src/pki/ca.js');
      const { systemClock } = await import('../../src/shared/clock.js');
      const ca = await createCertificateAuthority({ clock: systemClock });
      const out = join(dir, 'real.pem');
      const { systemBundle } = combinedCaBundle(SYSTEM_CA_BUNDLES, ca.certPem, out);
      assert.ok(readFileSync(out, 'utf8').startsWith(readFileSync(systemBundle, 'utf8').slice(0, 200)));
      const python = spawnSync('/usr/bin/python3', [
        '-c',
        'import ssl, sys; c = ssl.create_default_context(cafile=sys.argv[1]); print(len(c.get_ca_certs()))',
        out,
      ]);
      if (python.status === 0) assert.ok(Number(python.stdout.toString()) > 1, 'system CAs and the dev CA load');
    },
  );

  it('says which paths it tried when there is no system bundle; refuses a non-PEM dev CA', () => {
    assert.throws(
      () => combinedCaBundle([join(dir, 'a'), join(dir, 'b')], devCa, join(dir, 'x.pem')),
      (err: Error) => err.message.includes(join(dir, 'a')) && err.message.includes('REQUESTS_CA_BUNDLE'),
    );
    assert.throws(() => combinedCaBundle([join(dir, 'a')], 'not pem', join(dir, 'x.pem')), /not a PEM certificate/);
  });

  it('names the output path when it cannot write', () => {
    const system = join(dir, 'sys2.crt');
    writeFileSync(system, 'S\n');
    assert.throws(() => combinedCaBundle([system], devCa, join(dir, 'no-such-dir', 'bundle.pem')), /cannot write .*no-such-dir\/bundle\.pem/);
  });
});
