import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { devEnvironment, seedAzConfigDir, writeAzCloudConfig } from '../../dev/environment.js';
import { defaultShell, ENV_SHELLS, formatEnvironment, type EnvShell } from '../../dev/env.js';
import { applyHostsEntries, DEFAULT_HOSTS_PATH, removeHostsEntries } from '../../dev/hosts-file.js';
import { DEV_NAMES, DEV_PORTS, devLayout, readRunningDev } from '../../dev/layout.js';
import { checkPort, loadInstallationConfig, readEnvironment, resolveDataDir } from '../../shared/config.js';
import { readRunningAuthority } from '../../shared/running-authority.js';
import { vaultUri } from '../../vault/contracts.js';
import { globalOptions } from '../api-client.js';
import { DevTrustError, installDevCa, uninstallDevCa } from '../../dev/trust.js';
import { passwdEntry } from '../../dev/passwd.js';
import { lazy } from './lazy.js';
import { confirm } from './shared.js';

/** `~/x` for paths under the home directory, for short banners. */
function tilde(path: string): string {
  const home = homedir();
  return path.startsWith(`${home}/`) ? `~${path.slice(home.length)}` : path;
}

/** The dev stack's ports and vault: the running one's, else what the next start will use. */
function endpointsOf(dataDir: string) {
  const running = readRunningDev(dataDir);
  if (running !== undefined) return running;
  const config = loadInstallationConfig(dataDir);
  return {
    agentPort: DEV_PORTS.agent,
    proxyPort: DEV_PORTS.proxy as number | null,
    vaultUri: vaultUri(DEV_NAMES.vault, config.vaultDomain, config.port),
    url: `https://localhost:${String(config.port)}`,
  };
}

/**
 * The az commands that point Debian's az 2.45 at the dev stack (`openmsi dev az-cloud`). The flags register
 * what they can; `az cloud update --cloud-config @file` (which adds to the registered cloud, keeping the rest)
 * adds the Microsoft Graph endpoint, which has no flag, so `az ad ...` reaches the server's `/v1.0` routes.
 */
export function azCloudCommands(serverUrl: string, vaultDomain: string, port: number, cloudConfigPath: string): string[][] {
  const origin = new URL(serverUrl).origin;
  return [
    [
      'cloud',
      'register',
      '-n',
      DEV_NAMES.azCloud,
      '--endpoint-resource-manager',
      `${origin}/`,
      // `/adfs`: az 2.45 then builds MSAL's authority as {origin}/adfs whatever tenant it is asked for, and MSAL
      // skips instance discovery (a call to login.microsoftonline.com) for ADFS authorities; the authority
      // serves the `adfs` alias. Needed by `az login --service-principal`; `--identity` never uses it.
      '--endpoint-active-directory',
      `${origin}/adfs`,
      '--endpoint-active-directory-resource-id',
      'https://management.core.windows.net/',
      '--endpoint-active-directory-graph-resource-id',
      'https://graph.microsoft.com/',
      '--suffix-keyvault-dns',
      `.${vaultDomain}:${String(port)}`,
    ],
    ['cloud', 'update', '-n', DEV_NAMES.azCloud, '--cloud-config', `@${cloudConfigPath}`],
    ['cloud', 'set', '-n', DEV_NAMES.azCloud],
    ['login', '--identity'],
  ];
}

/** Why `openmsi dev env` prints nothing: no `openmsi dev` is running on this data dir. */
function notRunningMessage(dataDir: string): string {
  const server = readRunningAuthority(dataDir);
  const holder =
    server === undefined ? '' : ` (an openmsi server runs there, pid ${String(server.pid)}, but not openmsi dev: it has no dev agent, vault or proxy)`;
  return (
    `openmsi dev is not running on ${dataDir}${holder}: start it in another terminal (\`openmsi dev\`, or \`npm start\` in the openmsi checkout), ` +
    `then run this again; for another data dir pass --data-dir or set OPENMSI_DATA_DIR`
  );
}

