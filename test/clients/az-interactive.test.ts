/**
 * Debian's az 2.45, unchanged, signing a person in interactively against a real `openmsi dev` (issue 20):
 * `az login` (az opens "a browser": `BROWSER` is a script that hands the URL to this test, which drives headless
 * Chromium through the authority's sign-in page to az's loopback listener) and `az login --use-device-code`
 * (the test reads the code az prints and enters it on /devicelogin in Chromium); then
 * `az account get-access-token` as that user. Then @azure/identity's DeviceCodeCredential and
 * InteractiveBrowserCredential (which opens the URL with the `open` package's xdg-open, which honours
 * `BROWSER` without a desktop) get user tokens the same way. Nothing leaves the machine: every process has a
 * dead proxy for anything that is not loopback.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import type { Browser } from 'playwright-core';
import { BUILT_MAIN } from '../support/cli.js';
import { startDevProcess, type DevProcess } from '../support/dev-process.js';
import { REPO_ROOT as ROOT } from '../support/paths.js';
import { approveDeviceCode, browserSkipReason, launchBrowser, signInWithBrowser } from '../support/browser.js';

const AZ = '/usr/bin/az';
const PASSWORD = 'Br0wser-Sign-In!';
const FIXTURE = join(ROOT, 'test', 'clients', 'fixtures', 'interactive-credential.mjs');
const skip = browserSkipReason || (existsSync(AZ) ? false : `${AZ} missing (apt-get install azure-cli: Debian's 2.45)`);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Resolves with the first match of `pattern` in what `read()` returns, polling for at most `ms`. */
async function waitFor(read: () => string, pattern: RegExp, ms: number, what: string): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const match = pattern.exec(read());
    if (match !== null) return match;
    if (Date.now() > deadline) throw new Error(`${what} not seen in ${String(ms)} ms:\n${read()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('interactive sign-in: az login (browser, device code) and @azure/identity in headless Chromium', { skip }, () => {
  let home: string;
  let dataDir: string;
  let dev: DevProcess | undefined;
  let port: number;
  let devEnv: Record<string, string>;
  let browser: Browser;
  let upn: string;
  let userId: string;
  /** Where the BROWSER script writes each URL it is asked to open. */
  let opened: string;

  const base = (): NodeJS.ProcessEnv => ({ PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' });
  /** Anything not loopback goes to a dead proxy: refused, never sent. */
  const offline = { HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: 'localhost,127.0.0.1', no_proxy: 'localhost,127.0.0.1' };
  const env = (): NodeJS.ProcessEnv => ({ ...base(), ...devEnv, ...offline, BROWSER: join(home, 'browser.sh') });
  const run = (file: string, args: string[], e: NodeJS.ProcessEnv, timeout = 120_000) =>
    new Promise<Run>((done) => {
      execFile(file, args, { cwd: ROOT, env: e, timeout, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
      });
    });
  const openmsi = (args: string[]) => run(process.execPath, [BUILT_MAIN, '--data-dir', dataDir, ...args], base(), 60_000);
  /** Starts `file args`, collecting its output, and resolves with how it ended. */
  function start(file: string, args: string[], e: NodeJS.ProcessEnv): { output: () => string; done: Promise<number | null> } {
    let output = '';
    const child = spawn(file, args, { cwd: ROOT, env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    return {
      output: () => output,
      done: new Promise((r) =>
        child.once('exit', (code) => {
          clearTimeout(timer);
          r(code);
        }),
      ),
    };
  }
  const openedUrl = async (from: number): Promise<string> => {
    const match = await waitFor(
      () => (existsSync(opened) ? readFileSync(opened, 'utf8').split('\n').slice(from).join('\n') : ''),
      /^(https:\/\/\S+)$/m,
      60_000,
      'a URL for the browser',
    );
    return match[1]!;
  };
  const openedCount = () =>
    existsSync(opened)
      ? readFileSync(opened, 'utf8')
          .split('\n')
          .filter((l) => l !== '').length
      : 0;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'openmsi-signin-'));
    dataDir = join(home, 'openmsi');
    opened = join(home, 'opened.txt');
    writeFileSync(join(home, 'browser.sh'), `#!/bin/sh\nprintf '%s\\n' "$1" >> '${opened}'\n`);
    chmodSync(join(home, 'browser.sh'), 0o755);
    dev = await startDevProcess(dataDir, base());
    port = dev.port;
    const printed = await openmsi(['dev', 'env', '--shell', 'dotenv']);
    assert.equal(printed.code, 0, printed.stderr);
    devEnv = parseEnv(printed.stdout) as Record<string, string>;
    // Only the cloud lines: the person logs in themselves.
    const cloud = await openmsi(['dev', 'az-cloud']);
    for (const line of cloud.stdout.trim().split('\n').slice(1)) {
      const args = line.split(' ').slice(1);
      if (args[0] === 'login') continue;
      const r = await run(AZ, [...args, '-o', 'none'], env());
      assert.equal(r.code, 0, `${line}\n${r.stderr}`);
    }
    const domain = (await openmsi(['ad', 'domain', 'list', '--query', '[?isDefault].id', '-o', 'tsv'])).stdout.trim();
    upn = `grace@${domain}`;
    const created = await openmsi(['ad', 'user', 'create', '--display-name', 'Grace Hopper', '--user-principal-name', upn, `--password=${PASSWORD}`]);
    assert.equal(created.code, 0, created.stderr);
    userId = (JSON.parse(created.stdout) as { id: string }).id;
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await dev?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  const getToken = async () => {
    const r = await run(AZ, ['account', 'get-access-token', '--resource', 'https://vault.azure.net', '-o', 'json'], env());
    assert.equal(r.code, 0, r.stderr);
    return claims((JSON.parse(r.stdout) as { accessToken: string }).accessToken);
  };

  it('az login: the browser flow through the sign-in page to az’s loopback listener, then get-access-token as the user', async (ctx) => {
    const from = openedCount();
    const login = start(AZ, ['login', '--allow-no-subscriptions', '-o', 'none'], env());
    const url = await openedUrl(from);
    assert.ok(url.startsWith(`https://localhost:${String(port)}/adfs/oauth2/v2.0/authorize?`), url);
    assert.equal(new URL(url).searchParams.get('code_challenge_method'), 'S256');
    const page = await signInWithBrowser(browser, url, { name: upn, password: PASSWORD }, 'http://localhost:8400');
    await page.context().close();
    assert.equal(await login.done, 0, login.output());
    ctx.diagnostic('az login (browser)');
    const account = JSON.parse((await run(AZ, ['account', 'show', '-o', 'json'], env())).stdout) as { user: { name: string; type: string } };
    assert.deepEqual(account.user, { name: upn, type: 'user' });
    const c = await getToken();
    assert.equal(c['oid'], userId);
    assert.equal(c['idtyp'], 'user');
    assert.equal(c['aud'], 'https://vault.azure.net');
  });

  it('az login --use-device-code: the code az prints, entered on /devicelogin in Chromium', async (ctx) => {
    assert.equal((await run(AZ, ['logout'], env())).code, 0);
    const login = start(AZ, ['login', '--use-device-code', '--allow-no-subscriptions', '-o', 'none'], env());
    const [, verification, code] = await waitFor(
      login.output,
      /open the page (https:\/\/\S+) and enter the code (\S+) to authenticate/,
      60_000,
      'the device code',
    );
    assert.equal(verification, `https://localhost:${String(port)}/devicelogin`);
    const message = await approveDeviceCode(browser, verification, code!, { name: upn, password: PASSWORD });
    assert.match(message, /You have signed in/);
    assert.equal(await login.done, 0, login.output());
    ctx.diagnostic('az login --use-device-code');
    const c = await getToken();
    assert.equal(c['upn'], upn);
  });

  it('@azure/identity DeviceCodeCredential and InteractiveBrowserCredential (browser opened through BROWSER) get user tokens', async () => {
    const fixtureEnv = { ...env(), NODE_EXTRA_CA_CERTS: devEnv['REQUESTS_CA_BUNDLE'] ?? '', AUTHORITY_HOST: `https://localhost:${String(port)}` };
    const device = start(process.execPath, [FIXTURE, 'device-code'], fixtureEnv);
    const [, verification, code] = await waitFor(
      device.output,
      /open the page (https:\/\/\S+) and enter the code (\S+) to authenticate/,
      60_000,
      'the device code',
    );
    assert.match(await approveDeviceCode(browser, verification!, code!, { name: upn, password: PASSWORD }), /You have signed in/);
    assert.equal(await device.done, 0, device.output());
    const deviceToken = /^TOKEN (\S+)$/m.exec(device.output())?.[1];
    assert.equal(claims(deviceToken ?? '')['oid'], userId);

    const from = openedCount();
    const interactive = start(process.execPath, [FIXTURE, 'browser'], fixtureEnv);
    const url = await openedUrl(from);
    const redirect = new URL(new URL(url).searchParams.get('redirect_uri') ?? '');
    const page = await signInWithBrowser(browser, url, { name: upn, password: PASSWORD }, redirect.origin);
    await page.context().close();
    assert.equal(await interactive.done, 0, interactive.output());
    const browserToken = /^TOKEN (\S+)$/m.exec(interactive.output())?.[1];
    assert.equal(claims(browserToken ?? '')['upn'], upn);
  });
});
