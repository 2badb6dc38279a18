/**
 * The dev proxy with real clients (Node's Azure pipeline, Debian Python requests, curl) on loopback only.
 * Nothing resolves `*.vault.localhost` here: the proxy's route claims it, and pass-through names are resolved
 * by a test lookup that knows only `localhost`, so no DNS query and no packet leaves the machine.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCertificateAuthority, issueServerCertificate } from '../../src/pki/ca.js';
import { systemClock } from '../../src/shared/clock.js';
import { bypassesUpstream, proxyEnvironment, startDevProxy, upstreamProxyFromEnv, type DevProxy, type DevProxyLookup } from '../../src/dev/proxy.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const VAULT_DOMAIN = 'vault.localhost';

function available(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const pythonSkip = available(PYTHON, ['-c', 'import requests']) ? false : `${PYTHON} with requests (Debian python3-requests) is not installed`;
const curlSkip = available('curl', ['--version']) ? false : 'curl is not installed';

/** Resolves `localhost` to 127.0.0.1 and nothing else, so the tests never query DNS. */
const loopbackLookup: DevProxyLookup = (hostname, _opts, cb) => {
  if (hostname === 'localhost') cb(null, [{ address: '127.0.0.1', family: 4 }]);
  else if (hostname === 'blocked.test') cb(null, [{ address: '127.0.0.3', family: 4 }]);
  else cb(Object.assign(new Error(`test lookup: ${hostname} unknown`), { code: 'ENOTFOUND' }), []);
};