/** What each entry of a dev data dir holds, for `openmsi dev reset`. */
const DATA_DIR_ENTRIES: Readonly<Record<string, string>> = {
  'config.json': 'the installation settings (tenant, subscription, port)',
  'master.key': 'the master key that encrypts the keys and secrets below',
  'admin.json': 'the admin credential',
  ca: 'the dev CA (a copy installed with `openmsi dev trust` stays trusted until `openmsi dev trust --uninstall`)',
  tls: "the server's TLS certificate and key",
  store: 'the store: tenant, identities, role assignments, vault dev and every secret in it, signing keys, audit trail',
  agent: "this machine's agent: host credential and agent secrets",
  dev: "the combined CA bundle and the az config dir of `openmsi dev env`, and your dev user's password (user.json)",
  run: 'records of running processes',
};

/** The lines `openmsi dev reset` prints about what it deletes. */
export function describeDataDirContents(dataDir: string): string[] {
  return readdirSync(dataDir)
    .sort()
    .map((name) => `  ${name.padEnd(12)} ${DATA_DIR_ENTRIES[name] ?? 'not made by openmsi'}`);
}

/** The home directory of `user` from the passwd database, or undefined. */
function homeOf(user: string): string | undefined {
  const home = passwdEntry(user)?.[5];
  return home === undefined || home === '' ? undefined : home;
}

/**
 * The data dir for commands run with sudo (`sudo openmsi dev trust|hosts`): with no --data-dir and no
 * OPENMSI_DATA_DIR, the invoking user's (SUDO_USER) `~/.openmsi`, not root's; otherwise the usual one.
 * Says on stderr which one it chose, and refuses when that user's home cannot be found.
 */
export function dataDirUnderSudo(
  explicit: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  lookupHome: (user: string) => string | undefined = homeOf,
  currentUser: string = userInfo().username,
): { dataDir: string; note?: string } {
  const sudoUser = env['SUDO_USER'];
  if (explicit !== undefined || readEnvironment(env).dataDir !== undefined || sudoUser === undefined || sudoUser === '' || sudoUser === currentUser) {
    return { dataDir: resolveDataDir(explicit, env) };
  }
  const home = lookupHome(sudoUser);
  if (home === undefined) {
    throw new Error(
      `run with sudo by ${sudoUser}, whose home directory is not in the passwd database: pass the data dir, e.g. --data-dir ~${sudoUser}/.openmsi`,
    );
  }
  const dataDir = join(home, '.openmsi');
  return { dataDir, note: `using ${dataDir}, the data dir of ${sudoUser} (who ran sudo); pass --data-dir for another` };
}

/** {@link dataDirUnderSudo} for a command, with its note on stderr. */
function sudoAwareDataDir(cmd: Command): string {
  const { dataDir, note } = dataDirUnderSudo(cmd.optsWithGlobals<{ dataDir?: string }>().dataDir);
  if (note !== undefined) process.stderr.write(`${note}\n`);
  return dataDir;
}

