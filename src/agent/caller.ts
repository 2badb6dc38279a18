/**
 * Caller attribution for loopback TCP: who is on the other end of a socket the agent accepted.
 *
 * On Linux the peer's own socket is the row of `/proc/net/tcp` (or `tcp6`) whose local address is our
 * socket's remote address and whose remote address is our local address; that row gives the peer's uid and
 * the socket's inode. The process holding the inode is found by scanning `/proc/<pid>/fd/*` for the link
 * `socket:[<inode>]`, and its executable is the link `/proc/<pid>/exe`.
 *
 * All of this runs in the background, once per socket (the result is cached on the socket in a WeakMap),
 * batched (one read of the tables and one fd scan serve every socket queued meanwhile) and bounded (at most
 * `maxFdEntries` links read per scan, newest processes first). Where it does not resolve it gives up
 * quietly: not Linux, not loopback, the peer already gone, a process of another user whose fds we may not
 * read (the uid is still known then), another network namespace.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { isIPv4, isIPv6, type Socket } from 'node:net';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { AGENT_CALLER } from '../shared/config.js';
import type { AgentCaller } from '../shared/host-protocol.js';
import type { Logger } from '../shared/logger.js';
import type { CallerResolver } from './contracts.js';

export interface CallerResolverOptions {
  /** Default `/proc` (tests may point it elsewhere). */
  procRoot?: string;
  /** Default `process.platform`; lookups only run on `linux`. */
  platform?: NodeJS.Platform;
  /** The most `/proc/<pid>/fd` links read per scan. */
  maxFdEntries?: number;
  logger?: Pick<Logger, 'debug'>;
}

/** One row of `/proc/net/tcp{,6}`, addresses in the form {@link canonicalAddress} gives. */
export interface ProcTcpRow {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  uid: number;
  inode: number;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** One 32-bit word of a /proc/net address (hex of the word as stored: host byte order) as 4 network-order bytes. */
function wordBytes(hex: string): number[] {
  const bytes = [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return LITTLE_ENDIAN ? bytes.reverse() : bytes;
}

/** `0100007F:1F90` (tcp) or 32 hex digits + port (tcp6) as address and port. */
export function parseProcAddress(field: string): { address: string; port: number } | undefined {
  const [hex, portHex] = field.split(':');
  if (hex === undefined || portHex === undefined || !/^[0-9A-Fa-f]+$/.test(hex)) return undefined;
  const port = parseInt(portHex, 16);
  if (hex.length === 8) return { address: wordBytes(hex).join('.'), port };
  if (hex.length !== 32) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < 32; i += 8) bytes.push(...wordBytes(hex.slice(i, i + 8)));
  return { address: bytesToAddress(bytes), port };
}

function bytesToAddress(bytes: number[]): string {
  // An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 address.
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(':');
}

/**
 * An address in one comparable form: IPv4 (mapped or not) dotted, IPv6 as eight uncompressed lowercase
 * groups without leading zeros. Undefined for what is not an address.
 */
export function canonicalAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) return undefined;
  let text = address.toLowerCase().split('%')[0]!;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, -v4[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const groups = [...headGroups, ...fill, ...tailGroups].map((g) => parseInt(g, 16).toString(16));
  if (groups.length === 8 && groups.every((g) => g !== 'NaN')) {
    const bytes: number[] = [];
    for (const g of groups) bytes.push(parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff);
    return bytesToAddress(bytes);
  }
  return undefined;
}

/** Whether a canonical address is loopback (127/8 or ::1). */
export function isLoopbackAddress(address: string | undefined): boolean {
  const a = canonicalAddress(address);
  return a !== undefined && (a.startsWith('127.') || a === '0:0:0:0:0:0:0:1');
}

/** The rows of a `/proc/net/tcp{,6}` table (the header and malformed lines skipped). */
export function parseProcNetTcp(text: string): ProcTcpRow[] {
  const rows: ProcTcpRow[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = parseProcAddress(f[1]!);
    const remote = parseProcAddress(f[2]!);
    const uid = Number(f[7]);
    const inode = Number(f[9]);
    if (local === undefined || remote === undefined || !Number.isInteger(uid) || !Number.isInteger(inode)) continue;
    rows.push({ localAddress: local.address, localPort: local.port, remoteAddress: remote.address, remotePort: remote.port, uid, inode });
  }
  return rows;
}

interface Job {
  caller: AgentCaller;
  /** The peer's end (our socket's remote end) and ours, canonical. */
  peerAddress: string;
  peerPort: number;
  ourAddress: string;
  ourPort: number;
  done: () => void;
}

/** Sockets waiting for a lookup at most; more are left at their address. */
const MAX_QUEUED = 1024;

export class ProcCallerResolver implements CallerResolver {
  readonly #callers = new WeakMap<Socket, AgentCaller>();
  readonly #lookups = new WeakMap<Socket, Promise<AgentCaller>>();
  readonly #proc: string;
  readonly #enabled: boolean;
  readonly #maxFdEntries: number;
  readonly #log: CallerResolverOptions['logger'];
  #queue: Job[] = [];
  #running = false;

  constructor(options: CallerResolverOptions = {}) {
    this.#proc = options.procRoot ?? '/proc';
    this.#enabled = (options.platform ?? process.platform) === 'linux';
    this.#maxFdEntries = options.maxFdEntries ?? AGENT_CALLER.maxFdEntries;
    this.#log = options.logger;
  }

