/**
 * Seams inside the agent: the HTTP surfaces (server) depend on these, and their implementations live in
 * their own modules (audit pipeline, caller attribution, `openmsi run` sessions).
 */
import type { Socket } from 'node:net';
import type { AgentAuditRecord, AgentCaller } from '../shared/host-protocol.js';

/** One outcome to audit, before folding: everything of {@link AgentAuditRecord} but id/count/times. */
export type AgentAuditEvent = Omit<AgentAuditRecord, 'id' | 'at' | 'lastAt' | 'count'>;

/** Takes audit events on the hot path: never blocks, never throws, never touches disk synchronously. */
export interface AgentAuditSink {
  record(event: AgentAuditEvent): void;
}

/** Who is on the other end of a loopback TCP connection. Cached per socket; resolved off the hot path. */
export interface CallerResolver {
  /** What is known now (at least the address); starts a background lookup the first time it sees a socket. */
  callerOf(socket: Socket): AgentCaller;
}

/** A per-process grant made by `openmsi run`: its secret names only these identities. */
export interface AgentSession {
  id: string;
  /** Identity selectors as the user gave them (name, client id, object id or resource id), resolved by the agent. */
  identities: string[];
}

export interface SessionLookup {
  /** The live session whose secret this is (compared in constant time), or undefined. */
  bySecret(secret: string): AgentSession | undefined;
}
