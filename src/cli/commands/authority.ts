import type { Command } from 'commander';
import { existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { OpenmsiServer } from '../../server/server.js';
import { DEFAULTS, METRICS_DEFAULTS, TOKEN_LIFETIME_SECONDS, isPort, parseLogFormat, readEnvironment, storeLocation } from '../../shared/config.js';
import { dataDirLayout } from '../../shared/data-dir.js';
import { defaultOrigin, explicitPublicUrl, hostForUrl } from '../../shared/public-url.js';
import { describeStoreLocation, isPostgresLocation } from '../../store/location.js';
import { lazy } from './lazy.js';
import { globalOptions } from '../api-client.js';
import { printResult } from '../output.js';
import { collect } from './shared.js';

/** `openmsi init` and `openmsi authority`. */
export function registerAuthorityCommands(program: Command): void {
  program
    .command('init')
    .description('Create a data dir: master key, local CA and TLS certificate, store, tenant, subscription, signing keys and the bootstrap admin credential.')
    .option('--host <address>', 'address the authority will listen on', DEFAULTS.host)
    .option('--port <port>', 'port the authority will listen on', (v) => parsePort(v), DEFAULTS.port)
    .option('--public-url <url>', 'https origin clients will use, fixed (default: https://localhost:<the port the authority listens on>)')
    .option('--store <location>', 'store: "sqlite" (embedded, in the data dir) or a postgres:// URL (also OPENMSI_STORE)')
    .option(
      '--token-lifetime <seconds>',
      `access-token lifetime in seconds (${String(TOKEN_LIFETIME_SECONDS.min)} to ${String(TOKEN_LIFETIME_SECONDS.max)})`,
      (v) => Number(v),
      TOKEN_LIFETIME_SECONDS.default,
    )
    .option('--hostname <name>', 'extra DNS name for the server certificate (repeatable)', collect, [])
    .option('--ip <address>', 'extra IP address for the server certificate (repeatable)', collect, [])
    .option('--tenant-domain <domain>', "the tenant's domain name", DEFAULTS.tenantDomain)
    .option(
      '--vault-domain <domain>',
      'vaults are served at https://<name>.<vault domain>:<port>/ (the certificate covers *.<vault domain>)',
      DEFAULTS.vaultDomain,
    )
    .addHelpText(
      'after',
      `
Examples:
  openmsi init
  openmsi init --data-dir /var/lib/openmsi --port 9443 --hostname authority.internal
  OPENMSI_STORE=postgres://openmsi@db/openmsi openmsi init --store postgres://openmsi@db/openmsi`,
    )
    .action(async (opts: InitFlags, cmd: Command) => {
      const globals = globalOptions(cmd);
      const { dataDir } = globals;
      const { initDataDir } = await lazy.init();
      const result = await initDataDir({
        dataDir,
        host: opts.host,
        port: opts.port,
        ...(opts.publicUrl === undefined ? {} : { publicUrl: opts.publicUrl }),
        ...(opts.store === undefined ? {} : { store: redactUrl(opts.store) }),
        tokenLifetimeSeconds: opts.tokenLifetime,
        hostnames: opts.hostname,
        ipAddresses: opts.ip,
        tenantDomain: opts.tenantDomain,
        vaultDomain: opts.vaultDomain,
      });
      printResult(
        {
          dataDir,
          tenantId: result.config.tenantId,
          subscriptionId: result.config.subscriptionId,
          authority: explicitPublicUrl(result.config) ?? defaultOrigin(result.config.host, result.config.port),
          adminClientId: result.admin.clientId,
          adminCredentialFile: dataDirLayout(dataDir).adminCredential,
          caCertificateFile: dataDirLayout(dataDir).caCert,
        },
        globals,
      );
    });

  program
    .command('server')
    .alias('authority')
    .description(
      'Run the server from a data dir: the token authority, the management API and the vault data plane (HTTPS, one port; vault hosts are <name>.<vault domain>).',
    )
    .option('--init', 'initialise the data dir first if it is not initialised yet')
    .option('--host <address>', 'override the configured listen address')
    .option('--port <port>', 'override the configured port (the advertised URL follows it unless a public URL was set)', (v) => parsePort(v))
    .option('--public-url <url>', 'https origin to advertise (issuer, endpoints), overriding the configured one')
    .option(
      '--federation-issuer <url>',
      'outbound federation: the public https issuer URL of assertions for upstream Entra tenants, overriding config.json "federationIssuer" (default <public url>/openmsi/federation)',
    )
    .option('--store <location>', 'override the store: a postgres:// URL (also OPENMSI_STORE) or a SQLite file')
    .option(
      '--log-format <format>',
      'log format: pretty (one coloured line per event) or json (also OPENMSI_LOG_FORMAT; default: pretty on a terminal, json otherwise)',
      (v) => parseLogFormat(v, '--log-format'),
    )
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://<metrics host>:<port>/metrics (plain HTTP, its own listener; off unless given)', (v) =>
      parsePort(v),
    )
    .option('--metrics-host <address>', `address of the metrics listener (default ${METRICS_DEFAULTS.host}; needs --metrics-port)`)
    .addHelpText(
      'after',
      `
Examples:
  openmsi authority
  openmsi authority --metrics-port 9464                # Prometheus scrapes http://127.0.0.1:9464/metrics
  openmsi authority --init --data-dir ./.openmsi
  openmsi authority --port 9443                       # this run only (the CLI finds it through the data dir); to change it for good, edit "port" in config.json
  OPENMSI_LOG_LEVEL=debug openmsi authority --log-format json
  NODE_EXTRA_CA_CERTS=$(openmsi ca export --out ca.pem && echo ca.pem) node app.js   # trust it from Node`,
    )
    .action(async (opts: ServerFlags, cmd: Command) => {
      const { dataDir } = globalOptions(cmd);
      if (opts.metricsHost !== undefined && opts.metricsPort === undefined) throw new Error('--metrics-host needs --metrics-port');
      const settings = readEnvironment();
      const [{ createLogger, defaultLogFormat }, { createOpenmsiServer }, { initDataDir }] = await Promise.all([lazy.logger(), lazy.authority(), lazy.init()]);
      const logger = createLogger({
        format: opts.logFormat ?? settings.logFormat ?? defaultLogFormat(),
        ...(settings.logLevel === undefined ? {} : { level: settings.logLevel }),
      });
      let freshDataDir = false;
      if (opts.init === true && !existsSync(dataDirLayout(dataDir).config)) {
        // Fail before creating anything when the address is taken.
        const host = opts.host ?? DEFAULTS.host;
        const port = opts.port ?? DEFAULTS.port;
        await probeListen(host, port, dataDir);
        const result = await initDataDir({
          dataDir,
          ...(opts.host === undefined ? {} : { host: opts.host }),
          ...(opts.port === undefined ? {} : { port: opts.port }),
          ...(opts.publicUrl === undefined ? {} : { publicUrl: opts.publicUrl }),
        });
        freshDataDir = true;
        logger.info({ dataDir, tenantId: result.config.tenantId, adminClientId: result.admin.clientId }, 'initialised data dir');
      }
      let authority: OpenmsiServer | undefined;
      let url: string;
      try {
        authority = await createOpenmsiServer({
          dataDir,
          logger,
          ...(opts.host === undefined ? {} : { host: opts.host }),
          ...(opts.port === undefined ? {} : { port: opts.port }),
          ...(opts.publicUrl === undefined ? {} : { publicUrl: opts.publicUrl }),
          ...(opts.federationIssuer === undefined ? {} : { federationIssuer: opts.federationIssuer }),
          ...(opts.store === undefined ? {} : { store: opts.store }),
          ...(opts.metricsPort === undefined
            ? {}
            : { metrics: { port: opts.metricsPort, ...(opts.metricsHost === undefined ? {} : { host: opts.metricsHost }) } }),
        });
        url = await authority.listen().catch((err: unknown) => {
          throw listenError(err, opts.host ?? authority?.config.host ?? '', opts.port ?? authority?.config.port ?? 0, dataDir);
        });
      } catch (err) {
        await authority?.close();
        // `--init` made the data dir for this start only: take it back, so a retry (say with --port) starts clean.
        // A PostgreSQL store now holds the directory, so then the data dir that belongs to it stays.
        if (freshDataDir && opts.store === undefined && !isPostgresLocation(storeLocation(dataDir, { store: DEFAULTS.store }))) {
          rmSync(dataDir, { recursive: true, force: true });
        }
        throw err;
      }
      logger.info(
        {
          authority: url,
          tenantId: authority.config.tenantId,
          caCertificate: dataDirLayout(dataDir).caCert,
          ...(authority.metricsUrl === undefined ? {} : { metrics: `${authority.metricsUrl}/metrics` }),
        },
        `openmsi server ready: ${url}/${authority.config.tenantId}/v2.0/.well-known/openid-configuration; vaults at https://<name>.${authority.config.vaultDomain}:${new URL(url).port || '443'}/`,
      );
      const stop = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        authority.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
}

/** `openmsi vault`: the data plane alone, beside a server that shares its PostgreSQL store. */
export function registerVaultReplicaCommand(program: Command): void {
  program
    .command('vault')
    .description("Run the vault data plane alone (a replica for a PostgreSQL store shared with `openmsi server`), from a copy of the server's data dir.")
    .option('--host <address>', 'listen address (default: the configured one)')
    .option('--port <port>', 'port to listen on', (v) => parsePort(v), DEFAULTS.port)
    .option('--store <location>', 'the shared store: a postgres:// URL (also OPENMSI_STORE)')
    .option('--log-format <format>', 'log format: pretty or json (also OPENMSI_LOG_FORMAT)', (v) => parseLogFormat(v, '--log-format'))
    .addHelpText(
      'after',
      `
Vault URIs name the server's port (properties.vaultUri); put replicas behind the same address, or listen on it.
Examples:
  OPENMSI_STORE=postgres://openmsi:…@db/openmsi openmsi vault --data-dir /var/lib/openmsi --port 8443`,
    )
    .action(async (opts: { host?: string; port: number; store?: string; logFormat?: 'json' | 'pretty' }, cmd: Command) => {
      const { dataDir } = globalOptions(cmd);
      const settings = readEnvironment();
      const [{ createLogger, defaultLogFormat }, { createVaultReplica }] = await Promise.all([lazy.logger(), lazy.vaultReplica()]);
      const logger = createLogger({
        format: opts.logFormat ?? settings.logFormat ?? defaultLogFormat(),
        ...(settings.logLevel === undefined ? {} : { level: settings.logLevel }),
      });
      const replica = await createVaultReplica({
        dataDir,
        logger,
        port: opts.port,
        ...(opts.host === undefined ? {} : { host: opts.host }),
        ...(opts.store === undefined ? {} : { store: opts.store }),
      });
      let port: number;
      try {
        port = await replica.listen();
      } catch (err) {
        await replica.close();
        throw listenError(err, opts.host ?? '', opts.port, dataDir);
      }
      logger.info({ port }, `openmsi vault ready on port ${String(port)}`);
      const stop = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        replica.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
}

interface ServerFlags {
  init?: boolean;
  host?: string;
  port?: number;
  publicUrl?: string;
  federationIssuer?: string;
  store?: string;
  logFormat?: 'json' | 'pretty';
  metricsPort?: number;
  metricsHost?: string;
}

interface InitFlags {
  host: string;
  port: number;
  publicUrl?: string;
  store?: string;
  tokenLifetime: number;
  hostname: string[];
  ip: string[];
  tenantDomain: string;
  vaultDomain: string;
}

/** Checks that `host:port` can be bound, so `--init` fails before it creates anything. */
function probeListen(host: string, port: number, dataDir: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', (err) => reject(listenError(err, host, port, dataDir)));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolvePromise()));
  });
}

/** A listen failure in words: which address, why, and how to pick another now or for good. */
export function listenError(err: unknown, host: string, port: number, dataDir: string): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const address = `${hostForUrl(host)}:${String(port)}`;
  const config = dataDirLayout(dataDir).config;
  const howToChange =
    `Pick another port for this run with \`openmsi authority --port <port>\`, or change it for good: edit "port" ` +
    `in ${existsSync(config) ? config : "the data dir's config.json"} (and the port in "publicUrl", if one is set), or pass --port to \`openmsi init\`.`;
  if (code === 'EADDRINUSE') {
    return new Error(`cannot listen on ${address}: the address is already in use (another openmsi authority, or another program). ${howToChange}`, {
      cause: err,
    });
  }
  if (code === 'EACCES') return new Error(`cannot listen on ${address}: permission denied (ports below 1024 need privileges). ${howToChange}`, { cause: err });
  if (code === 'EADDRNOTAVAIL') {
    return new Error(`cannot listen on ${address}: this machine has no such address; use --host with one of its addresses (or 0.0.0.0 for all)`, {
      cause: err,
    });
  }
  return err instanceof Error ? err : new Error(String(err));
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!isPort(port)) throw new Error(`not a port number: ${value}`);
  return port;
}

/**
 * config.json must never hold a database password (neither the URL's nor a `password=` parameter); it comes
 * from OPENMSI_STORE at run time.
 */
function redactUrl(location: string): string {
  if (!isPostgresLocation(location)) return location;
  // Refuse an unparseable URL here rather than store describeStoreLocation's placeholder for it.
  if (!URL.canParse(location)) throw new Error('--store is not a valid postgres:// URL');
  return describeStoreLocation(location);
}
