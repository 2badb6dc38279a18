import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { describe } from 'node:test';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../src/shared/clock.js';
import { dataDirLayout, type AdminCredentialFile } from '../../src/shared/data-dir.js';
import { createOpenmsiServer, type OpenmsiServer } from '../../src/server/server.js';
import { initDataDir } from '../../src/authority/init.js';
import type { ServerContext } from '../../src/server/context.js';
import { createTestDatabase } from './pg-database.js';
import { createApplicationPrincipal } from '../../src/directory/principals.js';
import { addCertificateCredential, addPasswordCredential } from '../../src/directory/credentials.js';
import { createClientCertificate } from '../../src/pki/client-certificate.js';
import type { ClientAuthThrottlePolicy } from '../../src/authority/token/throttle.js';
import { captureLogs } from './logs.js';

export { captureLogs };

export interface TestAuthority {
  authority: OpenmsiServer;
  ctx: ServerContext;
  app: FastifyInstance;
  /** https origin the authority listens on (loopback). */
  url: string;
  caPem: string;
  caPath: string;
  admin: AdminCredentialFile;
  dataDir: string;
  /** Where the store is: the SQLite file or the throwaway PostgreSQL database's URL. */
  storeLocation: string;
  tenantId: string;
  subscriptionId: string;
  /** Every log line the authority wrote, for redaction tests. */
  logLines: string[];
  /** A management token for the bootstrap admin, obtained through the real token endpoint (in-process). */
  adminToken(audience: string): Promise<string>;
  close(): Promise<void>;
}

export type Backend = 'sqlite' | 'postgres';

/**
 * The store backends every end-to-end suite runs on. PostgreSQL needs a server (`OPENMSI_TEST_POSTGRES_URL`);
 * without one its suites are reported as skipped, with the reason, rather than left out:
 * `for (const backend of STORE_BACKENDS) describe(name, backendSuiteOptions(backend), () => ...)`.
 */
export const STORE_BACKENDS: readonly Backend[] = ['sqlite', 'postgres'];

/** Why a backend's suites cannot run here, or false when they can. */
export function backendSkipReason(backend: Backend): string | false {
  if (backend === 'postgres' && !process.env['OPENMSI_TEST_POSTGRES_URL']) return 'OPENMSI_TEST_POSTGRES_URL not set';
  return false;
}

/** `describe` options for a suite on `backend`: skipped, with the reason, when it cannot run here. */
export function backendSuiteOptions(backend: Backend): { skip: string | false } {
  return { skip: backendSkipReason(backend) };
}

/**
 * Registers a file's suites once per backend, under `name`, and runs the backends side by side (node:test
 * `concurrency`); each backend's suites keep their order. Each backend has its own server and store, and such
 * files spend most of their time waiting on child processes and HTTPS round trips: the second backend fills
 * that time instead of following the first (the role CLI file: 16.5 s to 9.0 s, the same CPU). Only for files
 * whose servers share nothing in the test process: two in-process servers share module state (the host API's
 * enrolment limiter per address, the federated grant's issuer key cache), so those files keep one backend
 * after the other.
 */
export function acrossBackends(name: string, register: (backend: Backend) => void): void {
  void describe(name, { concurrency: true }, () => {
    for (const backend of STORE_BACKENDS) void describe(backend, backendSuiteOptions(backend), () => register(backend));
  });
}

function requirePostgresUrl(): string {
  const url = process.env['OPENMSI_TEST_POSTGRES_URL'];
  if (url === undefined || url === '') throw new Error('OPENMSI_TEST_POSTGRES_URL is not set');
  return url;
}

/** Reservations {@link freePort} holds for this process: removed when it exits. */
const reserved = new Set<string>();
process.once('exit', () => {
  for (const file of reserved) rmSync(file, { force: true });
});

/** The ports `bind(0)` and outgoing connections take (Linux's ip_local_port_range), to stay out of. */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined && low > 0 && high >= low) return [low, high];
  } catch {
    // not Linux: the IANA range
  }
  return [49152, 65535];
}

/** Whether `port` can be bound on 127.0.0.1 right now. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Whether the process that wrote a reservation is still alive. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A loopback port for a server that must be told its port before it starts (a child process given `--port N`).
 * Where the code can, bind port 0 and read the port back instead; this is for the rest.
 *
 * A port found by binding port 0 and releasing it is not safe to hand on while other test files run at the
 * same time: until the server binds it, the kernel may give it to anyone's `bind(0)` or use it as the source
 * port of an outgoing connection. So the port is picked at random below the kernel's ephemeral range (where
 * neither ever lands), checked free, and reserved across processes by an exclusive file under the temp dir
 * for as long as this process lives (a reservation whose process died is taken over), so two test files
 * running at once never get the same port.
 */
export async function freePort(): Promise<number> {
  const [low] = ephemeralRange();
  const [from, to] = low > 12_000 ? [10_000, low - 1] : [ephemeralRange()[1] + 1, 65_535];
  // scripts/run-tests.mjs names one folder for every run, whatever TMPDIR it gives the files.
  const dir = process.env['OPENMSI_TEST_PORTS_DIR'] ?? join(tmpdir(), 'openmsi-test-ports');
  mkdirSync(dir, { recursive: true });
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = from + Math.floor(Math.random() * (to - from + 1));
    const file = join(dir, String(port));
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
    } catch {
      // Reserved: free the reservation only when its process is gone (then try another port).
      let owner = 0;
      try {
        owner = Number(readFileSync(file, 'utf8'));
      } catch {
        // released meanwhile
      }
      if (Number.isInteger(owner) && owner > 0 && !alive(owner)) rmSync(file, { force: true });
      continue;
    }
    reserved.add(file);
    if (await canBind(port)) return port;
    reserved.delete(file);
    rmSync(file, { force: true });
  }
  throw new Error(`freePort: no free port between ${String(from)} and ${String(to)} after 200 tries`);
}

