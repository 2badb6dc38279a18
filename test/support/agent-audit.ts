/**
 * The agent audit fixtures the folding, upload-contract and upload-route suites share: one refused IMDS request
 * as the agent records it, and the folded record of three of them as an agent uploads it.
 */
import type { AgentAuditEvent } from '../../src/agent/contracts.js';

/** A refused IMDS token request (an invalid resource) from a known local process. */
export function refusedImdsEvent(overrides: Partial<AgentAuditEvent> = {}): AgentAuditEvent {
  return {
    decision: 'refused',
    surface: 'imds',
    audience: 'https://vault.azure.net',
    caller: { address: '127.0.0.1', pid: 42, uid: 1000, exe: '/usr/bin/python3' },
    status: 400,
    reason: 'invalid_resource',
    ...overrides,
  };
}

/**
 * An upload record (a plain object, so a test can break any field): three such refusals folded, the first 2 s
 * and the last 1 s before `now`.
 */
export function uploadRecord(id: string, now: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, at: now - 2000, lastAt: now - 1000, count: 3, ...refusedImdsEvent(), ...overrides };
}