/** The environment of a child process, stripped of any proxy settings the machine has. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [
    'HTTPS_PROXY',
    'https_proxy',
    'HTTP_PROXY',
    'http_proxy',
    'ALL_PROXY',
    'all_proxy',
    'NO_PROXY',
    'no_proxy',
    'NODE_EXTRA_CA_CERTS',
    'REQUESTS_CA_BUNDLE',
    'CURL_CA_BUNDLE',
  ]) {
    delete env[name];
  }
  return { ...env, ...extra };
}

/** Writes `data` to the proxy and collects what comes back until the proxy closes or `until` matches. */
function raw(port: number, data: string | Buffer, until?: RegExp, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer in ${String(timeoutMs)} ms; got ${JSON.stringify(text)}`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (until?.test(text)) done();
    });
    socket.on('close', done);
    socket.on('error', () => undefined);
    socket.write(data);
  });
}

/** Opens a CONNECT tunnel and returns the socket once the proxy said 200. */
function tunnel(port: number, target: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    const onData = (c: Buffer): void => {
      text += c.toString('latin1');
      if (text.includes('\r\n\r\n')) {
        socket.off('data', onData);
        if (text.startsWith('HTTP/1.1 200')) resolve(socket);
        else reject(new Error(text));
      }
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

describe('dev proxy', () => {
  let dir: string;
  let caFile: string;
  let vault: https.Server;
  let vaultPort: number;
  let agent: http.Server;
  let agentPort: number;
  let proxy: DevProxy;
  /** Every target the proxy was asked for, claimed or not. */
  const seen: string[] = [];
  /** Pass-through addresses the proxy connected to. */
  const passed: string[] = [];
  const routeTo = { port: 0 };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'openmsi-dev-proxy-'));
    const ca = await createCertificateAuthority({ clock: systemClock });
    const leaf = await issueServerCertificate({
      caCertPem: ca.certPem,
      caKeyPkcs8Pem: ca.keyPkcs8Pem,
      hostnames: [`*.${VAULT_DOMAIN}`, 'localhost'],
      ipAddresses: ['127.0.0.1'],
      clock: systemClock,
    });
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, ca.certPem);
    vault = https.createServer({ cert: leaf.certPem, key: leaf.keyPkcs8Pem }, (req, res) => {
      const servername = (req.socket as unknown as { servername?: string }).servername;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ host: req.headers.host, servername, path: req.url }));
    });
    vaultPort = await listen(vault);
    routeTo.port = vaultPort;
    agent = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ agent: true, method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }));
      });
    });
    agentPort = await listen(agent);
    proxy = await startDevProxy({
      port: 0,
      route: (hostname, port) => {
        seen.push(`${hostname}:${String(port)}`);
        return hostname.endsWith(`.${VAULT_DOMAIN}`) ? { host: '127.0.0.1', port: routeTo.port } : undefined;
      },
      allowUpstream: (_hostname, _port, address) => {
        passed.push(address);
        return address === '127.0.0.1';
      },
      lookup: loopbackLookup,
    });
  });
  after(async () => {
    await proxy.close();
    vault.close();
    agent.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const vaultUrl = (path = '/secrets/s1?api-version=7.4') => `https://kv.${VAULT_DOMAIN}:${String(vaultPort)}${path}`;
  const proxyEnv = () => Object.fromEntries(proxyEnvironment(proxy.url, ['127.0.0.1']));
  const consulted = (target: string) => seen.filter((s) => s === target).length;

  it('refuses to listen anywhere but loopback', async () => {
    for (const host of ['0.0.0.0', '::', 'localhost', '192.168.1.1']) {
      await assert.rejects(startDevProxy({ host, port: 0, route: () => undefined }), /only loopback addresses/);
    }
  });

  describe("Node's @azure/core-rest-pipeline in a child process (HTTPS_PROXY, NODE_EXTRA_CA_CERTS)", () => {
    const script = `
      import { createDefaultHttpClient, createPipelineFromOptions, createPipelineRequest } from '@azure/core-rest-pipeline';
      const pipeline = createPipelineFromOptions({});
      const res = await pipeline.sendRequest(createDefaultHttpClient(), createPipelineRequest({ url: process.env.TARGET_URL, allowInsecureConnection: true }));
      process.stdout.write(JSON.stringify({ status: res.status, body: res.bodyAsText }));`;
    const node = async (url: string, env: Record<string, string>) => {
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
        env: cleanEnv({ ...env, TARGET_URL: url }),
        cwd: process.cwd(),
        timeout: 30_000,
      });
      const out = JSON.parse(stdout) as { status: number; body: string };
      return { status: out.status, body: JSON.parse(out.body) as Record<string, unknown> };
    };

    it('reaches https://kv.vault.localhost:PORT/ through the proxy, TLS end to end (SNI and Host unchanged)', async () => {
      const before = consulted(`kv.${VAULT_DOMAIN}:${String(vaultPort)}`);
      const res = await node(vaultUrl(), { ...proxyEnv(), NODE_EXTRA_CA_CERTS: caFile });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { host: `kv.${VAULT_DOMAIN}:${String(vaultPort)}`, servername: `kv.${VAULT_DOMAIN}`, path: '/secrets/s1?api-version=7.4' });
      assert.equal(consulted(`kv.${VAULT_DOMAIN}:${String(vaultPort)}`), before + 1);
    });

    it('NO_PROXY=127.0.0.1 sends the agent request direct; without it the pipeline forwards http:// through HTTPS_PROXY', async () => {
      const target = `127.0.0.1:${String(agentPort)}`;
      const before = consulted(target);
      const direct = await node(`http://${target}/msi/token`, proxyEnv());
      assert.equal(direct.body['agent'], true);
      assert.equal(consulted(target), before, 'bypassed the proxy');
      const viaProxy = await node(`http://${target}/msi/token`, { HTTPS_PROXY: proxy.url });
      assert.equal(viaProxy.body['agent'], true);
      assert.equal(viaProxy.body['path'], '/msi/token');
      assert.equal(consulted(target), before + 1, 'absolute-form request forwarded by the proxy');
    });

    it('matches NO_PROXY names exactly: a `localhost` entry does not bypass *.localhost in Node', async () => {
      const before = consulted(`kv.${VAULT_DOMAIN}:${String(vaultPort)}`);
      const res = await node(vaultUrl(), { HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1,localhost', NODE_EXTRA_CA_CERTS: caFile });
      assert.equal(res.status, 200);
      assert.equal(consulted(`kv.${VAULT_DOMAIN}:${String(vaultPort)}`), before + 1);
    });
  });

  describe('Debian Python requests (HTTPS_PROXY, REQUESTS_CA_BUNDLE)', { skip: pythonSkip }, () => {
    const get = async (url: string, env: Record<string, string>) => {
      const script = 'import sys, requests; r = requests.get(sys.argv[1], timeout=10); print(r.status_code); print(r.text)';
      const { stdout } = await run(PYTHON, ['-c', script, url], { env: cleanEnv(env), timeout: 30_000 });
      const [status, body] = stdout.split('\n');
      return { status: Number(status), body: JSON.parse(body!) as Record<string, unknown> };
    };

    it('reaches the vault host through the proxy', async () => {
      const before = consulted(`kv.${VAULT_DOMAIN}:${String(vaultPort)}`);
      const res = await get(vaultUrl(), { ...proxyEnv(), REQUESTS_CA_BUNDLE: caFile });
      assert.equal(res.status, 200);
      assert.equal(res.body['servername'], `kv.${VAULT_DOMAIN}`);
      assert.equal(consulted(`kv.${VAULT_DOMAIN}:${String(vaultPort)}`), before + 1);
    });

    it('bypasses the proxy for the agent on 127.0.0.1 (even with HTTP_PROXY set)', async () => {
      const target = `127.0.0.1:${String(agentPort)}`;
      const before = consulted(target);
      const res = await get(`http://${target}/msi/token`, { ...proxyEnv(), HTTP_PROXY: proxy.url, http_proxy: proxy.url });
      assert.equal(res.body['agent'], true);
      assert.equal(consulted(target), before);
    });

    it('matches NO_PROXY as a suffix: `localhost` would bypass every *.localhost host, our list does not', async () => {
      const script = ['import sys, requests.utils as u', 'for np in sys.argv[2:]: print(u.should_bypass_proxies(sys.argv[1], no_proxy=np))'].join('\n');
      const ours = proxyEnv()['NO_PROXY']!;
      const { stdout } = await run(PYTHON, ['-c', script, vaultUrl('/'), '127.0.0.1,localhost', ours], { env: cleanEnv({}) });
      assert.deepEqual(stdout.trim().split('\n'), ['True', 'False']);
    });
  });

  describe('curl', { skip: curlSkip }, () => {
    const curl = async (args: string[], env: Record<string, string> = {}) => {
      const { stdout } = await run('curl', ['-sS', '--max-time', '10', ...args], { env: cleanEnv(env), timeout: 30_000 });
      return JSON.parse(stdout) as Record<string, unknown>;
    };

    it('reaches the vault host with -x and with HTTPS_PROXY', async () => {
      const target = `kv.${VAULT_DOMAIN}:${String(vaultPort)}`;
      const before = consulted(target);
      assert.equal((await curl(['--cacert', caFile, '-x', proxy.url, vaultUrl()]))['servername'], `kv.${VAULT_DOMAIN}`);
      assert.equal((await curl(['--cacert', caFile, vaultUrl()], proxyEnv()))['host'], target);
      assert.equal(consulted(target), before + 2);
    });

    it('bypasses the proxy for 127.0.0.1 with our no_proxy; a `localhost` entry would bypass *.localhost too', async () => {
      const agentTarget = `127.0.0.1:${String(agentPort)}`;
      const before = consulted(agentTarget);
      assert.equal((await curl([`http://${agentTarget}/`], { ...proxyEnv(), http_proxy: proxy.url }))['agent'], true);
      assert.equal(consulted(agentTarget), before);
      // --resolve keeps curl off DNS if it goes direct, which is what the `localhost` entry makes it do.
      const vaultTarget = `kv.${VAULT_DOMAIN}:${String(vaultPort)}`;
      const beforeVault = consulted(vaultTarget);
      await curl(['--cacert', caFile, '--resolve', `${vaultTarget}:127.0.0.1`, vaultUrl()], { HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1,localhost' });
      assert.equal(consulted(vaultTarget), beforeVault, 'suffix match: went direct');
    });

    it('tunnels a non-claimed target (https://localhost:PORT) unchanged, resolved by the proxy', async () => {
      const target = `localhost:${String(vaultPort)}`;
      const before = consulted(target);
      passed.length = 0;
      const body = await curl(['--cacert', caFile, `https://${target}/authority`], proxyEnv());
      assert.deepEqual(body, { host: target, servername: 'localhost', path: '/authority' });
      assert.equal(consulted(target), before + 1);
      assert.deepEqual(passed, ['127.0.0.1']);
    });

    it('forwards an absolute-form http:// request (curl -x http://...)', async () => {
      const body = await curl(['-x', proxy.url, '-H', 'Metadata: true', '--data', 'resource=x', `http://localhost:${String(agentPort)}/oauth2/token`]);
      assert.equal(body['method'], 'POST');
      assert.equal(body['body'], 'resource=x');
      const headers = body['headers'] as Record<string, string>;
      assert.equal(headers['metadata'], 'true');
      assert.equal(headers['host'], `localhost:${String(agentPort)}`);
      assert.equal(headers['proxy-connection'], undefined, 'hop-by-hop headers are not forwarded');
    });
  });

  describe('errors', () => {
    it('502 with a short reason when a claimed or a pass-through upstream refuses', async () => {
      const dead = await closedPort();
      routeTo.port = dead;
      try {
        const claimed = await raw(proxy.port, `CONNECT kv.${VAULT_DOMAIN}:443 HTTP/1.1\r\n\r\n`);
        assert.match(claimed, /^HTTP\/1\.1 502 Bad Gateway/);
        assert.match(claimed, new RegExp(`kv\\.vault\\.localhost:443 refused the connection`));
      } finally {
        routeTo.port = vaultPort;
      }
      assert.match(await raw(proxy.port, `CONNECT localhost:${String(dead)} HTTP/1.1\r\n\r\n`), /^HTTP\/1\.1 502 [^]*localhost:\d+ refused the connection/);
      assert.match(await raw(proxy.port, `GET http://localhost:${String(dead)}/ HTTP/1.1\r\nHost: x\r\n\r\n`), /^HTTP\/1\.1 502 [^]*refused the connection/);
    });

    it('502 when a pass-through name does not resolve; 403 when allowUpstream refuses its address', async () => {
      assert.match(await raw(proxy.port, 'CONNECT nowhere.test:443 HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 502 [^]*cannot resolve nowhere\.test:443/);
      assert.match(await raw(proxy.port, 'CONNECT blocked.test:443 HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 403 [^]*blocked\.test:443 \(127\.0\.0\.3\) is not allowed/);
      assert.match(await raw(proxy.port, 'CONNECT 127.0.0.2:443 HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 403 [^]*127\.0\.0\.2:443 is not allowed/);
      assert.match(await raw(proxy.port, 'GET http://127.0.0.2:80/ HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 403 /);
    });

    it('400 for garbage, malformed CONNECT targets, origin-form and https:// absolute form; 431 for huge headers', async () => {
      assert.match(await raw(proxy.port, '\x16\x03\x01garbage\r\n\r\n'), /^HTTP\/1\.1 400 [^]*malformed HTTP request/);
      assert.match(await raw(proxy.port, 'CONNECT nohostport HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 [^]*CONNECT needs host:port/);
      assert.match(await raw(proxy.port, 'CONNECT a..b:443 HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 /);
      assert.match(await raw(proxy.port, 'CONNECT x:0 HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 /);
      assert.match(await raw(proxy.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400 [^]*this is a proxy/);
      assert.match(await raw(proxy.port, 'GET https://localhost/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400 [^]*go through CONNECT/);
      assert.match(await raw(proxy.port, `GET http://localhost/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
    });

    it('keeps serving after a client disconnects mid-tunnel and after an upstream drops a tunnel', async () => {
      const a = await tunnel(proxy.port, `localhost:${String(agentPort)}`);
      a.write('GET / HTTP/1.1\r\nHost: localhost\r\n');
      a.destroy();
      const dropper = net.createServer((s) => s.destroy());
      const dropPort = await listen(dropper);
      const b = await tunnel(proxy.port, `localhost:${String(dropPort)}`);
      await new Promise((r) => b.once('close', r));
      dropper.close();
      const answer = await raw(proxy.port, `GET http://localhost:${String(agentPort)}/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.match(answer, /^HTTP\/1\.1 200 [^]*"path":"\/after"/);
    });

    it('tunnels a raw HTTP exchange to a non-claimed target byte for byte', async () => {
      const s = await tunnel(proxy.port, `localhost:${String(agentPort)}`);
      const text = await new Promise<string>((resolve) => {
        let out = '';
        s.on('data', (c: Buffer) => (out += c.toString()));
        s.on('close', () => resolve(out));
        s.write('GET /inside HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      });
      assert.match(text, /^HTTP\/1\.1 200 [^]*"path":"\/inside"/);
    });
  });

  describe('timeouts and close()', () => {
    it('504 when the upstream cannot be reached in connectTimeoutMs; idle tunnels close after idleTimeoutMs', async () => {
      const hang: DevProxyLookup = (hostname, opts, cb) => (hostname === 'slow.test' ? undefined : loopbackLookup(hostname, opts, cb));
      const p = await startDevProxy({ port: 0, route: () => undefined, lookup: hang, connectTimeoutMs: 200, idleTimeoutMs: 300 });
      try {
        assert.match(await raw(p.port, 'CONNECT slow.test:443 HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 504 [^]*did not answer in time/);
        const s = await tunnel(p.port, `localhost:${String(agentPort)}`);
        const started = Date.now();
        await new Promise((r) => s.once('close', r));
        assert.ok(Date.now() - started >= 250, 'closed by the idle timeout, not at once');
      } finally {
        await p.close();
      }
    });

    it('close() ends open tunnels and stops listening', async () => {
      const p = await startDevProxy({ port: 0, route: () => undefined, lookup: loopbackLookup });
      const s = await tunnel(p.port, `localhost:${String(agentPort)}`);
      const closed = new Promise((r) => s.once('close', r));
      await p.close();
      await closed;
      assert.equal(await raw(p.port, 'x'), '', 'nothing listens any more');
    });
  });
});

describe('proxyEnvironment', () => {
  it('names the proxy for https and only loopback IP literals in NO_PROXY', () => {
    assert.deepEqual(proxyEnvironment('http://127.0.0.1:41234', ['127.0.0.1', '::1']), [
      ['HTTPS_PROXY', 'http://127.0.0.1:41234'],
      ['https_proxy', 'http://127.0.0.1:41234'],
      ['NO_PROXY', '127.0.0.1,::1,[::1]'],
      ['no_proxy', '127.0.0.1,::1,[::1]'],
    ]);
    assert.equal(proxyEnvironment('http://127.0.0.1:1')[2]![1], '127.0.0.1');
  });

  it('refuses names (localhost would bypass *.localhost as a suffix) and non-loopback addresses', () => {
    assert.throws(() => proxyEnvironment('http://127.0.0.1:1', ['localhost']), /loopback IP literals only, got "localhost"/);
    assert.throws(() => proxyEnvironment('http://127.0.0.1:1', ['10.0.0.1']), /loopback IP literals only/);
    assert.throws(() => proxyEnvironment('https://127.0.0.1:1', ['127.0.0.1']), /must be http:\/\//);
  });
});

/**
 * A stand-in for the user's corporate proxy, on loopback: it records what it is asked, answers CONNECT by
 * tunnelling to `tunnelTo` (whatever the target) and absolute-form requests with a text naming the URL.
 */
async function startUserProxy(
  tunnelTo: number,
): Promise<{ port: number; asked: string[]; auth: (string | undefined)[]; refuse: { status?: number }; close(): Promise<void> }> {
  const asked: string[] = [];
  const auth: (string | undefined)[] = [];
  const refuse: { status?: number } = {};
  const server = http.createServer((req, res) => {
    asked.push(`${req.method ?? ''} ${req.url ?? ''}`);
    auth.push(req.headers['proxy-authorization']);
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`user proxy fetched ${req.url ?? ''}`);
  });
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket) => {
    asked.push(`CONNECT ${req.url ?? ''}`);
    auth.push(req.headers['proxy-authorization']);
    if (refuse.status !== undefined) {
      socket.end(`HTTP/1.1 ${String(refuse.status)} Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port: tunnelTo }, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  const port = await listen(server);
  return {
    port,
    asked,
    auth,
    refuse,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("dev proxy chained to the user's proxy (HTTPS_PROXY where openmsi dev runs)", () => {
  let echo: net.Server;
  let echoPort: number;
  let user: Awaited<ReturnType<typeof startUserProxy>>;
  let proxy: DevProxy;
  let vault: net.Server;
  let vaultPort: number;
  /** Only these names resolve (to loopback); everything else is unknown, so nothing leaves the machine. */
  const lookup: DevProxyLookup = (hostname, _opts, cb) => {
    if (hostname === 'localhost' || hostname === 'direct.corp.test') cb(null, [{ address: '127.0.0.1', family: 4 }]);
    else cb(Object.assign(new Error(`test lookup: ${hostname} unknown`), { code: 'ENOTFOUND' }), []);
  };

  before(async () => {
    echo = net.createServer((s) => s.pipe(s));
    echoPort = await listen(echo);
    vault = net.createServer((s) => s.end('vault here'));
    vaultPort = await listen(vault);
    user = await startUserProxy(echoPort);
    const userUrl = new URL(`http://alice:p%40ss@127.0.0.1:${String(user.port)}`);
    proxy = await startDevProxy({
      port: 0,
      lookup,
      route: (hostname) => (hostname.endsWith(`.${VAULT_DOMAIN}`) ? { host: '127.0.0.1', port: vaultPort } : undefined),
      upstream: { https: userUrl, http: userUrl, noProxy: ['.corp.test', 'localhost'] },
    });
  });
  after(async () => {
    await proxy.close();
    await user.close();
    echo.close();
    vault.close();
  });

  it("chains CONNECT to a non-vault host through the user's proxy, with its credentials, and relays the tunnel byte for byte", async () => {
    const before = user.asked.length;
    const socket = await tunnel(proxy.port, 'api.example.test:443');
    const reply = await new Promise<string>((resolve) => {
      socket.once('data', (c: Buffer) => resolve(c.toString('latin1')));
      socket.write('ping through two proxies');
    });
    socket.destroy();
    assert.equal(reply, 'ping through two proxies');
    assert.deepEqual(user.asked.slice(before), ['CONNECT api.example.test:443']);
    assert.equal(user.auth.at(-1), `Basic ${Buffer.from('alice:p@ss').toString('base64')}`);
  });

  it("never sends a vault host, a NO_PROXY name or loopback to the user's proxy", async () => {
    const before = user.asked.length;
    assert.match(await raw(proxy.port, `CONNECT kv.${VAULT_DOMAIN}:443 HTTP/1.1\r\n\r\n`, /vault here/), /^HTTP\/1\.1 200[^]*vault here/);
    const direct = await tunnel(proxy.port, `direct.corp.test:${String(echoPort)}`);
    direct.destroy();
    const loopback = await tunnel(proxy.port, `127.0.0.1:${String(echoPort)}`);
    loopback.destroy();
    assert.deepEqual(user.asked.slice(before), []);
  });

  it("forwards absolute-form http:// to the user's proxy in absolute form", async () => {
    const answer = await raw(proxy.port, 'GET http://api.example.test/v1?x=1 HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n', /fetched/);
    assert.match(answer, /^HTTP\/1\.1 200[^]*user proxy fetched http:\/\/api\.example\.test\/v1\?x=1/);
    assert.equal(user.asked.at(-1), 'GET http://api.example.test/v1?x=1');
  });

  it("502 naming the user's proxy and its answer when it refuses the tunnel", async () => {
    user.refuse.status = 407;
    try {
      const answer = await raw(proxy.port, 'CONNECT api.example.test:443 HTTP/1.1\r\n\r\n');
      assert.match(answer, /^HTTP\/1\.1 502 Bad Gateway/);
      assert.match(answer, /the upstream proxy 127\.0\.0\.1:\d+ refused the tunnel: it answered CONNECT api\.example\.test:443 with "HTTP\/1\.1 407/);
      assert.doesNotMatch(answer, /alice|p@ss|p%40ss/);
    } finally {
      delete user.refuse.status;
    }
  });
});

describe('upstreamProxyFromEnv and NO_PROXY', () => {
  it('takes HTTPS_PROXY for CONNECT and HTTP_PROXY for plain HTTP, falling back to ALL_PROXY, with NO_PROXY', () => {
    const { upstream, ignored } = upstreamProxyFromEnv(
      { https_proxy: 'http://corp:3128', ALL_PROXY: 'corp-all:8080', NO_PROXY: ' .Internal.test ,10.1.2.3' },
      50343,
    );
    assert.deepEqual(ignored, []);
    assert.equal(upstream?.https?.href, 'http://corp:3128/');
    assert.equal(upstream?.http?.href, 'http://corp-all:8080/');
    assert.deepEqual(upstream?.noProxy, ['.internal.test', '10.1.2.3']);
    assert.deepEqual(upstreamProxyFromEnv({}, 50343), { upstream: undefined, ignored: [], selfReferences: [] });
  });

  it('skips a proxy that is the dev proxy itself (a shell where dev env was evaluated), and ignores one that is not http://, saying why', () => {
    const self = upstreamProxyFromEnv({ HTTPS_PROXY: 'http://127.0.0.1:50343', HTTP_PROXY: 'socks5://corp:1080' }, 50343);
    assert.equal(self.upstream, undefined);
    assert.deepEqual(self.selfReferences, ['HTTPS_PROXY']);
    assert.deepEqual(self.ignored, ['HTTP_PROXY: a socks5:// proxy (the dev proxy chains to http:// proxies only)']);
    assert.equal(upstreamProxyFromEnv({ HTTPS_PROXY: 'http://localhost:50343' }, 50343).upstream, undefined);
    assert.equal(upstreamProxyFromEnv({ HTTPS_PROXY: 'http://127.0.0.1:50343' }, 9999).upstream?.https?.port, '50343');
  });

  it('matches NO_PROXY as curl does: domains with their subdomains, *, exact IPs, optional ports', () => {
    const cases: [string[], string, number, boolean][] = [
      [['example.com'], 'example.com', 443, true],
      [['example.com'], 'api.example.com', 443, true],
      [['.example.com'], 'api.example.com', 443, true],
      [['*.example.com'], 'api.example.com', 443, true],
      [['example.com'], 'badexample.com', 443, false],
      [['example.com'], 'example.com.evil.test', 443, false],
      [['*'], 'anything.test', 80, true],
      [['10.1.2.3'], '10.1.2.3', 443, true],
      [['10.1.2.3'], '10.1.2.30', 443, false],
      [['example.com:8443'], 'example.com', 443, false],
      [['example.com:8443'], 'example.com', 8443, true],
      [['[::1]:443'], '::1', 443, true],
      [[''], 'example.com', 443, false],
    ];
    for (const [noProxy, host, port, expected] of cases)
      assert.equal(bypassesUpstream(noProxy, host, port), expected, `${noProxy.join(',')} vs ${host}:${String(port)}`);
  });
});
