import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { postForm } from '../support/https.js';
import { formatResult, column } from '../../src/cli/output.js';
import { parseTags } from '../../src/cli/commands/shared.js';
import { REPO_ROOT as ROOT } from '../support/paths.js';
import { BUILT_MAIN as MAIN } from '../support/cli.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { cwd: options.cwd ?? ROOT, env: { ...process.env, ...options.env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolvePromise({ code, stdout, stderr });
      },
    );
  });
}

void describe('cli output', () => {
  void it('prints JSON with sorted keys and az-like tables', () => {
    assert.equal(
      formatResult({ b: 1, a: { d: 2, c: [{ f: 1, e: 2 }] } }, 'json'),
      '{\n  "a": {\n    "c": [\n      {\n        "e": 2,\n        "f": 1\n      }\n    ],\n    "d": 2\n  },\n  "b": 1\n}\n',
    );
    const table = formatResult(
      [
        { name: 'a', properties: { provisioningState: 'Succeeded' }, ok: true },
        { name: 'longer', properties: {}, ok: null },
      ],
      'table',
      [column('Name', 'name'), column('Status', 'properties.provisioningState'), column('Ok', 'ok')],
    );
    assert.equal(table, 'Name    Status     Ok\n------  ---------  ----\na       Succeeded  True\nlonger\n');
    assert.equal(formatResult([], 'table'), '\n');
    assert.equal(formatResult(undefined, 'json'), '');
    assert.equal(formatResult([{ b: 'x', a: 1, nested: {} }], 'table'), 'A    B\n---  ---\n1    x\n');
  });

  void it('says a command is unknown, also when --help follows it, and exits 1', async () => {
    for (const argv of [['nosuch', '--help'], ['nosuch', '-h'], ['--data-dir', '/nonexistent', 'nosuch', '--help'], ['nosuch']]) {
      const result = await run(argv);
      assert.equal(result.code, 1, argv.join(' '));
      assert.match(result.stderr, /^error: unknown command 'nosuch'\n/, argv.join(' '));
      assert.equal(result.stdout, '');
    }
    const nested = await run(['group', 'nosuch', '--help']);
    assert.equal(nested.code, 1);
    assert.match(nested.stderr, /^error: unknown command 'nosuch'\n\nUsage: openmsi group /);
    // Help for commands that exist is unchanged.
    for (const argv of [['--help'], ['group', '--help'], ['group', 'delete', '--help'], ['help', 'group']]) {
      const result = await run(argv);
      assert.equal(result.code, 0, argv.join(' '));
      assert.match(result.stdout, /^Usage: openmsi /);
    }
  });

  void it('parses az-style tags', () => {
    assert.deepEqual(parseTags(['env=dev', 'team=a=b', 'flag']), { env: 'dev', team: 'a=b', flag: '' });
    assert.deepEqual(parseTags(['']), {});
    assert.equal(parseTags(undefined), undefined);
    assert.throws(() => parseTags(['=x']), /invalid tag/);
  });
});

