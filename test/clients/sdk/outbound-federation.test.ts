/**
 * Outbound workload identity federation (issue 18, spec federation §1), against a second openmsi installation
 * acting as the upstream Entra: it trusts the first's outbound issuer (a static JWKS from `openmsi federation
 * export`) through a federated credential on one of its user-assigned identities. On the first, a host's
 * identity is linked to that upstream identity (`openmsi identity federation link`); then an unchanged app on the
 * host gets, through the agent's IMDS surface (@azure/identity ManagedIdentityCredential) and through the token
 * file (WorkloadIdentityCredential, environment only), a token issued by the second, and reads a secret in the
 * second's vault. Every proxy-bound request is recorded and refused: none may happen. Loopback only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { STORE_BACKENDS, backendSuiteOptions, startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { openmsi, openmsiJson, removeDir, startAgentProcess } from '../../support/agent-process.js';
import { loopbackOnlyProxyEnv, parseDotenv, refusingProxy, type CreatedIdentity, type SdkClientResult } from '../../support/clients.js';
import { untilTrue, until } from '../../support/poll.js';
import { captureLogs } from '../../support/logs.js';
import { createTestHost, rawRequest, IMDS_PATH, type TestHost } from '../../support/world.js';
import { createAgent, type Agent } from '../../../src/agent/agent.js';
import { UpstreamError } from '../../../src/agent/upstream.js';

const run = promisify(execFile);
const MANAGED_CLIENT = new URL('./fixtures/outbound-managed-client.mjs', import.meta.url).pathname;
const WORKLOAD_CLIENT = new URL('./fixtures/workload-identity-client.mjs', import.meta.url).pathname;
const RESOLVER = new URL('../vault/fixtures/resolve-localhost.mjs', import.meta.url).pathname;
const AUDIENCE = 'api://AzureADTokenExchange';

/** The federated identity credential a link prints, to create upstream. */
interface UpstreamCredential {
  name: string;
  issuer: string;
  subject: string;
  audiences?: string[] | undefined;
}