  /**
   * What is known now: at least the address. The first call for a socket starts the background lookup; the
   * object returned is the one that lookup fills in (pid, uid, exe), so a reader that looks again later (the
   * audit pipeline folds a window after it ends) sees the result. Call it when a connection is accepted to
   * give the lookup a head start on the request.
   */
  callerOf(socket: Socket): AgentCaller {
    const known = this.#callers.get(socket);
    if (known !== undefined) return known;
    const address = canonicalAddress(socket.remoteAddress) ?? socket.remoteAddress ?? 'unknown';
    const caller: AgentCaller = { address };
    this.#callers.set(socket, caller);
    const ourAddress = canonicalAddress(socket.localAddress);
    const { remotePort, localPort } = socket;
    if (
      !this.#enabled ||
      !isLoopbackAddress(address) ||
      ourAddress === undefined ||
      remotePort === undefined ||
      localPort === undefined ||
      this.#queue.length >= MAX_QUEUED
    ) {
      this.#lookups.set(socket, Promise.resolve(caller));
      return caller;
    }
    this.#lookups.set(
      socket,
      new Promise<AgentCaller>((resolve) => {
        this.#queue.push({ caller, peerAddress: address, peerPort: remotePort, ourAddress, ourPort: localPort, done: () => resolve(caller) });
        if (!this.#running) {
          this.#running = true;
          setImmediate(() => void this.#run());
        }
      }),
    );
    return caller;
  }

  /** Resolves with the caller once the background lookup for `socket` is over (resolved or given up). */
  resolved(socket: Socket): Promise<AgentCaller> {
    if (!this.#callers.has(socket)) this.callerOf(socket);
    return this.#lookups.get(socket)!;
  }

  async #run(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const jobs = this.#queue;
        this.#queue = [];
        try {
          await this.#lookupBatch(jobs);
        } catch (err) {
          this.#log?.debug({ err }, 'caller lookup failed');
        } finally {
          for (const job of jobs) job.done();
        }
      }
    } finally {
      this.#running = false;
    }
  }

  async #lookupBatch(jobs: Job[]): Promise<void> {
    const rows = [...(await this.#table('tcp')), ...(await this.#table('tcp6'))];
    const byInode = new Map<number, Job[]>();
    for (const job of jobs) {
      const row = rows.find(
        (r) => r.localPort === job.peerPort && r.remotePort === job.ourPort && r.localAddress === job.peerAddress && r.remoteAddress === job.ourAddress,
      );
      if (row === undefined) continue; // gone already, or another network namespace
      job.caller.uid = row.uid;
      if (row.inode === 0) continue; // closing: no longer owned by a process
      const waiting = byInode.get(row.inode) ?? [];
      waiting.push(job);
      byInode.set(row.inode, waiting);
    }
    if (byInode.size === 0) return;
    const owners = await this.#owners(new Set(byInode.keys()));
    for (const [inode, pid] of owners) {
      let exe: string | undefined;
      try {
        exe = await readlink(join(this.#proc, String(pid), 'exe'));
      } catch {
        exe = undefined; // another user's process, or gone
      }
      for (const job of byInode.get(inode) ?? []) {
        job.caller.pid = pid;
        if (exe !== undefined) job.caller.exe = exe;
      }
    }
  }

  async #table(name: 'tcp' | 'tcp6'): Promise<ProcTcpRow[]> {
    try {
      return parseProcNetTcp(await readFile(join(this.#proc, 'net', name), 'utf8'));
    } catch {
      return []; // no IPv6, or no /proc
    }
  }

  /** inode → pid for the inodes wanted, scanning newest processes first, at most maxFdEntries links. */
  async #owners(wanted: Set<number>): Promise<Map<number, number>> {
    const found = new Map<number, number>();
    const targets = new Map<string, number>([...wanted].map((inode) => [`socket:[${String(inode)}]`, inode]));
    let budget = this.#maxFdEntries;
    const pids = (await readdir(this.#proc))
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((a, b) => b - a);
    for (const pid of pids) {
      if (found.size === targets.size || budget <= 0) break;
      const fdDir = join(this.#proc, String(pid), 'fd');
      let fds: string[];
      try {
        fds = await readdir(fdDir);
      } catch {
        continue; // another user's process (EACCES), or gone
      }
      const slice = fds.slice(0, budget);
      budget -= slice.length;
      const links = await Promise.all(slice.map((fd) => readlink(join(fdDir, fd)).catch(() => '')));
      for (const link of links) {
        const inode = targets.get(link);
        if (inode !== undefined && !found.has(inode)) found.set(inode, pid);
      }
    }
    if (budget <= 0 && found.size < targets.size) this.#log?.debug({ wanted: targets.size, found: found.size }, 'caller lookup: fd scan budget spent');
    // A socket held by a process and its parent is the parent's: a child caught between fork and exec (or
    // one that inherited the socket) also holds it, and the newest-first scan meets the child first.
    for (const [inode, pid] of found) {
      let owner = pid;
      for (let depth = 0; depth < 8; depth++) {
        const parent = await this.#parentOf(owner);
        if (parent === undefined || parent <= 1 || !(await this.#holds(parent, `socket:[${String(inode)}]`))) break;
        owner = parent;
      }
      found.set(inode, owner);
    }
    return found;
  }

  async #parentOf(pid: number): Promise<number | undefined> {
    try {
      const stat = await readFile(join(this.#proc, String(pid), 'stat'), 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      return Number.isInteger(ppid) ? ppid : undefined;
    } catch {
      return undefined;
    }
  }

  async #holds(pid: number, link: string): Promise<boolean> {
    const fdDir = join(this.#proc, String(pid), 'fd');
    try {
      const fds = await readdir(fdDir);
      const links = await Promise.all(fds.map((fd) => readlink(join(fdDir, fd)).catch(() => '')));
      return links.includes(link);
    } catch {
      return false;
    }
  }
}