/**
 * The throttle suites start with unless they ask for another: far above what any suite's refusal tests send
 * (test/authority/client-auth-throttle.test.ts runs the production limits).
 */
export const ROOMY_CLIENT_AUTH_THROTTLE: ClientAuthThrottlePolicy = {
  perClient: { failures: 100_000, windowMs: 60_000 },
  perSource: { failures: 100_000, windowMs: 60_000 },
};

/**
 * Initialises a fresh data dir in a temp folder and runs a real HTTPS authority on a free loopback port.
 */
export async function startTestAuthority(
  options: {
    clock?: Clock;
    env?: NodeJS.ProcessEnv;
    tokenLifetimeSeconds?: number;
    backend?: Backend;
    host?: string;
    /** Limits on failed client authentication; default {@link ROOMY_CLIENT_AUTH_THROTTLE}, so suites that test refusals are not throttled. */
    clientAuthThrottle?: ClientAuthThrottlePolicy;
    /** The outbound federation issuer (`openmsi server --federation-issuer`); default the built-in one. */
    federationIssuer?: string;
    /** Serve Prometheus metrics on their own listener (port 0 picks one); see `authority.metricsUrl`. */
    metrics?: { port: number; host?: string };
    /** How long the token endpoint's client cache trusts an entry without a notice (default 1 s). */
    clientCacheMaxAgeMs?: number;
  } = {},
): Promise<TestAuthority> {
  const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-test-'));
  // Not port 0: config.json keeps the port, and what reads the data dir (a vault replica, the CLI) derives the
  // issuer from it, so the port is chosen before init.
  const port = await freePort();
  const database = options.backend === 'postgres' ? await createTestDatabase(requirePostgresUrl()) : undefined;
  const env = options.env ?? { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: database?.url ?? '' };
  const init = await initDataDir({
    dataDir,
    port,
    env,
    ...(database === undefined ? {} : { store: database.url }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.tokenLifetimeSeconds === undefined ? {} : { tokenLifetimeSeconds: options.tokenLifetimeSeconds }),
  });
  const { logger, lines } = captureLogs();
  const authority = await createOpenmsiServer({
    dataDir,
    logger,
    env,
    // `localhost` makes fastify listen on every loopback address (127.0.0.1 and ::1); still loopback only.
    host: options.host ?? '127.0.0.1',
    port,
    autoRotate: false,
    clientAuthThrottle: options.clientAuthThrottle ?? ROOMY_CLIENT_AUTH_THROTTLE,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.federationIssuer === undefined ? {} : { federationIssuer: options.federationIssuer }),
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
    ...(options.clientCacheMaxAgeMs === undefined ? {} : { clientCacheMaxAgeMs: options.clientCacheMaxAgeMs }),
  });
  const url = await authority.listen();
  const caPath = dataDirLayout(dataDir).caCert;
  return {
    authority,
    ctx: authority.ctx,
    app: authority.app,
    url,
    caPem: readFileSync(caPath, 'utf8'),
    caPath,
    admin: init.admin,
    dataDir,
    storeLocation: database?.url ?? dataDirLayout(dataDir).sqlite,
    tenantId: init.config.tenantId,
    subscriptionId: init.config.subscriptionId,
    logLines: lines,
    async adminToken(audience: string) {
      const response = await authority.app.inject({
        method: 'POST',
        url: `/${init.config.tenantId}/oauth2/v2.0/token`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: init.admin.clientId,
          client_secret: init.admin.clientSecret,
          scope: `${audience.replace(/\/$/, '')}/.default`,
        }).toString(),
      });
      if (response.statusCode !== 200) throw new Error(`admin token request failed: ${response.statusCode} ${response.body}`);
      return response.json<{ access_token: string }>().access_token;
    },
    async close() {
      await authority.close();
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** An application service principal registered directly in a test authority's directory. */
export interface TestApplication {
  appId: string;
  objectId: string;
  /** Its client secret (always registered). */
  secret: string;
  /** Its certificate credential, when asked for: PEMs, and a 0600 file holding key + certificate as SDKs read it. */
  certPem: string;
  keyPem: string;
  certPath: string;
}

/** Registers an application with a client secret and, unless `certificate: false`, a client certificate. */
export async function registerTestApplication(
  t: Pick<TestAuthority, 'ctx' | 'tenantId' | 'dataDir'>,
  displayName: string,
  options: { certificate?: boolean } = {},
): Promise<TestApplication> {
  const clock = t.ctx.clock;
  const principal = await t.ctx.store.transaction((tx) => createApplicationPrincipal(tx, { tenantId: t.tenantId, displayName, clock }));
  const appId = principal.appId;
  const secret = (await t.ctx.store.transaction((tx) => addPasswordCredential(tx, t.ctx.masterKey, { appId, clock }))).secretText;
  const app: TestApplication = { appId, objectId: principal.objectId, secret, certPem: '', keyPem: '', certPath: '' };
  if (options.certificate === false) return app;
  const cert = await createClientCertificate({ commonName: displayName, years: 1, clock });
  await t.ctx.store.transaction((tx) => addCertificateCredential(tx, { appId, certificatePem: cert.certPem, clock }));
  const certPath = join(t.dataDir, `${displayName}-client.pem`);
  writeFileSync(certPath, cert.keyPem + cert.certPem, { mode: 0o600 });
  return { ...app, certPem: cert.certPem, keyPem: cert.keyPem, certPath };
}