for (const backend of STORE_BACKENDS)
  describe(
    `outbound federation: an openmsi host gets a second installation’s tokens (${backend})`,
    { ...backendSuiteOptions(backend), timeout: 300_000 },
    () => {
      let first: TestAuthority;
      let second: TestAuthority;
      let host: TestHost;
      let agent: Agent;
      let agentLogs: string[];
      let proxy: Awaited<ReturnType<typeof refusingProxy>>;
      let upstream: CreatedIdentity;
      let vaultUri: string;
      let issuer: string;
      let exportDir: string;
      let tokenFile: string;

      /** `openmsi identity federation link` on the first: its identity to the upstream `clientId` at the second (tenant `adfs`). */
      const linkOnFirst = <T = unknown>(identityName: string, resourceGroup: string, clientId: string): Promise<T> =>
        openmsiJson<T>(first, [
          'identity',
          'federation',
          'link',
          '--identity-name',
          identityName,
          '-g',
          resourceGroup,
          '--tenant-id',
          'adfs',
          '--client-id',
          clientId,
          '--authority-host',
          second.url,
        ]);

      /** `openmsi identity federated-credential create` on the second's upstream identity, with what a link printed. */
      const trustOnSecond = (fic: UpstreamCredential): Promise<unknown> =>
        openmsiJson(second, [
          'identity',
          'federated-credential',
          'create',
          '--identity-name',
          'from-openmsi',
          '-g',
          'upstream',
          '-n',
          fic.name,
          '--issuer',
          fic.issuer,
          '--subject',
          fic.subject,
          ...(fic.audiences === undefined ? [] : ['--audiences', ...fic.audiences]),
        ]);

      /** The in-process agent's IMDS answer for `resource` and the identity `clientId`, asked as an SDK asks. */
      const askImds = (resource: string, clientId: string, port = agent.port) =>
        rawRequest(port, 'GET', `${IMDS_PATH}?api-version=2018-02-01&resource=${encodeURIComponent(resource)}&client_id=${clientId}`, {
          metadata: 'true',
        });

      before(async () => {
        [first, second] = await Promise.all([startTestAuthority({ backend }), startTestAuthority({ backend })]);
        proxy = await refusingProxy();
        host = await createTestHost(first);
        issuer = `${first.url}/openmsi/federation`;

        // The first publishes its outbound issuer's documents as static files (what a public host would serve).
        exportDir = join(first.dataDir, 'issuer-export');
        const exported = await openmsiJson<{ issuer: string; files: string[]; keys: number }>(first, ['federation', 'export', '--out', exportDir]);
        assert.equal(exported.issuer, issuer);

        // The second ("upstream Entra"): an identity that may read a vault, trusting the first's issuer.
        await openmsiJson(second, ['group', 'create', '-n', 'upstream', '-l', 'local']);
        upstream = await openmsiJson<CreatedIdentity>(second, ['identity', 'create', '-n', 'from-openmsi', '-g', 'upstream']);
        const vault = await openmsiJson<{ id: string; properties: { vaultUri: string } }>(second, [
          'keyvault',
          'create',
          '-g',
          'upstream',
          '-n',
          'kv-upstream',
        ]);
        vaultUri = vault.properties.vaultUri;
        await openmsiJson(second, [
          'role',
          'assignment',
          'create',
          '--assignee',
          upstream.principalId,
          '--role',
          'Key Vault Secrets Officer',
          '--scope',
          vault.id,
        ]);
        await openmsiJson(second, ['federation', 'issuer', 'set', '--issuer', issuer, '--jwks', `@${join(exportDir, 'openid', 'v1', 'jwks')}`]);

        // The first links its host's identity to it (tenant `adfs`: the second's default tenant, and what keeps
        // unchanged JS SDKs from asking login.microsoftonline.com for instance discovery).
        const link = await linkOnFirst<{ properties: Record<string, unknown>; federatedCredential: UpstreamCredential }>(
          host.uami.name,
          host.resourceGroup,
          upstream.clientId,
        );
        assert.deepEqual(link.federatedCredential, { name: `openmsi-${host.uami.name}`, issuer, subject: host.uami.objectId, audiences: [AUDIENCE] });
        assert.equal(link.properties['tokenEndpoint'], `${second.url}/adfs/oauth2/v2.0/token`);

        // The second gets exactly the credential the first printed.
        await trustOnSecond(link.federatedCredential);

        tokenFile = join(host.dataDir, 'azure-identity-token');
        const { logger, lines } = captureLogs();
        agentLogs = lines;
        agent = await createAgent({
          dataDir: host.dataDir,
          port: 0,
          logger,
          identityPollMs: 200,
          upstreamTimeoutMs: 5000,
          upstreamCaFile: second.caPath,
          federatedTokenFiles: [{ selector: { kind: 'client', value: host.uami.clientId }, path: tokenFile }],
        });
      });

      after(async () => {
        await agent?.close();
        await new Promise<void>((resolve) => proxy?.server.close(() => resolve()));
        host?.cleanup();
        await Promise.all([first?.close(), second?.close()]);
      });

      /** An app's own environment: no openmsi variables; the second's CA (its vault); every other request to the refusing proxy. */
      const appEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({
        PATH: '/usr/bin:/bin',
        HOME: process.env['HOME'] ?? '/tmp',
        NODE_EXTRA_CA_CERTS: second.caPath,
        ...loopbackOnlyProxyEnv(proxy.url),
        ...extra,
      });

      async function client(script: string, config: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<SdkClientResult> {
        const { stdout } = await run(process.execPath, ['--import', RESOLVER, script, JSON.stringify(config)], { env, timeout: 120_000 });
        return JSON.parse(stdout) as SdkClientResult;
      }

      it('export writes the discovery document and the JWKS it names, as the first serves them at the issuer', async () => {
        const discovery = JSON.parse(readFileSync(join(exportDir, '.well-known', 'openid-configuration'), 'utf8')) as Record<string, unknown>;
        assert.deepEqual(discovery, {
          issuer,
          jwks_uri: `${issuer}/openid/v1/jwks`,
          response_types_supported: ['id_token'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
        });
        const jwks = JSON.parse(readFileSync(join(exportDir, 'openid', 'v1', 'jwks'), 'utf8')) as { keys: Record<string, unknown>[] };
        assert.ok(jwks.keys.length >= 1);
        for (const key of jwks.keys) assert.deepEqual(Object.keys(key).sort(), ['alg', 'e', 'kid', 'kty', 'n', 'use']);
        const served = await fetchJson(`${issuer}/.well-known/openid-configuration`);
        assert.deepEqual(served, discovery);
        assert.deepEqual(await fetchJson(`${issuer}/openid/v1/jwks`), jwks);
      });

      it('IMDS: unchanged ManagedIdentityCredential gets a token issued by the second and writes and reads a secret in its vault', async () => {
        const result = await client(
          MANAGED_CLIENT,
          { clientId: host.uami.clientId, vault: vaultUri, name: 'db-password', set: 'upstream-s3cret' },
          appEnv({ AZURE_POD_IDENTITY_AUTHORITY_HOST: agent.url }),
        );
        assert.ok(result.ok, JSON.stringify(result));
        assert.equal(result.value, 'upstream-s3cret');
        assert.equal(result.claims?.['iss'], `${second.url}/${second.tenantId}/`);
        assert.equal(result.claims?.['tid'], second.tenantId);
        assert.equal(result.claims?.['oid'], upstream.principalId);
        assert.equal(result.claims?.['appid'], upstream.clientId);
        assert.equal(result.claims?.['aud'], 'https://vault.azure.net');
        // The second audited a federated grant from the first's issuer for the host identity's subject.
        const events = await second.ctx.store.audit.list({ action: 'token.issued', limit: 50 });
        assert.ok(
          events.some((e) => e.detail['federatedIssuer'] === issuer && e.detail['federatedSubject'] === host.uami.objectId),
          JSON.stringify(events.map((e) => e.detail)),
        );
        // The assertion never reaches a log line of the agent or of either server.
        for (const line of [...agentLogs, ...first.logLines, ...second.logLines]) assert.doesNotMatch(line, /eyJ[A-Za-z0-9_-]{20,}\.eyJ/);
      });

      it('the agent caches the upstream token like any other (one exchange for repeated requests)', async () => {
        const ask = () => askImds('https://storage.azure.com', host.uami.clientId);
        const before = agent.federation.exchange.calls;
        const firstAnswer = await ask();
        assert.equal(firstAnswer.status, 200, firstAnswer.body);
        const again = await ask();
        assert.equal(again.status, 200);
        assert.equal(again.json()['access_token'], firstAnswer.json()['access_token']);
        assert.equal(agent.federation.exchange.calls, before + 1);
        const body = firstAnswer.json<Record<string, string>>();
        assert.equal(body['resource'], 'https://storage.azure.com');
        assert.equal(body['client_id'], host.uami.clientId);
        assert.equal(decodeJwt(body['access_token']!)['iss'], `${second.url}/${second.tenantId}/`);
        // The agent's audit records (uploaded to the first) say where the token came from.
        await until('the agent’s audit record of the upstream token', async () => {
          const events = await first.ctx.store.audit.list({ action: 'agent.token.served', limit: 100 });
          return events.find((e) => e.detail['source'] === 'upstream' && e.detail['audience'] === 'https://storage.azure.com');
        });
      });

      it('token file: 0600, no newline, the outbound assertion (iss, sub, aud, an hour, kid in the exported JWKS); <file>.env names the upstream', async () => {
        await untilTrue('the token file', () => agent.federation.tokenFiles !== undefined && agent.federation.tokenFiles.writes > 0, 20_000, 50);
        assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
        assert.equal(statSync(`${tokenFile}.env`).mode & 0o777, 0o600);
        const assertion = readFileSync(tokenFile, 'utf8');
        assert.doesNotMatch(assertion, /\s/);
        const jwks = JSON.parse(readFileSync(join(exportDir, 'openid', 'v1', 'jwks'), 'utf8')) as { keys: Record<string, unknown>[] };
        const { payload, protectedHeader } = await jwtVerify(assertion, createLocalJWKSet(jwks as never), {
          issuer,
          audience: AUDIENCE,
          algorithms: ['RS256'],
        });
        assert.equal(payload.sub, host.uami.objectId);
        assert.deepEqual(payload.aud, [AUDIENCE]);
        assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 3600);
        assert.equal(payload.nbf, payload.iat);
        assert.equal(typeof payload.jti, 'string');
        assert.equal(protectedHeader.typ, 'JWT');
        assert.deepEqual(parseDotenv(readFileSync(`${tokenFile}.env`, 'utf8')), {
          AZURE_CLIENT_ID: upstream.clientId,
          AZURE_TENANT_ID: 'adfs',
          AZURE_AUTHORITY_HOST: second.url,
          AZURE_FEDERATED_TOKEN_FILE: tokenFile,
        });
      });

      it('token file: unchanged WorkloadIdentityCredential (environment from <file>.env only) gets the second’s token and reads the secret', async () => {
        const env = parseDotenv(readFileSync(`${tokenFile}.env`, 'utf8'));
        const result = await client(WORKLOAD_CLIENT, { credential: 'workload', vault: vaultUri, name: 'db-password' }, appEnv(env));
        assert.ok(result.ok, JSON.stringify(result));
        assert.equal(result.value, 'upstream-s3cret');
        assert.equal(result.claims?.['iss'], `${second.url}/${second.tenantId}/`);
        assert.equal(result.claims?.['oid'], upstream.principalId);
      });

      it('an identity not assigned to the host gets no assertion, even when it is linked', async () => {
        const other = await first.ctx.store.resources.get(host.other.id);
        assert.ok(other !== undefined);
        await linkOnFirst(other.name, host.resourceGroup, upstream.clientId);
        await assert.rejects(
          agent.upstream.federationAssertion(agent.credential.current.key, host.other.objectId),
          (err: unknown) => err instanceof UpstreamError && err.kind === 'identity-not-found' && err.status === 404,
        );
        // An assigned identity without a link gets none either (409 NotFederated).
        await assert.rejects(
          agent.upstream.federationAssertion(agent.credential.current.key, host.uami2.objectId),
          (err: unknown) => err instanceof UpstreamError && err.status === 409,
        );
        const imds = await askImds('https://vault.azure.net', host.other.clientId);
        assert.equal(imds.status, 400);
        assert.equal(imds.json()['error_description'], 'Identity not found');
      });

      it('an upstream refusal reaches the caller with the upstream’s error and AADSTS code, never the assertion', async () => {
        // uami2 linked to a client id the second does not know.
        await linkOnFirst(host.uami2.name, host.resourceGroup, '0b7c5bd4-5a49-4b8e-9c3a-1c1f0e6d2a11');
        const listed = await openmsiJson<{ properties: { subject: string } }[]>(first, ['identity', 'federation', 'list', '-g', host.resourceGroup]);
        assert.deepEqual(listed.map((l) => l.properties.subject).sort(), [host.uami.objectId, host.uami2.objectId, host.other.objectId].sort());
        const ask = () => askImds('https://vault.azure.net', host.uami2.clientId);
        const refused = await until('the relinked identity to be refused upstream', async () => {
          const answer = await ask();
          return answer.status === 200 ? undefined : answer;
        });
        assert.equal(refused.status, 400, refused.body);
        assert.equal(refused.json()['error'], 'unauthorized_client');
        assert.match(String(refused.json()['error_description']), /AADSTS700016/);
        assert.doesNotMatch(refused.body, /eyJ/);
      });

      it('unlink: the identity’s tokens come from openmsi again (the upstream’s cached tokens are dropped)', async () => {
        const result = await openmsi(first, ['identity', 'federation', 'unlink', '--identity-name', host.uami.name, '-g', host.resourceGroup]);
        assert.equal(result.code, 0, result.stderr);
        const shown = await openmsi(first, ['identity', 'federation', 'show', '--identity-name', host.uami.name, '-g', host.resourceGroup]);
        assert.notEqual(shown.code, 0);
        const token = await until('openmsi’s own token for the unlinked identity', async () => {
          const answer = await askImds('https://storage.azure.com', host.uami.clientId);
          if (answer.status !== 200) return undefined;
          const claims = decodeJwt(String(answer.json()['access_token']));
          return claims['iss'] === `${first.url}/${first.tenantId}/` ? claims : undefined;
        });
        assert.equal(token['oid'], host.uami.objectId);
        await assert.rejects(
          agent.upstream.federationAssertion(agent.credential.current.key, host.uami.objectId),
          (err: unknown) => err instanceof UpstreamError && err.status === 409,
        );
      });

      it(
        '`openmsi agent --upstream-ca-file --federated-token-file` (the CLI, as an operator runs it) writes the file and serves the upstream token',
        { skip: backend !== 'sqlite' && 'the CLI wiring is the same on every backend' },
        async () => {
          await openmsiJson(first, ['group', 'create', '-n', 'cli-hosts', '-l', 'local']);
          const cliIdentity = await openmsiJson<CreatedIdentity>(first, ['identity', 'create', '-n', 'cli-app', '-g', 'cli-hosts']);
          const joinToken = await openmsiJson<{ token: string }>(first, ['host', 'join-token', 'create', '-g', 'cli-hosts', '-n', 'cli-01']);
          await openmsiJson(first, ['vm', 'identity', 'assign', '-g', 'cli-hosts', '-n', 'cli-01', '--identities', 'cli-app']);
          const printed = await linkOnFirst<{ federatedCredential: UpstreamCredential }>('cli-app', 'cli-hosts', upstream.clientId);
          // Without --audiences: the CLI's default (api://AzureADTokenExchange).
          await trustOnSecond({ ...printed.federatedCredential, audiences: undefined });
          const file = join(first.dataDir, 'cli-token');
          const process_ = await startAgentProcess(first, {
            joinToken: joinToken.token,
            extra: ['--upstream-ca-file', second.caPath, '--federated-token-file', `${cliIdentity.clientId}=${file}`],
          });
          try {
            await untilTrue('the CLI agent’s token file', () => existsSync(`${file}.env`), 20_000, 100);
            assert.equal(decodeJwt(readFileSync(file, 'utf8')).sub, cliIdentity.principalId);
            const answer = await askImds('https://vault.azure.net', cliIdentity.clientId, process_.port);
            assert.equal(answer.status, 200, answer.body);
            assert.equal(decodeJwt(String(answer.json()['access_token']))['iss'], `${second.url}/${second.tenantId}/`);
            assert.doesNotMatch(process_.output(), /eyJ[A-Za-z0-9_-]{20,}\.eyJ/);
          } finally {
            await process_.stop();
            removeDir(process_.dataDir);
          }
        },
      );

      it('no request left the machine', () => {
        assert.deepEqual(proxy.attempts, []);
      });

      async function fetchJson(url: string): Promise<unknown> {
        const { httpCall } = await import('../../../src/shared/http-client.js');
        const answer = await httpCall(url, { timeoutMs: 5000, ca: first.caPem });
        assert.equal(answer.status, 200, answer.text);
        return JSON.parse(answer.text) as unknown;
      }
    },
  );
