/**
 * `openmsi run --identity NAME-OR-ID [--identity ...] [--data-dir D] -- CMD ARGS`: runs CMD with its own
 * managed-identity endpoint and secret (App Service variables, which every Azure SDK reads), granting only
 * the named identities. The secret lives in CMD's environment only (never in argv, never in a file); the
 * session is held open on a control connection to the agent for as long as CMD runs, and the agent revokes
 * it the moment that connection closes: when CMD exits, or when this process dies, even by kill -9.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { constants } from 'node:os';
import type { Command } from 'commander';
import { CONTROL_SESSIONS_PATH, readControlSecret, type SessionGrant } from '../../agent/control.js';
import { agentFiles, type HostCredentialRecord } from '../../agent/host-credential.js';
import { agentDataDir, DEFAULTS, ENV, isVaultDomain, loadInstallationConfig, resolveDataDir } from '../../shared/config.js';
import { dataDirLayout } from '../../shared/data-dir.js';
import { readRunningAgent } from '../../shared/running-agent.js';
import { formatUnresolved, readEnvFile, resolveReferences, secretFetcher, type VaultLocation } from '../references.js';
import { collect } from './shared.js';

/** Signals passed on to CMD (a terminal's Ctrl-C reaches CMD directly too, as it is in the same process group). */
const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Variables removed from CMD's environment: with them set, clients would pick another managed-identity
 * source (Azure Arc when IMDS_ENDPOINT is set, Service Fabric with IDENTITY_SERVER_THUMBPRINT).
 */
const CONFLICTING_VARIABLES = ['IMDS_ENDPOINT', 'IDENTITY_SERVER_THUMBPRINT', 'IDENTITY_API_VERSION'];

/** `--strict`'s exit status when a Key Vault reference did not resolve: sysexits' EX_CONFIG. */
export const UNRESOLVED_REFERENCE_STATUS = 78;

export interface OpenSession {
  grant: SessionGrant;
  /** Closing this ends the session. */
  connection: ClientRequest;
  /** Resolves when the agent's side of the stream ends (the agent stopped or ended the session). */
  ended: Promise<void>;
}

