import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { canonicalAddress, isLoopbackAddress, parseProcNetTcp, ProcCallerResolver } from '../../../src/agent/caller.js';

const linux = process.platform === 'linux';

/** A child node process that connects to host:port and holds the connection until its stdin closes. */
function connectFromChild(host: string, port: number) {
  const script = `
    const s = require('node:net').connect(${String(port)}, ${JSON.stringify(host)}, () => process.stdout.write('connected\\n'));
    s.on('error', (e) => { console.error(e.message); process.exit(2); });
    process.stdin.on('end', () => process.exit(0)); process.stdin.resume();`;
  return spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
}

async function listen(host: string): Promise<{ server: Server; port: number; accepted: Promise<Socket> }> {
  let accept!: (s: Socket) => void;
  const accepted = new Promise<Socket>((resolve) => (accept = resolve));
  const server = createServer(accept);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port, accepted };
}

async function resolveChild(
  host: string,
): Promise<{ childPid: number; caller: Awaited<ReturnType<ProcCallerResolver['resolved']>>; ms: number; again: unknown; first: unknown }> {
  const { server, port, accepted } = await listen(host);
  const child = connectFromChild(host, port);
  try {
    const socket = await accepted;
    const resolver = new ProcCallerResolver();
    const started = performance.now();
    const first = { ...resolver.callerOf(socket) };
    const caller = await resolver.resolved(socket);
    const ms = performance.now() - started;
    return { childPid: child.pid!, caller: { ...caller }, ms, again: resolver.callerOf(socket) === caller, first };
  } finally {
    child.stdin.end();
    await new Promise((resolve) => child.once('exit', resolve));
    server.close();
  }
}

describe('caller attribution from /proc', () => {
  it('parses /proc/net/tcp and tcp6 rows, IPv4-mapped addresses as IPv4', () => {
    const tcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:C452 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 -1',
      '   1: garbage',
    ].join('\n');
    assert.deepEqual(parseProcNetTcp(tcp), [
      { localAddress: '127.0.0.1', localPort: 0xc452, remoteAddress: '127.0.0.1', remotePort: 8080, uid: 1000, inode: 4242 },
    ]);
    const tcp6 = [
      '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000000000000000000001000000:9C40 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 77 1',
    ].join('\n');
    assert.deepEqual(parseProcNetTcp(tcp6), [
      { localAddress: '0:0:0:0:0:0:0:1', localPort: 40000, remoteAddress: '127.0.0.1', remotePort: 8080, uid: 0, inode: 77 },
    ]);
    assert.equal(canonicalAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(canonicalAddress('::1'), '0:0:0:0:0:0:0:1');
    assert.equal(canonicalAddress('fe80::1:0:0:a'), 'fe80:0:0:0:1:0:0:a');
    assert.equal(canonicalAddress('not an address'), undefined);
    assert.ok(isLoopbackAddress('127.0.0.2') && isLoopbackAddress('::1') && isLoopbackAddress('::ffff:127.0.0.1'));
    assert.ok(!isLoopbackAddress('10.0.0.1') && !isLoopbackAddress('::2'));
  });

  it('resolves the pid, uid and executable of a child process connected over 127.0.0.1', { skip: linux ? false : 'Linux only' }, async (t) => {
    const { childPid, caller, ms, again, first } = await resolveChild('127.0.0.1');
    t.diagnostic(`lookup took ${ms.toFixed(1)} ms`);
    assert.deepEqual(first, { address: '127.0.0.1' });
    assert.equal(again, true, 'cached per socket: the same object');
    assert.equal(caller.pid, childPid);
    assert.equal(caller.uid, process.getuid!());
    assert.equal(caller.exe, realpathSync(process.execPath));
    assert.ok(ms < 2000, `lookup took ${ms.toFixed(0)} ms`);
  });

  it('resolves a caller over ::1 too, where the host has IPv6', { skip: linux ? false : 'Linux only' }, async (t) => {
    let result;
    try {
      result = await resolveChild('::1');
    } catch (err) {
      t.skip(`no IPv6 loopback here (${(err as Error).message})`);
      return;
    }
    assert.equal(result.caller.address, '0:0:0:0:0:0:0:1');
    assert.equal(result.caller.pid, result.childPid);
    assert.equal(result.caller.exe, realpathSync(process.execPath));
  });

  it('attributes a socket held by a process and its child (caught between fork and exec) to the parent', async () => {
    // A /proc of our own making: pid 100 holds socket:[555], its child 200 holds it too, 300 is unrelated.
    const proc = mkdtempSync(join(tmpdir(), 'openmsi-fakeproc-'));
    try {
      mkdirSync(join(proc, 'net'));
      const header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
      writeFileSync(join(proc, 'net', 'tcp'), header + '   0: 0100007F:C350 0100007F:C396 01 00000000:00000000 00:00000000 00000000  1234        0 555 1\n');
      const pid = (n: number, ppid: number, exe: string, links: string[]): void => {
        mkdirSync(join(proc, String(n), 'fd'), { recursive: true });
        writeFileSync(join(proc, String(n), 'stat'), `${String(n)} (a (weird) name) S ${String(ppid)} 1 1 0 -1\n`);
        symlinkSync(exe, join(proc, String(n), 'exe'));
        links.forEach((link, i) => symlinkSync(link, join(proc, String(n), 'fd', String(i))));
      };
      pid(100, 50, '/usr/bin/parent', ['/dev/null', 'socket:[555]']);
      pid(200, 100, '/usr/bin/parent', ['socket:[555]']);
      pid(300, 1, '/usr/bin/other', ['socket:[999]']);
      const socket = { remoteAddress: '127.0.0.1', remotePort: 50000, localAddress: '127.0.0.1', localPort: 50070 } as unknown as Socket;
      const caller = await new ProcCallerResolver({ procRoot: proc, platform: 'linux' }).resolved(socket);
      assert.deepEqual({ ...caller }, { address: '127.0.0.1', uid: 1234, pid: 100, exe: '/usr/bin/parent' });
      // The scan budget bounds the work: with room for one link only, nothing is found, quietly.
      const starved = await new ProcCallerResolver({ procRoot: proc, platform: 'linux', maxFdEntries: 1 }).resolved(socket);
      assert.deepEqual({ ...starved }, { address: '127.0.0.1', uid: 1234 });
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });

  it('gives up quietly where it cannot resolve: not Linux, or a peer that has already gone', async () => {
    const { server, port, accepted } = await listen('127.0.0.1');
    const child = connectFromChild('127.0.0.1', port);
    const socket = await accepted;
    try {
      const elsewhere = new ProcCallerResolver({ platform: 'darwin' });
      assert.deepEqual(await elsewhere.resolved(socket), { address: '127.0.0.1' });
      const noProc = new ProcCallerResolver({ procRoot: '/nonexistent-proc' });
      assert.deepEqual(await noProc.resolved(socket), { address: '127.0.0.1' });
    } finally {
      child.stdin.end();
      await new Promise((resolve) => child.once('exit', resolve));
    }
    // The peer is gone: its row is in TIME_WAIT or absent, owned by no process.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const late = await new ProcCallerResolver().resolved(socket);
    assert.equal(late.pid, undefined);
    assert.equal(late.address, '127.0.0.1');
    socket.destroy();
    server.close();
  });
});
