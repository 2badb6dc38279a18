/**
 * Key Vault references (src/cli/references.ts) without a stack: the parser's table, dotenv files, the pass over
 * an environment (literal kept, one fetch per distinct reference, bounded concurrency) and the stderr line.
 * The end-to-end behaviour with a real authority, vault and agent is test/clients/agent/references.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  formatUnresolved,
  parseDotenv,
  parseKeyVaultReference,
  readEnvFile,
  resolveReferences,
  type ReferenceOutcome,
  type SecretReference,
} from '../../src/cli/references.js';

const DOMAIN = { vaultDomain: 'vault.localhost' };
const V = 'ec96f02080254f109c51a1f14cdb1931';

describe('parseKeyVaultReference', () => {
  const ok: [string, string, SecretReference][] = [
    [
      'SecretUri, latest',
      '@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/mysecret)',
      { vault: { name: 'myvault' }, secretName: 'mysecret' },
    ],
    [
      'SecretUri, trailing slash',
      '@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/mysecret/)',
      { vault: { name: 'myvault' }, secretName: 'mysecret' },
    ],
    [
      'SecretUri, pinned',
      `@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/mysecret/${V})`,
      { vault: { name: 'myvault' }, secretName: 'mysecret', version: V },
    ],
    [
      'SecretUri, sovereign cloud',
      '@Microsoft.KeyVault(SecretUri=https://cn-vault.vault.azure.cn/secrets/s)',
      { vault: { name: 'cn-vault' }, secretName: 's' },
    ],
    [
      'SecretUri, openmsi vault host with port',
      '@Microsoft.KeyVault(SecretUri=https://Dev.vault.localhost:8443/secrets/s)',
      { vault: { name: 'dev' }, secretName: 's' },
    ],
    [
      'SecretUri, another https host',
      '@Microsoft.KeyVault(SecretUri=https://kv.example.com:9443/secrets/s/v1)',
      { vault: { origin: 'https://kv.example.com:9443' }, secretName: 's', version: 'v1' },
    ],
    [
      'SecretUri, key case and spaces',
      '@Microsoft.KeyVault( secreturi = https://myvault.vault.azure.net/secrets/mysecret )',
      { vault: { name: 'myvault' }, secretName: 'mysecret' },
    ],
    ['VaultName/SecretName', '@Microsoft.KeyVault(VaultName=myvault;SecretName=mysecret)', { vault: { name: 'myvault' }, secretName: 'mysecret' }],
    [
      'VaultName/SecretName/SecretVersion',
      `@Microsoft.KeyVault(VaultName=myvault;SecretName=mysecret;SecretVersion=${V})`,
      { vault: { name: 'myvault' }, secretName: 'mysecret', version: V },
    ],
    [
      'pairs in any order and case, trimmed',
      '@Microsoft.KeyVault( secretname = mysecret ; VAULTNAME=MyVault ;)',
      { vault: { name: 'myvault' }, secretName: 'mysecret' },
    ],
    [
      'empty SecretVersion means latest',
      '@Microsoft.KeyVault(VaultName=myvault;SecretName=mysecret;SecretVersion=)',
      { vault: { name: 'myvault' }, secretName: 'mysecret' },
    ],
  ];
  for (const [what, value, reference] of ok) {
    it(`parses ${what}`, () => {
      assert.deepEqual(parseKeyVaultReference(value, DOMAIN), { ok: true, reference });
    });
  }

  const bad: [string, string, RegExp][] = [
    ['http://', '@Microsoft.KeyVault(SecretUri=http://myvault.vault.azure.net/secrets/s)', /must be https/],
    ['a keys path', '@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/keys/k)', /\/secrets\/NAME/],
    ['a certificates path', '@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/certificates/c)', /\/secrets\/NAME/],
    ['too deep a path', '@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/s/v/x)', /\/secrets\/NAME/],
    ['a query', '@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/s?api-version=7.4)', /no user, query/],
    ['user info', '@Microsoft.KeyVault(SecretUri=https://u:p@myvault.vault.azure.net/secrets/s)', /no user, query/],
    ['not a URL', '@Microsoft.KeyVault(SecretUri=myvault/secrets/s)', /not a URL/],
    ['a bad secret name', '@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/a_b)', /not a secret name/],
    ['a bad vault label', '@Microsoft.KeyVault(SecretUri=https://a.b.vault.azure.net/secrets/s)', /not a vault name/],
    ['an unknown key', '@Microsoft.KeyVault(VaultName=v1v;SecretName=s;Version=1)', /unknown key 'Version'/],
    ['a repeated key', '@Microsoft.KeyVault(VaultName=v1v;vaultname=v2v;SecretName=s)', /given twice/],
    ['SecretUri with pairs', '@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/s;SecretName=s)', /cannot be combined/],
    ['no SecretName', '@Microsoft.KeyVault(VaultName=myvault)', /SecretName is missing/],
    ['no VaultName', '@Microsoft.KeyVault(SecretName=s)', /VaultName is missing/],
    ['an empty reference', '@Microsoft.KeyVault()', /VaultName is missing/],
    ['a segment without =', '@Microsoft.KeyVault(myvault/mysecret)', /not Key=Value/],
    ['a bad vault name', '@Microsoft.KeyVault(VaultName=a;SecretName=s)', /not a vault name/],
    ['a version with a slash', '@Microsoft.KeyVault(VaultName=myvault;SecretName=s;SecretVersion=a/b)', /not a secret version/],
  ];
  for (const [what, value, details] of bad) {
    it(`refuses ${what} as InvalidSyntax`, () => {
      const parsed = parseKeyVaultReference(value, DOMAIN);
      assert.equal(parsed?.ok, false, JSON.stringify(parsed));
      assert.equal(parsed.ok ? undefined : parsed.status, 'InvalidSyntax');
      assert.match(parsed.ok ? '' : parsed.details, details);
    });
  }

  for (const value of [
    'plain',
    '',
    'prefix @Microsoft.KeyVault(VaultName=myvault;SecretName=s)',
    '@Microsoft.KeyVault(VaultName=myvault;SecretName=s) suffix',
    ' @Microsoft.KeyVault(VaultName=myvault;SecretName=s)',
    '@Microsoft.AppConfiguration(Endpoint=https://x.azconfig.io; Key=k)',
    '@microsoft.keyvault(VaultName=myvault;SecretName=s)',
  ]) {
    it(`leaves ${JSON.stringify(value)} alone: not a whole reference`, () => {
      assert.equal(parseKeyVaultReference(value, DOMAIN), undefined);
    });
  }
});

describe('dotenv files', () => {
  it('reads KEY=VALUE, export, comments, blank lines and quotes', () => {
    const text = [
      '# a comment',
      '',
      'PLAIN=one',
      'export EXPORTED=two',
      "SINGLE='a \\n b'",
      'DOUBLE="line1\\nline2"',
      'SPACED =  padded  ',
      'REF=@Microsoft.KeyVault(VaultName=myvault;SecretName=s)',
      'TRAILING=x # comment',
      'EMPTY=',
    ].join('\n');
    assert.deepEqual(parseDotenv(text, 'f'), {
      PLAIN: 'one',
      EXPORTED: 'two',
      SINGLE: 'a \\n b',
      DOUBLE: 'line1\nline2',
      SPACED: 'padded',
      REF: '@Microsoft.KeyVault(VaultName=myvault;SecretName=s)',
      TRAILING: 'x',
      EMPTY: '',
    });
  });

  it('refuses a line that is not KEY=VALUE, naming the source', () => {
    assert.throws(() => parseDotenv('GOOD=1\nnot a pair\nNEXT=2\n', '--env-file x.env'), /^Error: --env-file x\.env: 'not a pair' is not a KEY=VALUE line$/);
  });

  it('names the file it cannot read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'openmsi-dotenv-'));
    try {
      writeFileSync(join(dir, 'ok.env'), 'A=1\n');
      assert.deepEqual(readEnvFile(join(dir, 'ok.env')), { A: '1' });
      assert.throws(() => readEnvFile(join(dir, 'missing.env')), /--env-file .*missing\.env: ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('resolveReferences', () => {
  const good = '@Microsoft.KeyVault(VaultName=myvault;SecretName=good)';
  const missing = '@Microsoft.KeyVault(VaultName=myvault;SecretName=missing)';

  it('replaces what resolved, keeps the literal of what did not, fetches each distinct reference once', async () => {
    const calls: SecretReference[] = [];
    const resolve = (reference: SecretReference): Promise<ReferenceOutcome> => {
      calls.push(reference);
      return Promise.resolve(
        reference.secretName === 'good' ? { status: 'Resolved', value: 'the-value' } : { status: 'SecretNotFound', details: '(SecretNotFound) not here' },
      );
    };
    const result = await resolveReferences(
      { A: good, B: good, C: missing, D: 'plain', E: '@Microsoft.KeyVault(VaultName=myvault)', F: undefined },
      resolve,
      DOMAIN,
    );
    assert.deepEqual(result.env, { A: 'the-value', B: 'the-value', C: missing, D: 'plain', E: '@Microsoft.KeyVault(VaultName=myvault)', F: undefined });
    assert.deepEqual(result.resolved, ['A', 'B']);
    assert.deepEqual(result.unresolved, [
      { name: 'C', status: 'SecretNotFound', details: '(SecretNotFound) not here' },
      { name: 'E', status: 'InvalidSyntax', details: 'SecretName is missing' },
    ]);
    assert.equal(calls.length, 2);
  });

  it('runs at most `concurrency` fetches at once, and a fetch that throws is OtherReasons', async () => {
    let running = 0;
    let peak = 0;
    const env: Record<string, string> = {};
    for (let i = 0; i < 20; i++) env[`V${String(i)}`] = `@Microsoft.KeyVault(VaultName=myvault;SecretName=s${String(i)})`;
    const result = await resolveReferences(
      env,
      async (reference) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        if (reference.secretName === 's3') throw new Error('boom');
        return { status: 'Resolved', value: reference.secretName };
      },
      { ...DOMAIN, concurrency: 4 },
    );
    assert.equal(peak, 4);
    assert.equal(result.resolved.length, 19);
    assert.deepEqual(result.unresolved, [{ name: 'V3', status: 'OtherReasons', details: 'boom' }]);
  });

  it('formats one stderr line per reference, whatever the details hold', () => {
    assert.equal(
      formatUnresolved({ name: 'DB', status: 'AccessToKeyVaultDenied', details: '(Forbidden) Caller is not authorized.\r\nCaller: x\r\n' }),
      'openmsi: DB: AccessToKeyVaultDenied (Forbidden) Caller is not authorized. Caller: x',
    );
  });
});
