/**
 * Explicit stand-ins for the seams whose real implementations live in their own modules (audit pipeline,
 * caller attribution, `openmsi run` sessions). `createAgent` uses them only when the caller passes nothing.
 */
import type { AgentAuditSink, CallerResolver, SessionLookup } from './contracts.js';

/** Knows no sessions: only the machine-wide secret authenticates App Service requests. */
export const noSessions: SessionLookup = { bySecret: () => undefined };

/** Drops every audit event (records nothing, logs nothing). */
export const discardingAuditSink: AgentAuditSink = { record: () => undefined };

/** Reports the peer address only (no pid/uid/exe attribution). */
export const addressOnlyCallerResolver: CallerResolver = { callerOf: (socket) => ({ address: socket.remoteAddress ?? '' }) };
