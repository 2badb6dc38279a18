import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../support/authority.js';
import { repoRoot, runNode, type FixtureProcess } from '../support/child-process.js';
import { parseDotenv } from '../support/clients.js';
import { startDev as startDevStack } from '../../src/dev/dev.js';
import { createLogger } from '../../src/shared/logger.js';
import { BUILT_MAIN, cliArgs } from '../support/cli.js';

const run = promisify(execFile);
/** Nothing from the runner's environment that could help; no proxy, so nothing leaves loopback. */
const BASE_ENV = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', OPENMSI_LOG_LEVEL: 'warn' };

interface Ports {
  port: number;
  agentPort: number;
  proxyPort: number;
}

async function freePorts(): Promise<Ports> {
  return { port: await freePort(), agentPort: await freePort(), proxyPort: await freePort() };
}

function startDev(dataDir: string, ports: Ports): FixtureProcess {
  const args = ['--data-dir', dataDir, 'dev', '--port', String(ports.port), '--agent-port', String(ports.agentPort), '--proxy-port', String(ports.proxyPort)];
  return runNode(cliArgs(...args), BASE_ENV);
}

async function openmsi(dataDir: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BUILT_MAIN, '--data-dir', dataDir, ...args], {
      cwd: repoRoot,
      env: { ...BASE_ENV, ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** `openmsi dev` end to end: first run, the environment it prints, restart, refusals, clean shutdown. */
describe('openmsi dev', () => {
  let dataDir: string;
  let ports: Ports;
  let dev: FixtureProcess;
  let banner: string;

  before(async () => {
    dataDir = join(mkdtempSync(join(tmpdir(), 'openmsi-dev-')), 'data');
    ports = await freePorts();
    dev = startDev(dataDir, ports);
    banner = await dev.waitForLine((line) => line.startsWith('openmsi dev ready'), 60_000);
  });
  after(async () => {
    await dev?.stop();
    rmSync(join(dataDir, '..'), { recursive: true, force: true });
  });

  it('first run makes the data dir and prints a banner with the URLs, identities, vault and the line to paste', () => {
    assert.match(banner, /\(first run\)/);
    const text = dev.lines.join('\n');
    assert.ok(text.includes(`https://localhost:${String(ports.port)}`), text);
    assert.ok(text.includes(`https://dev.vault.localhost:${String(ports.port)}/`), text);
    assert.ok(text.includes(`http://127.0.0.1:${String(ports.agentPort)}`), text);
    assert.ok(text.includes('dev-app (client id '), text);
    assert.ok(text.includes('eval "$(npx openmsi dev env)"'), text);
    assert.match(dev.stderr(), /creating .*master key/, 'first-run progress on stderr');
  });

  it('first run makes you a user: the banner names it and the az lines, `dev user` prints it, and only `dev user --password` the password (0600 file)', async () => {
    const text = dev.lines.join('\n');
    const upn = /^ {2}you {7}(\S+@\S+) {2}\(Owner on subscription [0-9a-f-]{36}, Key Vault Administrator on vault dev\)$/m.exec(text)?.[1];
    assert.ok(upn !== undefined, text);
    assert.ok(text.includes(`az login -u ${upn} -p "$(npx openmsi dev user --password)"`), text);
    const shown = await openmsi(dataDir, ['dev', 'user']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.stdout, `${upn}\n`);
    const password = await openmsi(dataDir, ['dev', 'user', '--password']);
    assert.equal(password.code, 0, password.stderr);
    const file = JSON.parse(readFileSync(join(dataDir, 'dev/user.json'), 'utf8')) as { userPrincipalName: string; password: string };
    assert.deepEqual(file, { userPrincipalName: upn, password: password.stdout.trim() });
    assert.equal(statSync(join(dataDir, 'dev/user.json')).mode & 0o777, 0o600);
    assert.ok(!text.includes(file.password) && !dev.stderr().includes(file.password), 'the banner and the log never hold the password');
  });

  it('dev env prints the managed-identity endpoints, CA trust, the vault URI, the proxy and the az switches, for every shell', async () => {
    const out = await openmsi(dataDir, ['dev', 'env', '--shell', 'dotenv']);
    assert.equal(out.code, 0, out.stderr);
    const env = parseDotenv(out.stdout);
    assert.equal(env['IDENTITY_ENDPOINT'], `http://127.0.0.1:${String(ports.agentPort)}/msi/token`);
    assert.match(env['IDENTITY_HEADER'] ?? '', /^[A-Za-z0-9_-]{32,}$/);
    assert.equal(env['AZURE_KEYVAULT_URL'], `https://dev.vault.localhost:${String(ports.port)}/`);
    assert.equal(env['NODE_EXTRA_CA_CERTS'], join(dataDir, 'ca/ca.pem'));
    const bundle = readFileSync(env['REQUESTS_CA_BUNDLE']!, 'utf8');
    assert.ok(bundle.includes(readFileSync(join(dataDir, 'ca/ca.pem'), 'utf8').trim()), 'the dev CA is in the combined bundle');
    assert.ok((bundle.match(/BEGIN CERTIFICATE/g) ?? []).length > 10, 'and so are the system CAs');
    assert.equal(env['SSL_CERT_FILE'], env['REQUESTS_CA_BUNDLE'], 'OpenSSL-based clients, Go, Ruby and .NET on Linux trust the same bundle');
    assert.equal(env['CURL_CA_BUNDLE'], env['REQUESTS_CA_BUNDLE'], 'and so does curl, with no --cacert');
    assert.equal(env['HTTPS_PROXY'], `http://127.0.0.1:${String(ports.proxyPort)}`);
    assert.equal(env['NO_PROXY'], '127.0.0.1', 'never localhost: Python and curl would then bypass the proxy for *.localhost');
    assert.equal(env['AZURE_CORE_COLLECT_TELEMETRY'], '0');
    assert.ok(existsSync(join(env['AZURE_CONFIG_DIR']!, 'versionCheck.json')), 'az finds a fresh version check and asks PyPI nothing');
    assert.equal(env['OPENMSI_DATA_DIR'], dataDir);
    for (const shell of ['bash', 'zsh', 'fish', 'powershell']) {
      const rendered = await openmsi(dataDir, ['dev', 'env', '--shell', shell]);
      assert.equal(rendered.code, 0, rendered.stderr);
      assert.ok(rendered.stdout.includes(env['IDENTITY_HEADER']!), shell);
    }
  });

  it('a second openmsi dev on the same data dir says which process holds it, and changes nothing', async () => {
    const second = await openmsi(dataDir, [
      'dev',
      '--port',
      String(await freePort()),
      '--agent-port',
      String(await freePort()),
      '--proxy-port',
      String(await freePort()),
    ]);
    assert.notEqual(second.code, 0);
    assert.match(
      second.stderr,
      new RegExp(`openmsi dev is already running on ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(pid ${String(dev.child.pid)}`),
    );
    assert.doesNotMatch(second.stderr, /\n\s+at /, 'no stack trace');
  });

  it('Ctrl-C shuts down cleanly; the next start reuses everything (same tenant and identities, changed secrets kept) and is quick', async () => {
    const envBefore = parseDotenv((await openmsi(dataDir, ['dev', 'env', '--shell', 'dotenv'])).stdout);
    const set = await openmsi(dataDir, ['keyvault', 'secret', 'set', '--vault-name', 'dev', '-n', 'sample-secret', '--value', 'changed by the developer']);
    assert.equal(set.code, 0, set.stderr);
    const tenantBefore = /tenant ([0-9a-f-]{36})/.exec(dev.lines.join('\n'))?.[1];

    dev.child.kill('SIGINT');
    const exit = await dev.waitForExit(20_000);
    assert.equal(exit.code, 0, dev.stderr());
    assert.ok(!existsSync(join(dataDir, 'run/dev.json')), 'the running record is removed');

    dev = startDev(dataDir, ports);
    const again = await dev.waitForLine((line) => line.startsWith('openmsi dev ready'), 60_000);
    assert.doesNotMatch(again, /first run/);
    assert.equal(/tenant ([0-9a-f-]{36})/.exec(dev.lines.join('\n'))?.[1], tenantBefore);
    const envAfter = parseDotenv((await openmsi(dataDir, ['dev', 'env', '--shell', 'dotenv'])).stdout);
    assert.equal(envAfter['IDENTITY_HEADER'], envBefore['IDENTITY_HEADER']);
    const shown = await openmsi(dataDir, ['keyvault', 'secret', 'show', '--vault-name', 'dev', '-n', 'sample-secret']);
    assert.equal((JSON.parse(shown.stdout) as { value: string }).value, 'changed by the developer', 'a restart never resets the developer’s secrets');
    assert.doesNotMatch(dev.stderr(), /creating|enrolling/, 'nothing is made again');
  });
});

/** Holds a loopback port (as another program would) until the returned function is called. */
async function occupy(): Promise<{ port: number; release: () => Promise<void> }> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return { port: (server.address() as AddressInfo).port, release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A first run that cannot serve leaves nothing behind, and says which port and which flag. */
describe('openmsi dev on a taken port (first run)', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'openmsi-dev-port-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  for (const [which, flag, extra] of [
    ['port', '--port', ''],
    ['agentPort', '--agent-port', ''],
    ['proxyPort', '--proxy-port', ', or run without it: `openmsi dev --no-proxy`'],
  ] as const) {
    it(`${flag} taken: names the address and ${flag}, exits 1, and makes no data dir`, async () => {
      const taken = await occupy();
      try {
        const dataDir = join(root, which);
        const ports = { ...(await freePorts()), [which]: taken.port };
        const out = await openmsi(dataDir, [
          'dev',
          '--port',
          String(ports.port),
          '--agent-port',
          String(ports.agentPort),
          '--proxy-port',
          String(ports.proxyPort),
        ]);
        assert.equal(out.code, 1, out.stdout);
        assert.match(
          out.stderr,
          new RegExp(
            `^error: cannot listen on 127\\.0\\.0\\.1:${String(taken.port)} \\(.+\\): the address is already in use .* Pick another port with \`openmsi dev ${flag} <port>\`${escape(extra)}`,
          ),
        );
        assert.doesNotMatch(out.stderr, /EADDRINUSE|\n\s+at /, 'words, not a bare errno or a stack trace');
        assert.equal(out.stdout, '');
        assert.ok(!existsSync(dataDir), `no half-made data dir: ${existsSync(dataDir) ? readdirSync(dataDir).join(', ') : ''}`);
      } finally {
        await taken.release();
      }
    });
  }

  it('a first run that fails after the data dir was made takes it all back (an empty data dir given is emptied, not removed)', async () => {
    for (const existed of [false, true]) {
      const dataDir = join(root, `late-${String(existed)}`);
      if (existed) mkdirSync(dataDir);
      const ports = await freePorts();
      const seen: string[] = [];
      await assert.rejects(
        startDevStack({
          dataDir,
          ...ports,
          logger: createLogger({ level: 'silent' }),
          // The step after the authority started listening on the new data dir fails.
          progress: (message) => {
            seen.push(message);
            if (message.startsWith('creating resource group')) throw new Error('injected failure');
          },
        }),
        /injected failure/,
      );
      assert.equal(seen.length, 2, 'it failed after the data dir was made and the server listened');
      assert.equal(existsSync(dataDir), existed, 'the data dir is gone, unless it existed before');
      if (existed) assert.deepEqual(readdirSync(dataDir), [], 'and then it is empty again');
      // The ports were released, and the next start is a first run that succeeds.
      const stack = await startDevStack({ dataDir, ...ports, logger: createLogger({ level: 'silent' }) });
      try {
        assert.equal(stack.firstRun, true);
      } finally {
        await stack.close();
      }
    }
  });
});

