/**
 * Every example under examples/ run as a user would, against one `openmsi dev` child process on free ports and
 * a fresh home directory (so `~/.openmsi` is the data dir and every openmsi command finds it with no flag).
 *
 * - Clients start from an environment built from scratch: PATH (a temp dir with an `openmsi` wrapper and
 *   `node`, then /usr/bin:/bin) and HOME; whatever else they have comes from `eval "$(openmsi dev env)"`.
 * - No request may leave loopback: where the kernel allows unprivileged namespaces, `openmsi dev` runs in a
 *   new network namespace that has only `lo`, and every client joins it (nsenter), so a request to anything
 *   else fails instead of leaving. Where it does not, the suite says so in a diagnostic and runs in the host's
 *   namespace.
 * - There is no docker in CI: the container's entrypoint runs on the host with exactly the environment
 *   examples/container/docker-compose.yml gives the container (parsed from it, `${VAR}` filled in from the
 *   dev environment as compose does, container paths mapped back through its volumes).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { freePort } from '../../support/authority.js';
import { repoRoot } from '../../support/child-process.js';
import { cliShim } from '../../support/cli.js';
import { within } from '../../support/poll.js';

const SAMPLE = 'Hello from the openmsi dev vault';
const EVAL = 'eval "$(openmsi dev env)"';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Whether `unshare -rn` (user + network namespace, no root) works here, with `ip` to bring `lo` up. */
function namespacesAvailable(): boolean {
  const probe = spawnSync('unshare', ['-rn', 'sh', '-c', 'ip link set lo up'], { stdio: 'ignore', timeout: 10_000 });
  return probe.status === 0 && spawnSync('nsenter', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Parses the `- NAME=value` items of the list under `key:` at `indent` spaces in a compose file. */
function composeList(text: string, key: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trimEnd() === `    ${key}:`);
  assert.notEqual(start, -1, `docker-compose.yml has no ${key}: list`);
  const items: string[] = [];
  for (const line of lines.slice(start + 1)) {
    const m = /^ {6}- (.+)$/.exec(line);
    if (m === null) break;
    items.push(m[1]!.trim());
  }
  return items;
}

/** Compose's `${VAR}` interpolation from the shell's environment (an unset variable is an error here). */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
    const v = env[name];
    assert.ok(v !== undefined, `compose interpolates \${${name}}, which openmsi dev env does not set`);
    return v;
  });
}

/** The `run: |` block and the `env:` map of the step with `id`, from a GitHub Actions workflow. */
function workflowStep(text: string, id: string): { run: string; env: Record<string, string> } {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === `- id: ${id}`);
  assert.notEqual(start, -1, `the workflow has no step with id ${id}`);
  const stepIndent = lines[start]!.indexOf('-') + 2;
  const env: Record<string, string> = {};
  let run: string | undefined;
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() !== '' && line.search(/\S/) < stepIndent) break;
    if (line.trim() === 'env:') {
      for (i++; i < lines.length && /^\s+\S+: /.test(lines[i]!) && lines[i]!.search(/\S/) > stepIndent; i++) {
        const [name, ...rest] = lines[i]!.trim().split(': ');
        env[name!] = rest.join(': ');
      }
      i--;
    } else if (line.trim() === 'run: |') {
      const block: string[] = [];
      for (i++; i < lines.length && (lines[i]!.trim() === '' || lines[i]!.search(/\S/) > stepIndent); i++) block.push(lines[i]!.slice(stepIndent + 2));
      run = `${block.join('\n').trim()}\n`;
      i--;
    }
  }
  assert.ok(run !== undefined, `step ${id} has no run: | block`);
  return { run, env };
}

