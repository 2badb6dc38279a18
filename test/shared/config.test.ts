import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkTokenLifetime,
  httpsProxyFor,
  ConfigError,
  loadInstallationConfig,
  readEnvironment,
  resolveDataDir,
  storeLocation,
  TOKEN_LIFETIME_SECONDS,
} from '../../src/shared/config.js';
import { DataDirError } from '../../src/shared/data-dir.js';

const VALID = {
  version: 1,
  tenantId: '7c1f3a52-55d1-4c55-9fb0-2b3a4c5d6e7f',
  subscriptionId: '0e2f8d1c-3b4a-4c5d-8e9f-a0b1c2d3e4f5',
  host: '127.0.0.1',
  port: 8443,
  publicUrl: 'https://localhost:8443',
  store: 'sqlite',
  tokenLifetimeSeconds: 3600,
  vaultDomain: 'kv.example.test',
};

function withConfig(text: string, fn: (dir: string, path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'openmsi-config-'));
  try {
    const path = join(dir, 'config.json');
    writeFileSync(path, text);
    fn(dir, path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Asserts that loading throws a DataDirError naming `path`, matching `pattern`, and saying what to do. */
function assertRejected(dir: string, path: string, pattern: RegExp): void {
  assert.throws(
    () => loadInstallationConfig(dir),
    (err: unknown) => {
      assert.ok(err instanceof DataDirError, String(err));
      assert.equal(err.path, path);
      assert.ok(err.message.includes(path), err.message);
      assert.match(err.message, pattern);
      assert.match(err.message, /fix it by hand|restore it|openmsi init|release/i);
      return true;
    },
  );
}

void describe('configuration module', () => {
  void it('loads a valid config.json unchanged', () => {
    withConfig(JSON.stringify(VALID), (dir) => assert.deepEqual(loadInstallationConfig(dir), VALID));
  });

  void it('reads a config.json from before the vault with the default vault domain, and refuses a bad one naming the field', () => {
    const { vaultDomain: _omitted, ...older } = VALID;
    withConfig(JSON.stringify(older), (dir) => assert.deepEqual(loadInstallationConfig(dir), { ...older, vaultDomain: 'vault.localhost' }));
    for (const bad of ['localhost', 'Vault.Localhost', '-x.localhost', 'a..b', 42]) {
      withConfig(JSON.stringify({ ...VALID, vaultDomain: bad }), (d, p) => assertRejected(d, p, /"vaultDomain" must be a lower-case DNS name/));
    }
  });

  void it('names config.json and says what to do when it is missing, not JSON, or has a bad field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'openmsi-config-'));
    try {
      assert.throws(() => loadInstallationConfig(dir), /not an initialised openmsi data dir \(no config\.json\); run `openmsi init` first/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    withConfig('{ version: 1 }', (d, p) => assertRejected(d, p, /is not valid JSON \(.*position/));
    withConfig('[]', (d, p) => assertRejected(d, p, /must hold a JSON object/));
    withConfig(JSON.stringify({ ...VALID, version: 2 }), (d, p) => assertRejected(d, p, /unsupported config version 2/));
    withConfig(JSON.stringify({ ...VALID, tenantId: 'nope' }), (d, p) => assertRejected(d, p, /"tenantId" must be a GUID \(got "nope"\)/));
    withConfig(JSON.stringify({ ...VALID, port: 70000 }), (d, p) => assertRejected(d, p, /"port" must be a port number/));
    withConfig(JSON.stringify({ ...VALID, port: '8443' }), (d, p) => assertRejected(d, p, /"port" must be a port number/));
    withConfig(JSON.stringify({ ...VALID, publicUrl: 'http://localhost:8443' }), (d, p) => assertRejected(d, p, /"publicUrl" must be an https:\/\/ URL/));
    withConfig(JSON.stringify({ ...VALID, host: '' }), (d, p) => assertRejected(d, p, /"host" must be a non-empty string/));
    withConfig(JSON.stringify({ ...VALID, federationIssuer: 'http://issuer.example/openmsi' }), (d, p) =>
      assertRejected(d, p, /"federationIssuer" must be an https:\/\/ URL/),
    );
    withConfig(JSON.stringify({ ...VALID, federationIssuer: 'https://issuer.example/openmsi/' }), (d) =>
      assert.equal(loadInstallationConfig(d).federationIssuer, 'https://issuer.example/openmsi/', 'kept exactly, trailing / included'),
    );
    const { store: _store, ...noStore } = VALID;
    withConfig(JSON.stringify(noStore), (d, p) => assertRejected(d, p, /"store" must be a non-empty string \(got nothing\)/));
    for (const lifetime of [TOKEN_LIFETIME_SECONDS.min - 1, TOKEN_LIFETIME_SECONDS.max + 1, 3600.5]) {
      withConfig(JSON.stringify({ ...VALID, tokenLifetimeSeconds: lifetime }), (d, p) =>
        assertRejected(d, p, /"tokenLifetimeSeconds" must be a whole number of seconds from 300 to 86400/),
      );
    }
  });

  void it('has one token-lifetime rule, bounds included', () => {
    assert.deepEqual(TOKEN_LIFETIME_SECONDS, { min: 300, max: 86_400, default: 3600 });
    assert.equal(checkTokenLifetime(300, 'x'), 300);
    assert.equal(checkTokenLifetime(86_400, 'x'), 86_400);
    assert.throws(
      () => checkTokenLifetime(299, '--token-lifetime'),
      /^ConfigError: --token-lifetime must be a whole number of seconds from 300 to 86400 \(got 299\)$/,
    );
    assert.throws(() => checkTokenLifetime(86_401, '--token-lifetime'), ConfigError);
    assert.throws(() => checkTokenLifetime(Number('abc'), '--token-lifetime'), /got NaN/);
  });

  void it('reads every OPENMSI_* variable in one place, empty meaning unset, and names a bad one', () => {
    assert.deepEqual(readEnvironment({}), {});
    assert.deepEqual(readEnvironment({ OPENMSI_STORE: '', OPENMSI_MASTER_KEY: '  ', OPENMSI_LOG_LEVEL: '' }), {});
    assert.deepEqual(
      readEnvironment({
        OPENMSI_DATA_DIR: '/d',
        OPENMSI_STORE: 'postgres://x@h/db',
        OPENMSI_MASTER_KEY: 'k',
        OPENMSI_LOG_LEVEL: 'DEBUG',
        OPENMSI_LOG_FORMAT: 'pretty',
        OPENMSI_AUTHORITY_URL: 'https://a:1',
      }),
      { dataDir: '/d', store: 'postgres://x@h/db', masterKey: 'k', logLevel: 'debug', logFormat: 'pretty', authorityUrl: 'https://a:1' },
    );
    assert.throws(
      () => readEnvironment({ OPENMSI_LOG_LEVEL: 'verbose' }),
      /^ConfigError: OPENMSI_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent \(got 'verbose'\)$/,
    );
    assert.throws(() => readEnvironment({ OPENMSI_LOG_FORMAT: 'xml' }), /OPENMSI_LOG_FORMAT must be json or pretty/);
  });

  void it('resolves the data dir and the store with the documented precedence', () => {
    assert.equal(resolveDataDir('/explicit', { OPENMSI_DATA_DIR: '/env' }), '/explicit');
    assert.equal(resolveDataDir(undefined, { OPENMSI_DATA_DIR: '/env' }), '/env');
    assert.equal(resolveDataDir(undefined, {}), join(homedir(), '.openmsi'));
    assert.equal(storeLocation('/d', { store: 'sqlite' }, {}), join('/d', 'store', 'openmsi.db'));
    assert.equal(storeLocation('/d', { store: 'postgres://u@h/db' }, {}), 'postgres://u@h/db');
    assert.equal(storeLocation('/d', { store: 'postgres://u@h/db' }, { OPENMSI_STORE: 'postgres://u:pw@h/db' }), 'postgres://u:pw@h/db');
  });
});

void describe('httpsProxyFor: HTTPS_PROXY and NO_PROXY as curl and the Azure SDKs read them', () => {
  const target = new URL('https://login.microsoftonline.com/tenant/oauth2/v2.0/token');
  const at = (env: NodeJS.ProcessEnv, url: URL = target) => httpsProxyFor(url, env)?.href;

  void it('no proxy variable: direct', () => {
    assert.equal(at({}), undefined);
    assert.equal(at({ HTTPS_PROXY: '  ' }), undefined);
    assert.equal(at({ HTTP_PROXY: 'http://proxy:3128' }), undefined, 'HTTP_PROXY is for http:// targets');
  });

  void it('HTTPS_PROXY or https_proxy (the lower-case one wins); a bare host:port means http://', () => {
    assert.equal(at({ HTTPS_PROXY: 'http://proxy.corp:3128' }), 'http://proxy.corp:3128/');
    assert.equal(at({ https_proxy: 'proxy.corp:8080' }), 'http://proxy.corp:8080/');
    assert.equal(at({ HTTPS_PROXY: 'http://upper:1', https_proxy: 'http://lower:2' }), 'http://lower:2/');
    assert.equal(at({ HTTPS_PROXY: 'https://tls-proxy:443' }), 'https://tls-proxy/');
  });

  void it('NO_PROXY: *, exact hosts, domain suffixes with or without a dot, ports, either case, spaces', () => {
    const proxy = { HTTPS_PROXY: 'http://proxy:3128' };
    for (const noProxy of [
      '*',
      'login.microsoftonline.com',
      'microsoftonline.com',
      '.microsoftonline.com',
      '*.microsoftonline.com',
      'LOGIN.MicrosoftOnline.com',
      'other, login.microsoftonline.com',
      'login.microsoftonline.com:443',
    ]) {
      assert.equal(at({ ...proxy, NO_PROXY: noProxy }), undefined, `NO_PROXY=${noProxy} sends it direct`);
      assert.equal(at({ ...proxy, no_proxy: noProxy }), undefined, `no_proxy=${noProxy} sends it direct`);
    }
    for (const noProxy of ['', 'example.com', 'online.com', 'soft.com', 'login.microsoftonline.com:8443', 'login.microsoftonline.com.evil']) {
      assert.equal(at({ ...proxy, NO_PROXY: noProxy }), 'http://proxy:3128/', `NO_PROXY=${noProxy} keeps the proxy`);
    }
    assert.equal(at({ ...proxy, NO_PROXY: '127.0.0.1' }, new URL('https://127.0.0.1:8443/t')), undefined);
    assert.equal(at({ ...proxy, NO_PROXY: '[::1]' }, new URL('https://[::1]:8443/t')), undefined);
    assert.equal(at({ ...proxy, NO_PROXY: '[::1]:8443' }, new URL('https://[::1]:8443/t')), undefined);
    assert.equal(at({ ...proxy, NO_PROXY: '::1' }, new URL('https://[::1]:8443/t')), undefined);
    assert.equal(at({ ...proxy, NO_PROXY: '[::1]:9' }, new URL('https://[::1]:8443/t')), 'http://proxy:3128/');
  });

  void it('a proxy URL that is not http(s) is a configuration error that does not print its credentials', () => {
    assert.throws(
      () => at({ HTTPS_PROXY: 'socks5://user:hunter2@proxy:1080' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.doesNotMatch(err.message, /hunter2/);
        return true;
      },
    );
    assert.throws(() => at({ HTTPS_PROXY: 'http://[bad' }), ConfigError);
  });
});