/** Bad data dirs: a clear error naming the file, never a stack trace, never a silent re-initialisation. */
describe('openmsi dev on a damaged data dir', () => {
  let dataDir: string;
  let ports: Ports;

  before(async () => {
    dataDir = join(mkdtempSync(join(tmpdir(), 'openmsi-dev-bad-')), 'data');
    ports = await freePorts();
    const dev = startDev(dataDir, ports);
    await dev.waitForLine((line) => line.startsWith('openmsi dev ready'), 60_000);
    dev.child.kill('SIGINT');
    await dev.waitForExit(20_000);
  });
  after(() => rmSync(join(dataDir, '..'), { recursive: true, force: true }));

  async function refused(pattern: RegExp): Promise<void> {
    const tenantBefore = readFileSync(join(dataDir, 'config.json'), 'utf8');
    const out = await openmsi(dataDir, ['dev', '--port', String(ports.port), '--agent-port', String(ports.agentPort), '--proxy-port', String(ports.proxyPort)]);
    assert.notEqual(out.code, 0, out.stdout);
    assert.match(out.stderr, pattern);
    assert.doesNotMatch(out.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(readFileSync(join(dataDir, 'config.json'), 'utf8'), tenantBefore, 'not re-initialised');
  }

  it('dev env while nothing runs says so on stderr, exits non-zero and prints nothing for eval', async () => {
    const out = await openmsi(dataDir, ['dev', 'env']);
    assert.equal(out.code, 1);
    assert.equal(out.stdout, '', 'eval "$(openmsi dev env)" evaluates nothing');
    assert.match(out.stderr, new RegExp(`^error: openmsi dev is not running on ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: start it`));
    assert.doesNotMatch(out.stderr, /\n\s+at /, 'no stack trace');
  });

  it('a taken server port on a later run names the address, --port and config.json, and changes nothing', async () => {
    const taken = await occupy();
    try {
      const config = join(dataDir, 'config.json');
      const before = readFileSync(config, 'utf8');
      const out = await openmsi(dataDir, [
        'dev',
        '--port',
        String(taken.port),
        '--agent-port',
        String(ports.agentPort),
        '--proxy-port',
        String(ports.proxyPort),
      ]);
      assert.equal(out.code, 1, out.stdout);
      assert.match(
        out.stderr,
        new RegExp(
          `cannot listen on 127\\.0\\.0\\.1:${String(taken.port)} \\(the server\\): the address is already in use .*\`openmsi dev --port <port>\` for this run, or change it for good: edit "port" in ${escape(config)}`,
        ),
      );
      assert.equal(readFileSync(config, 'utf8'), before);
      assert.ok(!existsSync(join(dataDir, 'run/dev.json')), 'no running record left behind');
    } finally {
      await taken.release();
    }
  });

  it('a missing master key names the file', async () => {
    const key = join(dataDir, 'master.key');
    renameSync(key, `${key}.moved`);
    try {
      await refused(new RegExp(`${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    } finally {
      renameSync(`${key}.moved`, key);
    }
  });

  it('a corrupted config.json names the file', async () => {
    const config = join(dataDir, 'config.json');
    const good = readFileSync(config, 'utf8');
    writeFileSync(config, good.slice(0, 20));
    try {
      const out = await openmsi(dataDir, [
        'dev',
        '--port',
        String(ports.port),
        '--agent-port',
        String(ports.agentPort),
        '--proxy-port',
        String(ports.proxyPort),
      ]);
      assert.notEqual(out.code, 0);
      assert.match(out.stderr, new RegExp(`${config.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid JSON`));
      assert.doesNotMatch(out.stderr, /\n\s+at /);
      assert.equal(readFileSync(config, 'utf8'), good.slice(0, 20), 'not re-initialised');
    } finally {
      writeFileSync(config, good);
    }
  });

  it('a corrupted TLS key names the file', async () => {
    const key = join(dataDir, 'tls/server.key.enc');
    const good = readFileSync(key, 'utf8');
    writeFileSync(key, 'garbage');
    try {
      await refused(new RegExp(`${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    } finally {
      writeFileSync(key, good);
    }
  });
});
