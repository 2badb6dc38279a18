/**
 * {@link JoinTokenFileWatch} decisions, driven through `check()`: the file is read only while the host is
 * refused; a token is tried once (a refused one again only when the file changes); a transient failure
 * (authority unavailable) is tried again; the token is never logged. The real process: join-token-file.test.ts.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JoinTokenFileWatch, readJoinTokenFile } from '../../src/agent/join-token-file.js';
import { joinTokenDigest } from '../../src/agent/host-credential.js';
import { UpstreamError } from '../../src/agent/upstream-error.js';
import { captureLogs } from '../support/logs.js';

describe('join token file watch', () => {
  const dir = mkdtempSync(join(tmpdir(), 'openmsi-join-watch-'));
  const path = join(dir, 'token');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a trimmed token; a missing or blank file holds none', () => {
    assert.equal(readJoinTokenFile(join(dir, 'absent')), undefined);
    writeFileSync(path, ' \n');
    assert.equal(readJoinTokenFile(path), undefined);
    writeFileSync(path, 'tok-1\n');
    assert.equal(readJoinTokenFile(path), 'tok-1');
  });

  it('enrols only while refused, never with the token already used, a refused token once until the file changes', async () => {
    const { logger, lines } = captureLogs();
    let refused = false;
    const tried: string[] = [];
    let answer: () => void = () => undefined;
    const watch = new JoinTokenFileWatch({
      path,
      pollMs: 60_000,
      usedDigest: joinTokenDigest('used-token'),
      refused: () => refused,
      logger,
      enrol: async (token) => {
        tried.push(token);
        answer();
        await Promise.resolve();
      },
    });
    writeFileSync(path, 'secret-new-1');
    await watch.check();
    assert.deepEqual(tried, [], 'serving: the file is not acted on');

    refused = true;
    writeFileSync(path, 'used-token');
    await watch.check();
    assert.deepEqual(tried, [], 'the token the credential came from is not tried again');

    answer = () => {
      throw new UpstreamError('refused', 'the authority refused the call (401 InvalidJoinToken: expired or used)', { status: 401 });
    };
    writeFileSync(path, 'secret-bad-1');
    await watch.check();
    await watch.check();
    assert.deepEqual(tried, ['secret-bad-1'], 'a refused token is tried once');

    answer = () => {
      throw new UpstreamError('unavailable', 'the authority answered 503', { status: 503 });
    };
    writeFileSync(path, 'secret-new-2');
    await watch.check();
    await watch.check();
    assert.deepEqual(tried, ['secret-bad-1', 'secret-new-2', 'secret-new-2'], 'unavailable: tried again');

    answer = () => undefined;
    await watch.check();
    await watch.check();
    assert.deepEqual(tried, ['secret-bad-1', 'secret-new-2', 'secret-new-2', 'secret-new-2'], 'enrolled: not again');
    assert.ok(lines.some((l) => l.includes('refused the join token')));
    assert.ok(!lines.some((l) => l.includes('secret-')), 'no token in any log line');
  });
});