/** Opens a session on the agent at `agentUrl`: resolves once the grant (the stream's first line) has arrived. */
export function openSession(agentUrl: string, controlSecret: string, identities: readonly string[]): Promise<OpenSession> {
  const body = JSON.stringify({ identities });
  const url = new URL(CONTROL_SESSIONS_PATH, agentUrl);
  return new Promise<OpenSession>((resolve, reject) => {
    const connection = request(url, {
      method: 'POST',
      agent: false,
      headers: { Authorization: `Bearer ${controlSecret}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    });
    connection.setTimeout(10_000, () => connection.destroy(new Error('the agent did not answer within 10 s')));
    connection.on('error', (err) => reject(new Error(`cannot reach the agent at ${agentUrl}: ${err.message}`)));
    connection.on('response', (res: IncomingMessage) => {
      res.setEncoding('utf8');
      let text = '';
      if (res.statusCode !== 201) {
        res.on('data', (chunk: string) => (text += chunk.slice(0, 4096)));
        res.on('end', () => {
          let description = text;
          let error: string | undefined;
          try {
            const parsed = JSON.parse(text) as { error?: string; error_description?: string };
            description = parsed.error_description ?? text;
            error = parsed.error;
          } catch {
            // not JSON: show it as it is
          }
          // A usage error, not the agent's failure: say which --identity is wrong and what the host has.
          if (res.statusCode === 400 && error === 'identity_not_found') reject(new Error(`--identity: ${description}`));
          else reject(new Error(`the agent refused the session (${String(res.statusCode)}): ${description}`));
        });
        return;
      }
      let ended!: () => void;
      const endedPromise = new Promise<void>((r) => (ended = r));
      res.on('close', () => ended());
      res.on('error', () => ended());
      const onData = (chunk: string): void => {
        text += chunk;
        const nl = text.indexOf('\n');
        if (nl < 0) {
          if (text.length > 65536) connection.destroy(new Error('the agent sent no session'));
          return;
        }
        res.off('data', onData);
        res.resume(); // heartbeats: read and ignore
        let grant: SessionGrant;
        try {
          grant = JSON.parse(text.slice(0, nl)) as SessionGrant;
        } catch {
          connection.destroy();
          reject(new Error('the agent answered with something that is not a session'));
          return;
        }
        if (typeof grant.secret !== 'string' || typeof grant.id !== 'string') {
          connection.destroy();
          reject(new Error('the agent answered with something that is not a session'));
          return;
        }
        connection.setTimeout(0);
        resolve({ grant, connection, ended: endedPromise });
      };
      res.on('data', onData);
    });
    connection.end(body);
  });
}

/** The exit status a shell would report for a child that exited with `code` or was killed by `signal`. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal !== null) return 128 + (constants.signals[signal] ?? 0);
  return code ?? 1;
}

/**
 * Where the agent's authority serves its vaults: hosts `{name}.{vaultDomain}` on the authority's address and
 * port (the agent's host credential names both), trusting the CA the agent enrolled with besides the system
 * roots. Undefined when the agent's data dir holds no readable host credential.
 */
export function vaultLocation(agentDir: string, vaultDomain: string): VaultLocation | undefined {
  let record: Partial<HostCredentialRecord>;
  try {
    record = JSON.parse(readFileSync(agentFiles(agentDir).credential, 'utf8')) as Partial<HostCredentialRecord>;
  } catch {
    return undefined; // no (readable) credential: references to openmsi vaults then say so, and CMD still runs
  }
  if (typeof record.authorityUrl !== 'string' || !URL.canParse(record.authorityUrl)) return undefined;
  const authority = new URL(record.authorityUrl);
  return {
    vaultDomain,
    connectTo: { host: authority.hostname.replace(/^\[(.*)\]$/, '$1'), port: authority.port === '' ? 443 : Number(authority.port) },
    ...(typeof record.caFile === 'string' && existsSync(record.caFile) ? { caPem: readFileSync(record.caFile, 'utf8') } : {}),
  };
}

/** The vault domain of the CLI's data dir (`$OPENMSI_DATA_DIR` or ~/.openmsi, as `openmsi dev` makes it) when it has a config, else the default. */
export function configuredVaultDomain(): string {
  const dataDir = resolveDataDir();
  if (!existsSync(dataDirLayout(dataDir).config)) return DEFAULTS.vaultDomain;
  try {
    return loadInstallationConfig(dataDir).vaultDomain;
  } catch {
    return DEFAULTS.vaultDomain; // not ours to fix here; `--vault-domain` overrides it
  }
}

export interface RunOptions {
  dataDir: string;
  identities: string[];
  command: string[];
  /** dotenv files whose variables are added to CMD's environment (later files win over earlier ones and over the inherited environment). */
  envFiles?: string[];
  /** Exit {@link UNRESOLVED_REFERENCE_STATUS} without starting CMD when a Key Vault reference does not resolve. */
  strict?: boolean;
  /** The authority's vault domain, when the CLI's data dir cannot tell it. */
  vaultDomain?: string;
}

/** Opens the session, resolves Key Vault references, runs CMD, and resolves with CMD's exit status once CMD has exited. */
export async function runWithIdentity(options: RunOptions): Promise<number> {
  const [file, ...args] = options.command;
  if (file === undefined) throw new Error('no command to run: openmsi run --identity NAME -- CMD ARGS');
  if (options.vaultDomain !== undefined && !isVaultDomain(options.vaultDomain))
    throw new Error(
      `--vault-domain must be a lower-case DNS name of at least two labels, such as vault.localhost (got ${JSON.stringify(options.vaultDomain)})`,
    );
  // Files first: a typo in a file name fails before a session is opened.
  const fromFiles = Object.assign({}, ...(options.envFiles ?? []).map(readEnvFile)) as Record<string, string>;
  const agent = readRunningAgent(options.dataDir);
  if (agent === undefined)
    throw new Error(`no agent is running from ${options.dataDir}: start \`openmsi agent\` (or pass --data-dir / set ${ENV.agentDataDir})`);
  const session = await openSession(agent.url, readControlSecret(options.dataDir), options.identities);
  const endpoint = new URL('/msi/token', agent.url).toString();
  const inherited: NodeJS.ProcessEnv = { ...process.env, ...fromFiles };
  for (const name of CONFLICTING_VARIABLES) delete inherited[name];
  const vaultDomain = options.vaultDomain ?? configuredVaultDomain();
  const resolveSecret = secretFetcher({
    identityEndpoint: endpoint,
    identityHeader: session.grant.secret,
    vaults: vaultLocation(options.dataDir, vaultDomain),
  });
  const { env, unresolved } = await resolveReferences(inherited, resolveSecret, { vaultDomain });
  for (const problem of unresolved) process.stderr.write(`${formatUnresolved(problem)}\n`);
  if (options.strict === true && unresolved.length > 0) {
    process.stderr.write(`openmsi run: ${String(unresolved.length)} Key Vault reference(s) did not resolve; --strict: ${file} not started\n`);
    session.connection.destroy();
    return UNRESOLVED_REFERENCE_STATUS;
  }
  Object.assign(env, { IDENTITY_ENDPOINT: endpoint, IDENTITY_HEADER: session.grant.secret, MSI_ENDPOINT: endpoint, MSI_SECRET: session.grant.secret });

  return new Promise<number>((resolve) => {
    const child = spawn(file, args, { stdio: 'inherit', env });
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    let childExited = false;
    const finish = (status: number): void => {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
      session.connection.destroy(); // ends the session at the agent
      resolve(status);
    };
    void session.ended.then(() => {
      if (!childExited) process.stderr.write(`openmsi run: the agent ended the session (did it stop?); ${file} gets no more tokens with it\n`);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      childExited = true;
      process.stderr.write(`openmsi run: cannot run ${file}: ${err.message}\n`);
      finish(err.code === 'ENOENT' ? 127 : 126);
    });
    child.on('exit', (code, signal) => {
      childExited = true;
      finish(exitStatus(code, signal));
    });
  });
}

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run a command with its own managed-identity endpoint whose secret grants only the named identities, revoked when it exits')
    .requiredOption(
      '--identity <name-or-id>',
      "an identity the command may get tokens for (name, client id, object id, resource id, or '[system]'; repeatable)",
      collect,
    )
    .option('--data-dir <dir>', `the agent's data dir (default: $${ENV.agentDataDir} or ~/.openmsi/agent)`)
    .option('--env-file <file>', "add the KEY=VALUE lines of a dotenv file to the command's environment (repeatable; later files win)", collect)
    .option('--strict', `exit ${String(UNRESOLVED_REFERENCE_STATUS)} without running the command when a Key Vault reference does not resolve`)
    .option('--vault-domain <domain>', `the authority's vault domain (default: config.json of $${ENV.dataDir} or ~/.openmsi, else ${DEFAULTS.vaultDomain})`)
    .argument('<command...>', 'the command and its arguments (after --)')
    .addHelpText(
      'after',
      `
CMD gets IDENTITY_ENDPOINT/IDENTITY_HEADER and MSI_ENDPOINT/MSI_SECRET for the agent's App Service surface;
the secret is in its environment only and is revoked when CMD exits (or this process is killed).

Before CMD starts, every variable whose whole value is a Key Vault reference, as on App Service,
  @Microsoft.KeyVault(SecretUri=https://VAULT.vault.azure.net/secrets/NAME[/VERSION])
  @Microsoft.KeyVault(VaultName=VAULT;SecretName=NAME[;SecretVersion=VERSION])
is replaced by the secret, read with the first --identity. One that does not resolve stays as it is
and is named on stderr: openmsi: KEY: <status> <details>.

Examples:
  openmsi run --identity app-id -- node server.js
  openmsi run --identity app-id --env-file .env -- node server.js
  openmsi run --identity app-id --identity '[system]' -- az account get-access-token --resource https://vault.azure.net`,
    )
    .action(
      async (command: string[], opts: { identity: string[]; dataDir?: string; envFile?: string[]; strict?: boolean; vaultDomain?: string }, cmd: Command) => {
        // `--data-dir` after `run` is also the root option's name; either way, here it names the agent's data dir.
        const dataDir = agentDataDir(opts.dataDir ?? cmd.optsWithGlobals<{ dataDir?: string }>().dataDir);
        const status = await runWithIdentity({
          dataDir,
          identities: opts.identity,
          command,
          ...(opts.envFile === undefined ? {} : { envFiles: opts.envFile }),
          ...(opts.strict === undefined ? {} : { strict: opts.strict }),
          ...(opts.vaultDomain === undefined ? {} : { vaultDomain: opts.vaultDomain }),
        });
        process.exit(status);
      },
    );
}