void describe('cli against a running authority', { timeout: 240_000 }, () => {
  let t: TestAuthority;
  let work: string;
  let args: (...rest: string[]) => string[];

  before(async () => {
    t = await startTestAuthority();
    work = mkdtempSync(join(tmpdir(), 'openmsi-cli-'));
    args = (...rest) => ['--data-dir', t.dataDir, ...rest];
  });
  after(async () => {
    await t.close();
    rmSync(work, { recursive: true, force: true });
  });

  void it('manages groups and identities like az', async () => {
    const created = await run(args('group', 'create', '-n', 'cli-rg', '-l', 'West Europe', '--tags', 'env=dev'));
    assert.equal(created.code, 0, created.stderr);
    const group = JSON.parse(created.stdout) as { name: string; location: string; tags: Record<string, string> };
    assert.deepEqual([group.name, group.location, group.tags], ['cli-rg', 'westeurope', { env: 'dev' }]);

    const table = await run(args('group', 'list', '-o', 'table'));
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^Name\s+Location\s+Status\n-+\s+-+\s+-+\n/);
    assert.match(table.stdout, /cli-rg\s+westeurope\s+Succeeded/);

    // az's --query and -o on any command: the query picks, the format prints; a bad query is refused before acting.
    const tsv = await run(args('group', 'list', '--query', "[?name=='cli-rg'].[name, location]", '-o', 'tsv'));
    assert.deepEqual([tsv.code, tsv.stdout, tsv.stderr], [0, 'cli-rg\twesteurope\n', '']);
    const yaml = await run(args('group', 'show', '-n', 'cli-rg', '--query', '{name: name, tags: tags}', '-o', 'yaml'));
    assert.equal(yaml.stdout, 'name: cli-rg\ntags:\n  env: dev\n');
    assert.equal((await run(args('group', 'show', '-n', 'cli-rg', '-o', 'none'))).stdout, '');
    const badQuery = await run(args('group', 'create', '-n', 'never-rg', '-l', 'local', '--query', '[?'));
    assert.equal(badQuery.code, 1);
    assert.match(badQuery.stderr, /^error: argument --query: invalid JMESPath expression '\[\?'/);
    const badFormat = await run(args('group', 'create', '-n', 'never-rg', '-l', 'local', '-o', 'xml'));
    assert.equal(badFormat.code, 1);
    assert.match(badFormat.stderr, /unsupported output format 'xml'; use one of: json, jsonc, yaml, yamlc, table, tsv, none/);
    assert.equal((await run(args('group', 'exists', '-n', 'never-rg'))).stdout, 'false\n');

    const identity = await run(args('identity', 'create', '-n', 'cli-id', '-g', 'cli-rg'));
    assert.equal(identity.code, 0, identity.stderr);
    const id = JSON.parse(identity.stdout) as Record<string, string>;
    assert.deepEqual(Object.keys(id), ['clientId', 'id', 'location', 'name', 'principalId', 'resourceGroup', 'tags', 'tenantId', 'type']);
    assert.equal(id['tenantId'], t.tenantId);
    assert.equal(id['resourceGroup'], 'cli-rg');

    const shown = await run(args('identity', 'show', '--ids', id['id']!));
    assert.deepEqual(JSON.parse(shown.stdout), id);
    const listed = await run(args('identity', 'list', '-g', 'cli-rg'));
    assert.deepEqual(JSON.parse(listed.stdout), [id]);

    const bad = await run(args('identity', 'create', '-n', 'x', '-g', 'cli-rg'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: \(InvalidResourceName\) /);
    assert.equal(bad.stdout, '');

    assert.equal((await run(args('identity', 'delete', '-n', 'cli-id', '-g', 'cli-rg'))).code, 0);
    assert.equal(await t.ctx.store.servicePrincipals.getByObjectId(id['principalId']!), undefined);

    const noConfirm = await run(args('group', 'delete', '-n', 'cli-rg'));
    assert.equal(noConfirm.code, 1);
    assert.match(noConfirm.stderr, /--yes/);
    assert.equal((await run(args('group', 'delete', '-n', 'cli-rg', '--yes'))).code, 0);
    const gone = await run(args('group', 'delete', '-n', 'cli-rg', '-y'));
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /ResourceGroupNotFound/);
    // Missing is said first: no question about --yes for a group that is not there.
    const missing = await run(args('group', 'delete', '-n', 'cli-rg'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: \(ResourceGroupNotFound\) Resource group 'cli-rg' could not be found\.\n$/);
    assert.equal((await run(args('group', 'exists', '-n', 'cli-rg'))).stdout, 'false\n');
  });

  void it('creates service principals whose secrets and certificates work, and resets credentials', async () => {
    const created = await run(args('ad', 'sp', 'create-for-rbac', '--name', 'cli-app'));
    assert.equal(created.code, 0, created.stderr);
    const sp = JSON.parse(created.stdout) as { appId: string; displayName: string; password: string; tenant: string };
    assert.deepEqual(Object.keys(sp), ['appId', 'displayName', 'password', 'tenant']);
    assert.equal(sp.displayName, 'cli-app');
    assert.equal(sp.tenant, t.tenantId);
    assert.match(created.stderr, /credentials that you must protect/);
    const token = (secret: string) =>
      postForm(
        `${t.url}/${t.tenantId}/oauth2/token`,
        { grant_type: 'client_credentials', client_id: sp.appId, client_secret: secret, resource: 'https://vault.azure.net' },
        t.caPem,
      );
    assert.equal((await token(sp.password)).status, 200);

    const reset = await run(args('ad', 'sp', 'credential', 'reset', '--id', sp.appId));
    assert.equal(reset.code, 0, reset.stderr);
    const next = JSON.parse(reset.stdout) as { appId: string; password: string; tenant: string };
    assert.deepEqual(Object.keys(next), ['appId', 'password', 'tenant']);
    assert.equal((await token(sp.password)).status, 401);
    assert.equal((await token(next.password)).status, 200);

    const withCert = await run(args('ad', 'sp', 'credential', 'reset', '--id', sp.appId, '--append', '--create-cert', '--cert-dir', work));
    assert.equal(withCert.code, 0, withCert.stderr);
    const certOut = JSON.parse(withCert.stdout) as { fileWithCertAndPrivateKey: string; password: null };
    assert.equal(certOut.password, null);
    assert.equal(statSync(certOut.fileWithCertAndPrivateKey).mode & 0o777, 0o600);
    const pem = readFileSync(certOut.fileWithCertAndPrivateKey, 'utf8');
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----[\s\S]+-----BEGIN CERTIFICATE-----/);
    assert.equal((await token(next.password)).status, 200, '--append keeps the secret');
    const kinds = (await t.ctx.store.credentials.listByApp(sp.appId)).map((c) => c.type).sort();
    assert.deepEqual(kinds, ['AsymmetricX509Cert', 'Password']);
    const stored = JSON.stringify(await t.ctx.store.credentials.listByApp(sp.appId));
    assert.ok(!stored.includes('PRIVATE KEY'), 'the private key never leaves the CLI');

    // --cert @file registers only the certificate of a key+cert PEM.
    const other = await run(args('ad', 'sp', 'create-for-rbac', '--name', 'cli-cert-app', '--cert', `@${certOut.fileWithCertAndPrivateKey}`));
    assert.equal(other.code, 0, other.stderr);
    assert.equal((JSON.parse(other.stdout) as { password: null }).password, null);

    // Re-running create-for-rbac with the same name patches the existing application.
    const again = await run(args('ad', 'sp', 'create-for-rbac', '--name', 'cli-app'));
    assert.equal((JSON.parse(again.stdout) as { appId: string }).appId, sp.appId);
    assert.match(again.stderr, /Found an existing application instance/);

    const list = await run(args('ad', 'sp', 'list', '--display-name', 'cli-', '-o', 'table'));
    assert.match(list.stdout, /^DisplayName\s+Id\s+AppId\s+CreatedDateTime\n/);
    assert.match(list.stdout, /cli-app/);
    assert.match(list.stdout, /cli-cert-app/);
    const shown = await run(args('ad', 'sp', 'show', '--id', sp.appId));
    assert.ok(!shown.stdout.includes(next.password));

    const missing = await run(args('ad', 'sp', 'show', '--id', '00000000-0000-0000-0000-000000000000'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Request_ResourceNotFound/);
  });

  void it('lists and rotates keys, and exports the CA without an authority', async () => {
    const keys = await run(args('keys', 'list'));
    assert.equal(keys.code, 0, keys.stderr);
    const list = JSON.parse(keys.stdout) as { kid: string; state: string }[];
    assert.ok(list.some((k) => k.state === 'current'));
    const rotated = await run(args('keys', 'rotate'));
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.deepEqual(Object.keys(JSON.parse(rotated.stdout) as object), ['current', 'previous', 'revoked']);

    const exported = await run(args('ca', 'export'));
    assert.equal(exported.stdout, t.caPem.endsWith('\n') ? t.caPem : `${t.caPem}\n`);
    const out = join(work, 'ca.pem');
    const toFile = await run(args('ca', 'export', '--out', out));
    assert.equal(toFile.stdout, '');
    assert.equal(toFile.stderr, `wrote the CA certificate to ${out} (trust it with e.g. NODE_EXTRA_CA_CERTS=${out})\n`);
    assert.equal(readFileSync(out, 'utf8'), exported.stdout);
  });

  void it('explains a missing authority and a missing data dir', async () => {
    // A copy of the data dir whose authority URL points at a closed port.
    const closed = await run(args('group', 'list'), { env: { OPENMSI_AUTHORITY_URL: 'https://localhost:1' } });
    assert.equal(closed.code, 1);
    assert.match(closed.stderr, /^error: no authority is listening at https:\/\/localhost:1; start it with `openmsi authority`/);
    const empty = mkdtempSync(join(tmpdir(), 'openmsi-empty-'));
    writeFileSync(join(empty, 'README'), 'not a data dir');
    const none = await run(['--data-dir', empty, 'group', 'list']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /openmsi init/);
    rmSync(empty, { recursive: true, force: true });
  });
});

describe('the built CLI', () => {
  it('is an executable file with a node shebang, so `npx openmsi` can run it', () => {
    // `npm test` builds first; `npx openmsi` executes the package's bin directly, which needs the exec bit.
    const bin = join(ROOT, JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).bin.openmsi as string);
    assert.notEqual(statSync(bin).mode & 0o111, 0, `${bin} is not executable`);
    assert.match(readFileSync(bin, 'utf8').split('\n')[0] ?? '', /^#!\/usr\/bin\/env node$/);
  });
});