function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** `openmsi dev` and its helpers: env, trust, hosts, az-cloud, reset. */
export function registerDevCommands(program: Command): void {
  const dev = program
    .command('dev')
    .description(
      "Run everything a developer machine needs in one process: server (authority, management API, vault), this machine's agent and a loopback proxy for vault hosts; made on first run, reused after.",
    )
    .option('--port <port>', `server port (first run: default ${String(DEV_PORTS.server)}; later: the configured one)`, (v) => checkPort(Number(v), '--port'))
    .option('--agent-port <port>', `managed-identity agent port (default ${String(DEV_PORTS.agent)})`, (v) => checkPort(Number(v), '--agent-port'))
    .option('--proxy-port <port>', `loopback proxy port for vault hosts (default ${String(DEV_PORTS.proxy)})`, (v) => checkPort(Number(v), '--proxy-port'))
    .option('--no-proxy', 'run without the proxy (vault hosts must then resolve: see `openmsi dev hosts`)')
    .addHelpText(
      'after',
      `
Examples:
  openmsi dev                                   # first run creates ~/.openmsi; Ctrl-C stops
  eval "$(openmsi dev env)"                     # in another shell: then unchanged Azure apps work
  openmsi keyvault secret set --vault-name dev -n db-password --value s3cret
  openmsi run --identity dev-app -- node app.js
  openmsi dev az-cloud --apply                  # az login --identity against the dev stack
  az login -u "$(openmsi dev user)" -p "$(openmsi dev user --password)"   # then az as yourself
  openmsi dev reset                             # start over`,
    )
    .action(async (opts: { port?: number; agentPort?: number; proxyPort?: number; proxy: boolean }, cmd: Command) => {
      const { dataDir } = globalOptions(cmd);
      const started = Date.now();
      const settings = readEnvironment();
      const [{ createLogger, defaultLogFormat }, { startDev }] = await Promise.all([lazy.logger(), lazy.dev()]);
      const logger = createLogger({ format: settings.logFormat ?? defaultLogFormat(), level: settings.logLevel ?? 'warn' });
      const stack = await startDev({
        dataDir,
        logger,
        ...(opts.port === undefined ? {} : { port: opts.port }),
        ...(opts.agentPort === undefined ? {} : { agentPort: opts.agentPort }),
        proxyPort: opts.proxy ? (opts.proxyPort ?? DEV_PORTS.proxy) : null,
        progress: (message) => process.stderr.write(`… ${message}\n`),
      });
      const d = stack.directory;
      const lines = [
        `openmsi dev ready in ${String(Date.now() - started)} ms${stack.firstRun ? ' (first run)' : ''} — data dir ${tilde(dataDir)}`,
        `  server    ${stack.serverUrl}  (tenant ${stack.tenantId})`,
        `  vault     ${stack.vaultUri}  (secret ${DEV_NAMES.sampleSecret})`,
        `  agent     http://127.0.0.1:${String(stack.agent.port)}  host ${d.hostName}: system-assigned ${d.systemPrincipalId}; ${DEV_NAMES.userAssignedIdentity} (client id ${d.app.clientId})`,
        stack.proxy === undefined
          ? '  proxy     off (vault hosts must resolve: openmsi dev hosts --apply)'
          : `  proxy     ${stack.proxy.url}  (vault hosts → this server; all else ${stack.proxyUpstream === undefined ? 'passes through' : `goes on through your proxy ${stack.proxyUpstream}`})`,
        `  you       ${stack.user.userPrincipalName}  (Owner on subscription ${stack.subscriptionId}, Key Vault Administrator on vault ${DEV_NAMES.vault})`,
        '',
        'In another shell:',
        '  eval "$(npx openmsi dev env)"       # or openmsi …, once it is on PATH (npm link)',
        '  node examples/node/read-secret.js',
        '',
        'az as yourself (in that shell, after npx openmsi dev az-cloud --apply once):',
        `  az login -u ${stack.user.userPrincipalName} -p "$(npx openmsi dev user --password)"`,
        '  az login                            # or in the browser',
        '',
        `Next: openmsi keyvault secret set --vault-name ${DEV_NAMES.vault} -n NAME --value VALUE · openmsi run --identity ${DEV_NAMES.userAssignedIdentity} -- CMD · openmsi dev az-cloud --apply · openmsi dev trust`,
      ];
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        process.stderr.write(`\n${signal}: stopping openmsi dev\n`);
        stack.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  dev
    .command('env')
    .description(
      'Print what makes unchanged applications in this shell use the running dev stack: eval "$(openmsi dev env)" (exits 1, printing nothing, when no openmsi dev runs on the data dir)',
    )
    .addOption(new Option('--shell <shell>', 'output syntax (default: from $SHELL)').choices([...ENV_SHELLS]))
    .action((opts: { shell?: EnvShell }, cmd: Command) => {
      const { dataDir } = globalOptions(cmd);
      // Only what a running `openmsi dev` recorded: defaults would point the shell at ports nothing (or
      // something else) listens on. The refusal goes to stderr, so `eval "$(openmsi dev env)"` evaluates nothing.
      const running = readRunningDev(dataDir);
      if (running === undefined) throw new Error(notRunningMessage(dataDir));
      process.stdout.write(`${formatEnvironment(devEnvironment(dataDir, running), opts.shell ?? defaultShell())}\n`);
    });

  dev
    .command('user')
    .description(
      'Print your dev user (the one `openmsi dev` made for you: Owner on the dev subscription, Key Vault Administrator on vault dev); --password prints only its password.',
    )
    .option('--password', 'print only the password (for az login -u UPN -p "$(openmsi dev user --password)")')
    .action(async (opts: { password?: boolean }, cmd: Command) => {
      const { dataDir } = globalOptions(cmd);
      const { readDevUserFile } = await lazy.devUser();
      const file = readDevUserFile(dataDir);
      if (file === undefined) throw new Error(`${dataDir} has no dev user yet: run \`openmsi dev\` (it makes one on its next start)`);
      process.stdout.write(opts.password === true ? `${file.password}\n` : `${file.userPrincipalName}\n`);
    });

  dev
    .command('trust')
    .description("Install the dev CA into this machine's trust store (needs root), and say exactly what changed.")
    .option('--uninstall', 'remove it instead')
    .option('--dry-run', 'only say what would change')
    .action((opts: { uninstall?: boolean; dryRun?: boolean }, cmd: Command) => {
      const dataDir = sudoAwareDataDir(cmd);
      const caFile = devLayout(dataDir).caCert;
      if (!existsSync(caFile)) throw new Error(`no dev CA at ${caFile}: run \`openmsi dev\` first`);
      const caPem = readFileSync(caFile, 'utf8');
      try {
        const options = { name: 'openmsi-dev', caFile, caPem, ...(opts.dryRun === true ? { dryRun: true } : {}) };
        const result = opts.uninstall === true ? uninstallDevCa(options) : installDevCa(options);
        const verb = result.dryRun ? 'would' : 'did';
        const out = [
          `${result.changed ? (result.dryRun ? 'Would change' : 'Changed') : 'Nothing to change in'} the ${result.platform} trust store:`,
          ...result.filesWritten.map((f) => `  ${verb} write ${f}`),
          ...result.filesRemoved.map((f) => `  ${verb} remove ${f}`),
          ...result.commands.map((c) => `  ${verb} run ${c.map(shellQuote).join(' ')}`),
        ];
        process.stdout.write(`${out.join('\n')}\n`);
      } catch (err) {
        if (err instanceof DevTrustError && err.code === 'needs-root') {
          throw new Error(
            `${err.message}\nRun it with sudo (sudo openmsi dev trust), or by hand:\n${((err as DevTrustError & { manualSteps?: string[] }).manualSteps ?? []).map((s) => `  ${s}`).join('\n')}`,
            { cause: err },
          );
        }
        throw err;
      }
    });

  dev
    .command('hosts')
    .description('Add (or remove) /etc/hosts lines mapping the vault hosts to 127.0.0.1, for when you prefer them to the proxy (needs root).')
    .option('--apply', 'write the entries')
    .option('--remove', 'remove the entries')
    .option('--file <path>', 'the hosts file', DEFAULT_HOSTS_PATH)
    .option('--vault <name...>', 'vault names (default: dev)')
    .action((opts: { apply?: boolean; remove?: boolean; file: string; vault?: string[] }, cmd: Command) => {
      const dataDir = sudoAwareDataDir(cmd);
      const config = loadInstallationConfig(dataDir);
      const names = (opts.vault ?? [DEV_NAMES.vault]).map((v) => `${v.toLowerCase()}.${config.vaultDomain}`);
      if (opts.apply === true && opts.remove === true) throw new Error('pass --apply or --remove, not both');
      if (opts.remove === true) {
        const plan = removeHostsEntries(opts.file);
        process.stdout.write(plan.changed ? `removed the openmsi dev block from ${opts.file}\n` : `${opts.file} has no openmsi dev block\n`);
        return;
      }
      if (opts.apply === true) {
        const plan = applyHostsEntries(opts.file, names);
        process.stdout.write(
          plan.changed ? `wrote to ${opts.file}:\n${names.map((n) => `  127.0.0.1 ${n}`).join('\n')}\n` : `${opts.file} already maps ${names.join(', ')}\n`,
        );
        return;
      }
      process.stdout.write(`${names.map((n) => `127.0.0.1 ${n}`).join('\n')}\n# add these lines to ${opts.file}, or run: sudo openmsi dev hosts --apply\n`);
    });

  dev
    .command('az-cloud')
    .description('Print (or --apply) the az commands that point Debian\'s az 2.45 at the dev stack, with `eval "$(openmsi dev env)"` first.')
    .option('--apply', 'run them (az cloud register/update/set, az login --identity) with the dev environment')
    .option('--az <path>', 'the az executable', 'az')
    .action((opts: { apply?: boolean; az: string }, cmd: Command) => {
      const { dataDir } = globalOptions(cmd);
      const config = loadInstallationConfig(dataDir);
      const endpoints = endpointsOf(dataDir);
      const server = readRunningAuthority(dataDir)?.url ?? endpoints.url;
      // Written in both modes: the printed `--cloud-config @file` names it.
      const cloudConfig = writeAzCloudConfig(dataDir, server);
      const commands = azCloudCommands(server, config.vaultDomain, Number(new URL(server).port || 443), cloudConfig);
      if (opts.apply !== true) {
        process.stdout.write(`eval "$(openmsi dev env)"\n${commands.map((c) => ['az', ...c].map(shellQuote).join(' ')).join('\n')}\n`);
        return;
      }
      seedAzConfigDir(dataDir);
      const env = { ...process.env, ...Object.fromEntries(devEnvironment(dataDir, endpoints)) };
      const registered = (() => {
        try {
          execFileSync(opts.az, ['cloud', 'show', '-n', DEV_NAMES.azCloud], { env, stdio: 'ignore' });
          return true;
        } catch {
          return false;
        }
      })();
      for (const args of commands) {
        const effective = registered && args[1] === 'register' ? ['cloud', 'update', ...args.slice(2)] : args;
        process.stderr.write(`$ az ${effective.map(shellQuote).join(' ')}\n`);
        execFileSync(opts.az, effective, { env, stdio: ['ignore', 'inherit', 'inherit'] });
      }
    });

  dev
    .command('reset')
    .description('Delete the dev data dir (identities, vault, secrets, keys, CA), naming it and what it holds: the next `openmsi dev` starts fresh.')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (opts: { yes?: boolean }, cmd: Command) => {
      const { dataDir } = globalOptions(cmd);
      const running = readRunningDev(dataDir) ?? readRunningAuthority(dataDir);
      if (running !== undefined) throw new Error(`${dataDir} is in use (pid ${String(running.pid)}): stop it before resetting`);
      if (!existsSync(dataDir)) {
        process.stdout.write(`${dataDir} does not exist: nothing to reset\n`);
        return;
      }
      const contents = describeDataDirContents(dataDir);
      const what = `${dataDir} and everything in it:\n${contents.length === 0 ? '  (it is empty)' : contents.join('\n')}`;
      if (opts.yes !== true) {
        process.stderr.write(`openmsi dev reset deletes ${what}\nThe next \`openmsi dev\` starts fresh: new tenant, identities, vault and CA.\n`);
        if (!(await confirm(`delete ${dataDir}`, '--yes'))) return;
      }
      rmSync(dataDir, { recursive: true, force: true });
      process.stdout.write(`deleted ${what}\n`);
    });
}