describe('examples against openmsi dev', { timeout: 240_000 }, () => {
  let root: string;
  let home: string;
  let bin: string;
  let dev: ChildProcessWithoutNullStreams;
  let devOutput = '';
  let inNamespace: boolean;
  /** PATH and HOME only: everything else a client has comes from the eval line. */
  let baseEnv: Record<string, string>;

  /** Runs `argv` from the repository root with exactly `env`, inside the dev stack's network namespace. */
  function exec(argv: string[], env: Record<string, string>, timeoutMs = 90_000): Promise<Run> {
    const [file, ...args] = inNamespace ? ['nsenter', '-t', String(dev.pid), '-U', '-n', '--preserve-credentials', '--', ...argv] : argv;
    return new Promise((resolve) => {
      const child = spawn(file!, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      child.on('error', (err) => (stderr += `\nspawn error: ${err.message}`));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** `bash -c script` as a user's shell would run it. */
  function bash(script: string, extra: Record<string, string> = {}): Promise<Run> {
    return exec(['bash', '-c', script], { ...baseEnv, ...extra });
  }

  function assertPrints(run: Run, expected: string, what: string): void {
    assert.equal(run.code, 0, `${what} exited ${String(run.code)}; stderr:\n${run.stderr}\nstdout:\n${run.stdout}`);
    assert.equal(run.stdout.trim(), expected, `${what} printed something else; stderr:\n${run.stderr}`);
  }

  before(async (t) => {
    root = mkdtempSync(join(tmpdir(), 'openmsi-examples-'));
    home = join(root, 'home');
    bin = join(root, 'bin');
    mkdirSync(home);
    mkdirSync(bin);
    // `openmsi` as installed (from source here); `node` is the one running the tests.
    writeFileSync(join(bin, 'openmsi'), cliShim());
    chmodSync(join(bin, 'openmsi'), 0o755);
    symlinkSync(process.execPath, join(bin, 'node'));
    baseEnv = { PATH: `${bin}:/usr/bin:/bin`, HOME: home };

    inNamespace = namespacesAvailable();
    if (!inNamespace && 'diagnostic' in t)
      t.diagnostic('unshare -rn is not available: the examples run in the host network namespace (requests are still aimed at loopback only)');
    const [serverPort, agentPort, proxyPort] = [await freePort(), await freePort(), await freePort()];
    const devArgs = ['dev', '--port', String(serverPort), '--agent-port', String(agentPort), '--proxy-port', String(proxyPort)];
    const [file, ...args] = inNamespace
      ? ['unshare', '-rn', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', join(bin, 'openmsi'), ...devArgs]
      : [join(bin, 'openmsi'), ...devArgs];
    dev = spawn(file, args, { cwd: repoRoot, env: baseEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`openmsi dev not ready within 60 s:\n${devOutput}`)), 60_000);
      const onData = (c: Buffer): void => {
        devOutput += c.toString('utf8');
        if (/^openmsi dev ready/m.test(devOutput)) {
          clearTimeout(timer);
          resolve();
        }
      };
      dev.stdout.on('data', onData);
      dev.stderr.on('data', onData);
      dev.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`openmsi dev exited (${String(code)}) before it was ready:\n${devOutput}`));
      });
    });
  });

  after(async () => {
    if (dev !== undefined && dev.exitCode === null) {
      const exited = new Promise((resolve) => dev.once('exit', resolve));
      dev.kill('SIGTERM');
      await within(exited, 10_000);
      if (dev.exitCode === null) dev.kill('SIGKILL');
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('eval "$(openmsi dev env)" && node examples/node/read-secret.js prints the sample secret', async () => {
    assertPrints(await bash(`${EVAL} && node examples/node/read-secret.js`), SAMPLE, 'the Node example');
  });

  const debianPython = spawnSync('/usr/bin/python3', ['-c', 'import azure.identity, azure.keyvault.secrets'], { stdio: 'ignore' }).status === 0;
  it(
    'eval "$(openmsi dev env)" && python3 examples/python/read_secret.py (Debian python3-azure) prints it',
    { skip: debianPython ? false : "Debian's python3-azure is not installed" },
    async () => {
      const which = await bash('command -v python3');
      assert.equal(which.stdout.trim(), '/usr/bin/python3');
      assertPrints(await bash(`${EVAL} && python3 examples/python/read_secret.py`), SAMPLE, 'the Python example');
    },
  );

  it('eval "$(openmsi dev env)" && bash examples/curl/read-secret.sh (IMDS token, then api-version 2016-10-01) prints it', async () => {
    assertPrints(await bash(`${EVAL} && bash examples/curl/read-secret.sh`), SAMPLE, 'the curl example');
    const script = readFileSync(join(repoRoot, 'examples', 'curl', 'read-secret.sh'), 'utf8');
    assert.match(script, /-H 'Metadata: true'/);
    assert.match(script, /api-version=2016-10-01/);
    assert.doesNotMatch(script, /--resolve|--connect-to|--insecure|\s-k\s/, 'curl reaches the vault through the proxy and trusts the CA, nothing else');
  });

  it('an unchanged SecretClient + DefaultAzureCredential script reads a secret set with openmsi keyvault secret set', async () => {
    const value = 'Server=db.internal;Database=orders;Password=not-in-any-config-file';
    const set = await bash(`${EVAL} && openmsi keyvault secret set --vault-name dev -n orders-db --value '${value}'`);
    assert.equal(set.code, 0, set.stderr);
    const dir = mkdtempSync(join(root, 'app-'));
    symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
    writeFileSync(
      join(dir, 'app.mjs'),
      [
        "import { DefaultAzureCredential } from '@azure/identity';",
        "import { SecretClient } from '@azure/keyvault-secrets';",
        "const secret = await new SecretClient(process.env.AZURE_KEYVAULT_URL, new DefaultAzureCredential()).getSecret('orders-db');",
        'console.log(secret.value);',
        '',
      ].join('\n'),
    );
    assertPrints(await bash(`${EVAL} && node ${join(dir, 'app.mjs')}`), value, 'the unchanged script');
  });

  it('openmsi run --identity dev-app -- node examples/node/read-secret.js reads it with a dev-app token', async () => {
    const started = new Date(Date.now() - 1000).toISOString();
    assertPrints(await bash(`${EVAL} && openmsi run --identity dev-app -- node examples/node/read-secret.js`), SAMPLE, 'openmsi run');
    // The agent uploads its audit about a second after the fact: the token it served was dev-app's, through the session.
    const deadline = Date.now() + 20_000;
    let served: { actor: string; detail: { identity: string; surface: string; session?: string; caller?: { exe?: string } } }[] = [];
    while (Date.now() < deadline) {
      const list = await bash(`${EVAL} && openmsi audit list --identity dev-app --action agent.token.served --since ${started}`);
      assert.equal(list.code, 0, list.stderr);
      served = (JSON.parse(list.stdout) as typeof served).filter((e) => e.detail.surface === 'session');
      if (served.length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.ok(served.length > 0, 'no agent.token.served record for dev-app through an openmsi run session');
    const identity = await bash(`${EVAL} && openmsi identity show -g dev -n dev-app`);
    assert.equal(identity.code, 0, identity.stderr);
    const principalId = (JSON.parse(identity.stdout) as { principalId: string }).principalId;
    assert.ok(
      served.every((e) => e.detail.identity === principalId),
      "every token served through the session is dev-app's",
    );
    assert.ok(served[0]!.detail.session !== undefined);
  });

  it('CI: the workflow step runs examples/ci/deploy-step.sh under openmsi run and reads the secret with no stored credential', async () => {
    const step = workflowStep(readFileSync(join(repoRoot, 'examples', 'ci', 'github-actions.yml'), 'utf8'), 'read-secret');
    assert.match(step.run, /^openmsi run --identity dev-app -- bash examples\/ci\/deploy-step\.sh$/m);
    // As Actions runs a bash `run:` block: bash --noprofile --norc -eo pipefail, with the step's env.
    const run = await exec(['bash', '--noprofile', '--norc', '-eo', 'pipefail', '-c', step.run], { ...baseEnv, ...step.env });
    assert.equal(run.code, 0, `the step failed; stderr:\n${run.stderr}\nstdout:\n${run.stdout}`);
    assert.match(run.stdout, new RegExp(`^::add-mask::${SAMPLE}$`, 'm'));
    assert.match(run.stdout, /^read sample-secret \(32 characters\) from https:\/\/dev\.vault\.localhost:\d+\/ with no stored credential$/m);
    // Outside openmsi run the script refuses rather than falling back to anything stored.
    const bare = await exec(['bash', 'examples/ci/deploy-step.sh'], baseEnv);
    assert.notEqual(bare.code, 0);
    assert.match(bare.stderr, /IDENTITY_ENDPOINT: run this under openmsi run/);
  });

  it('container: the entrypoint, with exactly the environment docker-compose.yml gives the container, reads the secret from the host agent', async () => {
    const dir = join(repoRoot, 'examples', 'container');
    const compose = readFileSync(join(dir, 'docker-compose.yml'), 'utf8');
    assert.match(compose, /^ {4}network_mode: host$/m, 'the agent serves loopback peers only: the container shares the host network');
    const dockerfile = readFileSync(join(dir, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^ENTRYPOINT \["\/app\/entrypoint\.sh"\]$/m);
    assert.match(dockerfile, /^COPY app\.js entrypoint\.sh \.\/$/m);

    // The host shell's environment after the eval line, which compose interpolates from.
    const printed = await bash('openmsi dev env --shell dotenv');
    assert.equal(printed.code, 0, printed.stderr);
    const hostEnv = parseEnv(printed.stdout) as Record<string, string>;
    const mounts = new Map(
      composeList(compose, 'volumes').map((v) => {
        const [source, target] = interpolate(v, hostEnv).split(':');
        return [target!, source!] as const;
      }),
    );
    const containerEnv: Record<string, string> = {};
    for (const item of composeList(compose, 'environment')) {
      const eq = item.indexOf('=');
      const value = interpolate(item.slice(eq + 1), hostEnv);
      containerEnv[item.slice(0, eq)] = mounts.get(value) ?? value; // a container path: the host file it mounts
    }
    assert.deepEqual(Object.keys(containerEnv).sort(), [
      'AZURE_KEYVAULT_URL',
      'HTTPS_PROXY',
      'IDENTITY_ENDPOINT',
      'IDENTITY_HEADER',
      'NODE_EXTRA_CA_CERTS',
      'NO_PROXY',
    ]);
    assert.equal(containerEnv['NODE_EXTRA_CA_CERTS'], hostEnv['NODE_EXTRA_CA_CERTS']);
    // PATH stands in for the image's (node on it); HOME is what the node user has. Nothing else.
    const run = await exec([join(dir, 'entrypoint.sh')], { PATH: baseEnv.PATH!, HOME: home, ...containerEnv });
    assertPrints(run, SAMPLE, 'the container entrypoint');

    // Under openmsi run, compose passes the session's secret instead: the container gets dev-app only.
    const session = await bash(
      `${EVAL} && openmsi run --identity dev-app -- sh -c 'exec env -i PATH="$PATH" HOME="$HOME" IDENTITY_ENDPOINT="$IDENTITY_ENDPOINT" IDENTITY_HEADER="$IDENTITY_HEADER" AZURE_KEYVAULT_URL="$AZURE_KEYVAULT_URL" NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS" HTTPS_PROXY="$HTTPS_PROXY" NO_PROXY="$NO_PROXY" examples/container/entrypoint.sh'`,
    );
    assertPrints(session, SAMPLE, 'the container entrypoint under openmsi run');
  });

  it("seed 002: data sealed outside the vault with a key's public half is opened by an unchanged app (CryptographyClient + DefaultAzureCredential) under openmsi run, with no stored credential", async () => {
    const dir = mkdtempSync(join(root, 'sealed-'));
    const jwkFile = join(dir, 'app-data-key.jwk.json');
    const sealedFile = join(dir, 'orders.sealed.json');
    const started = new Date(Date.now() - 1000).toISOString();

    // 1. The operator publishes the key's public half (creating the key on first run).
    const published = await bash(`${EVAL} && node examples/decrypt-with-key/publish-key.js > ${jwkFile}`);
    assert.equal(published.code, 0, published.stderr);
    const jwk = JSON.parse(readFileSync(jwkFile, 'utf8')) as Record<string, string>;
    assert.deepEqual(Object.keys(jwk).sort(), ['e', 'kid', 'kty', 'n'], 'the public half only');
    assert.equal(jwk['kty'], 'RSA');
    assert.match(jwk['kid']!, /^https:\/\/dev\.vault\.localhost:\d+\/keys\/app-data-key\/[0-9a-f]{32}$/);
    assert.equal(Buffer.from(jwk['n']!, 'base64url').length, 256);
    const again = await bash(`${EVAL} && node examples/decrypt-with-key/publish-key.js`);
    assert.equal((JSON.parse(again.stdout) as { kid: string }).kid, jwk['kid'], 'publishing again reuses the key');

    // 2. Sealing needs nothing of the vault: PATH and HOME only, no endpoint, no CA, no proxy.
    const value = 'Server=db.internal;Password=sealed-not-stored';
    const sealing = await exec(['bash', '-c', `printf %s '${value}' | node examples/decrypt-with-key/seal.js ${jwkFile} > ${sealedFile}`], baseEnv);
    assert.equal(sealing.code, 0, sealing.stderr);
    const sealedText = readFileSync(sealedFile, 'utf8');
    assert.ok(!sealedText.includes('sealed-not-stored'));
    const sealed = JSON.parse(sealedText) as Record<string, string>;
    assert.deepEqual([sealed['kid'], sealed['alg'], sealed['enc']], [jwk['kid'], 'RSA-OAEP-256', 'A256GCM']);
    assert.equal(Buffer.from(sealed['wrappedKey']!, 'base64url').length, 256);

    // 3. The unchanged app opens it as dev-app, through the session's endpoint.
    assertPrints(
      await bash(`${EVAL} && openmsi run --identity dev-app -- node examples/decrypt-with-key/app.js ${sealedFile}`),
      value,
      'the app under openmsi run',
    );
    // The dev stack's machine-wide endpoint works as well: the same code, another identity.
    assertPrints(await bash(`${EVAL} && node examples/decrypt-with-key/app.js ${sealedFile}`), value, 'the app with the dev environment');
    const app = readFileSync(join(repoRoot, 'examples', 'decrypt-with-key', 'app.js'), 'utf8');
    assert.match(app, /new CryptographyClient\(sealed\.kid, new DefaultAzureCredential\(\)\)/);
    assert.doesNotMatch(app, /ClientSecretCredential|AZURE_CLIENT_SECRET|clientSecret|process\.env/, 'the app reads no credential and no setting');
    // A tampered envelope is refused (the GCM tag covers the data).
    const tamperedFile = join(dir, 'tampered.sealed.json');
    const flipped = Buffer.from(sealed['ciphertext']!, 'base64url');
    flipped[0]! ^= 1;
    writeFileSync(tamperedFile, JSON.stringify({ ...sealed, ciphertext: flipped.toString('base64url') }));
    const tampered = await bash(`${EVAL} && openmsi run --identity dev-app -- node examples/decrypt-with-key/app.js ${tamperedFile}`);
    assert.notEqual(tampered.code, 0);
    assert.ok(!tampered.stdout.includes('sealed-not-stored'));
    if (inNamespace) {
      // No managed identity, nothing stored: the same app cannot open it (where nothing can leave loopback).
      const bare = await exec(['node', 'examples/decrypt-with-key/app.js', sealedFile], baseEnv);
      assert.notEqual(bare.code, 0, bare.stdout);
      assert.ok(!bare.stdout.includes('sealed-not-stored'));
    }

    // The vault audited the unwraps under dev-app's principal (the audit is uploaded about a second later).
    const identity = await bash(`${EVAL} && openmsi identity show -g dev -n dev-app`);
    assert.equal(identity.code, 0, identity.stderr);
    const principalId = (JSON.parse(identity.stdout) as { principalId: string }).principalId;
    const deadline = Date.now() + 20_000;
    let actors: string[] = [];
    while (Date.now() < deadline) {
      const list = await bash(`${EVAL} && openmsi audit list --action vault.keys.unwrapKey --since ${started}`);
      assert.equal(list.code, 0, list.stderr);
      actors = (JSON.parse(list.stdout) as { actor: string; outcome: string }[]).filter((e) => e.outcome === 'success').map((e) => e.actor);
      if (actors.includes(principalId)) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.ok(actors.includes(principalId), `no vault.keys.unwrapKey record for dev-app: ${JSON.stringify(actors)}`);
  });

  it('examples/README.md names every example with the command that runs it', () => {
    const readme = readFileSync(join(repoRoot, 'examples', 'README.md'), 'utf8');
    for (const line of [
      `${EVAL} && node examples/node/read-secret.js`,
      `${EVAL} && python3 examples/python/read_secret.py`,
      `${EVAL} && bash examples/curl/read-secret.sh`,
      'openmsi run --identity dev-app -- bash examples/ci/deploy-step.sh',
      'docker compose -f examples/container/docker-compose.yml up --build',
      'openmsi run --identity dev-app -- node examples/decrypt-with-key/app.js',
    ]) {
      assert.ok(readme.includes(line), `examples/README.md lacks: ${line}`);
    }
  });
});
