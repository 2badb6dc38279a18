/**
 * `openmsi agent --join-token-file PATH` as a real process against the real authority: a host the authority
 * refuses (credential revoked; host deleted and created again) is enrolled again from a new join token written
 * into the file, and the same process serves tokens again within a bounded wait; a bad token in the file is
 * refused and logged without the token; a saved credential refused at start is replaced the same way; and
 * `--join-token` with `--join-token-file` is refused.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { agentRequest, openmsi, openmsiJson, removeDir, startAgentProcess, type AgentProcess } from '../support/agent-process.js';
import { until } from '../support/poll.js';
import { agentFiles, type HostCredentialRecord } from '../../src/agent/host-credential.js';

const GROUP = 'reenrol-rg';
const HOST = 'build-01';
const TOKEN_PATH = '/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/';

function claimsOf(accessToken: string): { oid?: string } {
  return JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as { oid?: string };
}

describe('openmsi agent --join-token-file: re-enrolment without a restart', { timeout: 240_000 }, () => {
  let t: TestAuthority;
  let agent: AgentProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'openmsi-join-file-'));
  const tokenFile = join(dir, 'join-token');
  const dataDir = join(dir, 'agent');

  /** Replaces the file atomically, as a projected secret is updated. */
  const writeToken = (token: string) => {
    writeFileSync(`${tokenFile}.tmp`, `${token}\n`);
    renameSync(`${tokenFile}.tmp`, tokenFile);
  };
  const joinToken = async () => (await openmsiJson<{ token: string }>(t, ['host', 'join-token', 'create', '-g', GROUP, '-n', HOST])).token;
  const systemPrincipal = async () => {
    await openmsiJson(t, ['vm', 'identity', 'assign', '-g', GROUP, '-n', HOST, '--identities', '[system]']);
    return (await openmsiJson<{ principalId: string }>(t, ['vm', 'identity', 'show', '-g', GROUP, '-n', HOST])).principalId;
  };
  const keyId = () => (JSON.parse(readFileSync(agentFiles(dataDir).credential, 'utf8')) as HostCredentialRecord).keyId;
  /** The agent's answer for the system identity: the token's oid when it serves one, else the status. */
  const imds = async (port: number): Promise<{ status: number; oid?: string }> => {
    const answer = await agentRequest(port, TOKEN_PATH, { headers: { Metadata: 'true' } });
    if (answer.status !== 200) return { status: answer.status };
    return { status: 200, ...claimsOf((JSON.parse(answer.body) as { access_token: string }).access_token) };
  };
  const untilServes = (port: number, oid: string, what: string) => until(what, async () => ((await imds(port)).oid === oid ? true : undefined), 30_000, 250);
  const untilRefused = (port: number, what: string) => until(what, async () => ((await imds(port)).status !== 200 ? true : undefined), 30_000, 250);

  before(async () => {
    t = await startTestAuthority();
    await openmsiJson(t, ['group', 'create', '-n', GROUP, '-l', 'local']);
  });
  after(async () => {
    await agent?.stop();
    await t?.close();
    removeDir(dir);
  });

  it('refuses --join-token with --join-token-file, before anything starts', async () => {
    const run = await openmsi(t, ['agent', '--data-dir', dataDir, '--join-token', 'jt-a', '--join-token-file', tokenFile, '--port', '0']);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /--join-token and --join-token-file: give one, not both/);
    assert.ok(!existsSync(agentFiles(dataDir).credential));
  });

  it('enrols from the file, and again from a new token after a revocation and after the host is deleted and created again', async () => {
    writeToken(await joinToken());
    let principal = await systemPrincipal();
    agent = await startAgentProcess(t, { dataDir, extra: ['--join-token-file', tokenFile, '--log-format', 'json'] });
    const { port } = agent;
    await untilServes(port, principal, 'a token from the agent enrolled from the file');
    const first = keyId();

    // Revoked: refused; a bad token in the file is refused by the authority and logged without the token.
    await openmsiJson(t, ['host', 'credential', 'revoke', '--key-id', first]);
    await untilRefused(port, 'the agent to stop serving the revoked host');
    const bad = `bad-join-token-${String(Date.now())}`;
    writeToken(bad);
    await until('the bad token logged as refused', () => (agent?.output().includes('the authority refused the join token') ? true : undefined));
    assert.ok(!agent.output().includes(bad), 'the token is never logged');
    assert.notEqual((await imds(port)).status, 200, 'still refused');
    assert.equal(keyId(), first, 'the refused credential is kept until an enrolment succeeds');

    // A new token for this machine: the same process enrols again and serves, with a new key, saved 0600.
    const second = await joinToken();
    writeToken(second);
    await untilServes(port, principal, 'tokens again after re-enrolment, without a restart');
    const files = agentFiles(dataDir);
    assert.notEqual(keyId(), first);
    assert.equal(statSync(files.credential).mode & 0o777, 0o600);
    assert.equal(statSync(files.key(keyId())).mode & 0o777, 0o600);
    assert.ok(!existsSync(files.key(first)), 'the refused key is removed');
    assert.ok(!agent.output().includes(second));

    // Deleted and created again (a new system identity): refused, then enrolled again from the file.
    const deleted = await openmsi(t, ['host', 'delete', '-g', GROUP, '-n', HOST, '--yes']);
    assert.equal(deleted.code, 0, deleted.stderr);
    await untilRefused(port, 'the agent to stop serving the deleted host');
    writeToken(await joinToken());
    principal = await systemPrincipal();
    await untilServes(port, principal, "the recreated host's system identity");
    assert.equal(agent.child.exitCode, null, 'the same process throughout');
  });

  it('replaces a saved credential the authority refuses at start', async () => {
    await agent?.stop();
    agent = undefined;
    await openmsiJson(t, ['host', 'credential', 'revoke', '--key-id', keyId()]);
    writeToken(await joinToken());
    const principal = (await openmsiJson<{ principalId: string }>(t, ['vm', 'identity', 'show', '-g', GROUP, '-n', HOST])).principalId;
    // startAgentProcess waits until the agent answers: only after it enrolled again from the file.
    agent = await startAgentProcess(t, { dataDir, extra: ['--join-token-file', tokenFile, '--log-format', 'json'] });
    await untilServes(agent.port, principal, 'tokens after the refused saved credential was replaced');
    assert.match(agent.output(), /host enrolled again from the join token file/);
  });
});
