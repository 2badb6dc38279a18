/**
 * `openmsi agent` (run the per-host managed-identity endpoint) and `openmsi agent env` (print the
 * variables local workloads need).
 *
 * `--data-dir` here names the AGENT's data dir (default $OPENMSI_AGENT_DATA_DIR, else ~/.openmsi/agent),
 * never the authority's: commander hands the root program's `--data-dir` every occurrence of the flag, in
 * any position, so for `openmsi agent …` whichever `--data-dir` is given is the agent's, and
 * $OPENMSI_DATA_DIR is not consulted.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseTokenFileSpec } from '../../agent/federation/token-files.js';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { AGENT_DEFAULTS, METRICS_DEFAULTS, agentDataDir, checkPort, readEnvironment } from '../../shared/config.js';
import { lazy } from './lazy.js';
import { collect } from './shared.js';
import { agentFiles } from '../../agent/host-credential.js';
import { agentEnvironment } from '../../agent/environment.js';
import { ENV_SHELLS, formatEnvironment, type EnvShell } from '../../dev/env.js';

function agentDataDirOf(cmd: Command): string {
  return agentDataDir(cmd.optsWithGlobals<{ dataDir?: string }>().dataDir);
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError('must be a port number from 0 to 65535');
  return checkPort(n, '--port');
}

/** `--authority`, repeatable: each an http(s) URL, kept in the order given. */
function collectAuthority(value: string, previous: string[]): string[] {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`not a URL: ${value}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new InvalidArgumentError(`must be an https URL: ${value}`);
  return [...previous, value];
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

export function registerAgentCommands(program: Command): void {
  const agent = program
    .command('agent')
    .description('Run the managed-identity agent for this host: IMDS, App Service and Cloud Shell endpoints on 127.0.0.1')
    .option('--join-token <token>', 'enrol this host on first start (from `openmsi host join-token create`)')
    .option(
      '--join-token-file <path>',
      'a file holding a join token (e.g. a projected secret): enrols on first start like --join-token, and again, without a restart, when the authority refuses this host and the file holds a new token',
    )
    .option(
      '--authority <url>',
      'the authority URL (https); needed on first start, then saved. Repeatable: replicas of one installation, in order of preference (the agent fails over on connection errors and 5xx and goes back to the first when it is ready again)',
      collectAuthority,
      [],
    )
    .option('--ca-file <pem>', "the authority's CA certificate (PEM); saved at enrolment")
    .option('--data-dir <dir>', "the agent's data dir (default: $OPENMSI_AGENT_DATA_DIR or ~/.openmsi/agent)")
    .option('--port <port>', `port on 127.0.0.1 (default ${String(AGENT_DEFAULTS.port)})`, parsePort)
    .option('--arc', 'also serve the Azure Arc challenge (needs root: it writes into /var/opt/azcmagent/tokens)')
    .option('--no-imds', 'turn off the header-only machine-wide surfaces (IMDS, Cloud Shell, Arc)')
    .option('--no-app-service', 'refuse the machine-wide App Service secret (only `openmsi run` session secrets work)')
    .option('--poll-interval <seconds>', `how often the host's identities are re-read (default ${String(AGENT_DEFAULTS.identityPollMs / 1000)})`, parsePositive)
    .option(
      '--metrics-port <port>',
      'serve Prometheus metrics at http://<metrics host>:<port>/metrics (plain HTTP, its own listener; off unless given)',
      parsePort,
    )
    .option('--metrics-host <address>', `address of the metrics listener (default ${METRICS_DEFAULTS.host}; needs --metrics-port)`)
    .option('--rate-limit <perSecond>', `tokens per second per identity (default ${String(AGENT_DEFAULTS.rateLimitPerSecond)})`, parsePositive)
    .option('--upstream-ca-file <pem>', "outbound federation: a CA (PEM) to trust for upstream Entra token endpoints, besides Node's roots")
    .option(
      '--federated-token-file <identity=path>',
      "outbound federation: keep this linked identity's assertion (client id, object id or resource id) in this file, 0600, rewritten at 80 % of its life; <path>.env gets the AZURE_* variables (repeatable)",
      collect,
      [],
    )
    .addOption(new Option('--log-format <format>', 'log format').choices(['json', 'pretty']))
    .addHelpText(
      'after',
      `
Examples:
  openmsi agent --federated-token-file <client id>=/run/app/azure-token   # outbound federation: the workload's SDK exchanges it upstream
  openmsi agent --join-token "$TOKEN" --authority https://authority.internal:8443 --ca-file ca.pem
  openmsi agent --authority https://authority-1.internal:8443 --authority https://authority-2.internal:8443   # replicas: failover
  openmsi agent --join-token-file /run/secrets/openmsi-join-token --authority https://authority.internal:8443   # re-enrols when refused
  openmsi agent                                    # later starts reuse the saved host credential
  eval "$(openmsi agent env)" && node app.js       # workloads find the agent through these variables`,
    )
    .action(
      async (
        opts: {
          joinToken?: string;
          joinTokenFile?: string;
          authority: string[];
          caFile?: string;
          port?: number;
          arc?: boolean;
          imds: boolean;
          appService: boolean;
          pollInterval?: number;
          rateLimit?: number;
          upstreamCaFile?: string;
          federatedTokenFile: string[];
          logFormat?: 'json' | 'pretty';
          metricsPort?: number;
          metricsHost?: string;
        },
        cmd: Command,
      ) => {
        if (opts.metricsHost !== undefined && opts.metricsPort === undefined) throw new Error('--metrics-host needs --metrics-port');
        if (opts.joinToken !== undefined && opts.joinTokenFile !== undefined) throw new Error('--join-token and --join-token-file: give one, not both');
        const settings = readEnvironment();
        const [{ createLogger, defaultLogFormat }, { createAgent }] = await Promise.all([lazy.logger(), lazy.agent()]);
        const logger = createLogger({
          format: opts.logFormat ?? settings.logFormat ?? defaultLogFormat(),
          ...(settings.logLevel === undefined ? {} : { level: settings.logLevel }),
        });
        const running = await createAgent({
          dataDir: agentDataDirOf(cmd),
          logger,
          ...(opts.joinToken === undefined ? {} : { joinToken: opts.joinToken }),
          ...(opts.joinTokenFile === undefined ? {} : { joinTokenFile: opts.joinTokenFile }),
          ...(opts.authority.length === 0 ? {} : { authorityUrls: opts.authority }),
          ...(opts.caFile === undefined ? {} : { caFile: opts.caFile }),
          ...(opts.port === undefined ? {} : { port: opts.port }),
          arc: opts.arc === true,
          imds: opts.imds,
          appService: opts.appService,
          ...(opts.pollInterval === undefined ? {} : { identityPollMs: Math.round(opts.pollInterval * 1000) }),
          ...(opts.rateLimit === undefined ? {} : { rateLimit: { perSecond: opts.rateLimit } }),
          ...(opts.upstreamCaFile === undefined ? {} : { upstreamCaFile: opts.upstreamCaFile }),
          federatedTokenFiles: opts.federatedTokenFile.map(parseTokenFileSpec),
          ...(opts.metricsPort === undefined
            ? {}
            : { metrics: { port: opts.metricsPort, ...(opts.metricsHost === undefined ? {} : { host: opts.metricsHost }) } }),
        });
        const stop = (signal: string) => {
          logger.info({ signal }, 'shutting down');
          running.close().then(
            () => process.exit(0),
            () => process.exit(1),
          );
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      },
    );

  agent
    .command('env')
    .description("Print the environment variables local workloads need to reach this host's agent")
    .option('--data-dir <dir>', "the agent's data dir (default: $OPENMSI_AGENT_DATA_DIR or ~/.openmsi/agent)")
    .addOption(new Option('--shell <shell>', 'output syntax').choices([...ENV_SHELLS]).default('bash'))
    .option('--port <port>', 'the agent port (default: where it last listened, else 50342)', parsePort)
    .action((opts: { shell: EnvShell; port?: number }, cmd: Command) => {
      const dataDir = agentDataDirOf(cmd);
      const files = agentFiles(dataDir);
      if (!existsSync(files.identityHeader)) {
        throw new Error(`${dataDir} holds no agent secret yet: start \`openmsi agent --data-dir ${dataDir}\` once (or pass the agent's --data-dir)`);
      }
      const secret = readFileSync(files.identityHeader, 'utf8').trim();
      let port = opts.port;
      if (port === undefined && existsSync(files.runtime)) {
        const runtime = JSON.parse(readFileSync(files.runtime, 'utf8')) as { port?: unknown };
        // `run/agent.json` as the running agent writes it ({url, port, pid, startedAt}).
        if (typeof runtime.port === 'number') port = runtime.port;
      }
      process.stdout.write(`${formatEnvironment(agentEnvironment(port ?? AGENT_DEFAULTS.port, secret), opts.shell)}\n`);
    });
}
