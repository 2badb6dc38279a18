import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { HostErrors } from '../../directory/hosts.js';
import {
  AGENT_AUDIT_FIELD_LIMITS as LIMITS,
  AGENT_SURFACES,
  HOST_API_PATHS,
  type AgentAuditRecord,
  type AgentSurface,
  type AuditUploadResult,
} from '../../shared/host-protocol.js';
import { isGuid } from '../../shared/ids.js';
import { CONTROL_CHARACTER } from '../../shared/resource.js';
import type { AuditEvent } from '../../store/types.js';
import { authenticateHost, type AuthenticatedHost } from './authenticate.js';
import { bodyObject, HOST_AUDIT_BODY_LIMIT, MAX_AUDIT_RECORDS, type HostApiContext } from './common.js';

const SURFACES: ReadonlySet<string> = new Set(AGENT_SURFACES);
/** Epoch milliseconds no record may be later than: year 9999 (anything beyond is not a time). */
const MAX_TIME = 253_402_300_799_999;
/** The action of the event that counts the records of an upload the authority refused. */
export const AUDIT_DROPPED_ACTION = 'agent.audit.dropped';
/** The most distinct refusal reasons an `agent.audit.dropped` event lists (the count covers them all). */
const MAX_DROP_REASONS = 10;

/**
 * `POST /openmsi/hosts/audit` `AuditUpload` (host assertion) → 200 `{ accepted, stored, refused }`: at most
 * {@link MAX_AUDIT_RECORDS} records. Each record is checked against the contract on its own: the valid ones
 * are stored as the host's tenant's audit events `agent.token.served` / `agent.token.refused`, actor = the
 * identity's object id (else the host), target = the host, id = the record id; a record whose id is already
 * stored is skipped, so a retried upload is stored once. A record that breaks the contract (a field past its
 * bound, an unknown surface, an id repeated in the batch, …) is not stored and never refuses the others: the
 * refused records are counted in one `agent.audit.dropped` event of the host (count and reasons), whose id
 * derives from the batch, so a retried batch counts them once. One bad record can thus never stop a host's
 * audit trail (a whole-batch refusal would be retried by the agent for ever). Only a body that is not an
 * upload at all (no `records` array, more than {@link MAX_AUDIT_RECORDS} records, a body over
 * {@link HOST_AUDIT_BODY_LIMIT}) is refused whole; the agent never sends one.
 */
export function auditRoute(app: FastifyInstance, { ctx }: HostApiContext): void {
  app.route({
    method: 'POST',
    url: HOST_API_PATHS.audit,
    bodyLimit: HOST_AUDIT_BODY_LIMIT,
    handler: async (request, reply) => {
      const caller = await authenticateHost(ctx, request);
      const { records, refused } = parseUpload(bodyObject(request));
      const stored = await ctx.store.audit.appendIgnoringDuplicates(records.map((r) => toAuditEvent(caller, r)));
      if (refused.length > 0) {
        await ctx.store.audit.appendIgnoringDuplicates([droppedEvent(caller, refused, ctx.clock.now())]);
        request.log.warn({ host: caller.host.id, refused: refused.length, reason: refused[0]?.reason }, 'agent audit upload: records refused and counted');
      }
      const result: AuditUploadResult = { accepted: records.length, stored, refused: refused.length };
      return reply.send(result);
    },
  });
}

/** A record the upload carried that broke the contract: why, and a digest of what it was. */
export interface RefusedRecord {
  reason: string;
  digest: string;
}

/**
 * The event counting an upload's refused records. Its id is a UUID derived from the host and the refused
 * records themselves, so the same batch sent again (its answer was lost) is counted once.
 */
export function droppedEvent(caller: AuthenticatedHost, refused: readonly RefusedRecord[], now: number): AuditEvent {
  const hash = createHash('sha256').update(caller.host.id.toLowerCase());
  for (const r of refused) hash.update('\n').update(r.digest);
  const h = hash.digest('hex');
  const id = `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
  const reasons = new Map<string, number>();
  for (const r of refused) {
    if (reasons.has(r.reason) || reasons.size < MAX_DROP_REASONS) reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
  }
  return {
    id,
    at: now,
    tenantId: caller.tenantId,
    actor: caller.host.id,
    action: AUDIT_DROPPED_ACTION,
    target: caller.host.id,
    outcome: 'failure',
    detail: { count: refused.length, reasons: [...reasons].map(([reason, count]) => ({ reason, count })) },
  };
}

/** A valid record as its audit event of the host's tenant. */
export function toAuditEvent(caller: AuthenticatedHost, record: AgentAuditRecord): AuditEvent {
  const detail: Record<string, unknown> = {
    surface: record.surface,
    caller: record.caller,
    count: record.count,
    lastAt: new Date(record.lastAt).toISOString(),
    status: record.status,
  };
  for (const name of ['audience', 'reason', 'session', 'source', 'identity'] as const) {
    if (record[name] !== undefined) detail[name] = record[name];
  }
  return {
    id: record.id,
    at: record.at,
    tenantId: caller.tenantId,
    actor: record.identity ?? caller.host.id,
    action: record.decision === 'served' ? 'agent.token.served' : 'agent.token.refused',
    target: caller.host.id,
    outcome: record.decision === 'served' ? 'success' : 'failure',
    detail,
  };
}

/**
 * An upload's records, each checked on its own: the valid ones, and the refused ones with why. Throws `400` only
 * for a body that is not an upload. Exported, with {@link toAuditEvent} and {@link droppedEvent}, for the
 * store-less tests of the contract (test/authority/hosts/audit-records.test.ts).
 */
export function parseUpload(body: Record<string, unknown>): { records: AgentAuditRecord[]; refused: RefusedRecord[] } {
  const values = body['records'];
  if (!Array.isArray(values)) throw HostErrors.invalidRequest("'records' must be an array of audit records");
  if (values.length > MAX_AUDIT_RECORDS) throw HostErrors.invalidRequest(`at most ${String(MAX_AUDIT_RECORDS)} records may be sent at once`);
  const seen = new Set<string>();
  const records: AgentAuditRecord[] = [];
  const refused: RefusedRecord[] = [];
  for (const value of values as unknown[]) {
    const digest = createHash('sha256')
      .update(JSON.stringify(value) ?? 'undefined')
      .digest('hex');
    try {
      const record = parseRecord(value, 'record');
      // A batch repeating an id is a bug in the sender, not a retry: say so rather than store one of them as both.
      if (seen.has(record.id.toLowerCase())) throw HostErrors.invalidRequest("record.id repeats an earlier record's id");
      seen.add(record.id.toLowerCase());
      records.push(record);
    } catch (err) {
      refused.push({ reason: err instanceof Error ? err.message : 'not a record', digest });
    }
  }
  return { records, refused };
}

function parseRecord(value: unknown, at: string): AgentAuditRecord {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw HostErrors.invalidRequest(`${at} must be an object`);
  const r = value as Record<string, unknown>;
  const bad = (field: string, expected: string) => HostErrors.invalidRequest(`${at}.${field} must be ${expected}`);
  const text = (field: string, max: number, required: boolean): string | undefined => {
    const v = r[field];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v === '' || v.length > max || CONTROL_CHARACTER.test(v))
      throw bad(field, `a string of 1 to ${String(max)} characters without control characters`);
    return v;
  };
  const int = (field: string, min: number, max: number, source: Record<string, unknown> = r, prefix = ''): number => {
    const v = source[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      throw bad(`${prefix}${field}`, `a whole number from ${String(min)} to ${String(max)}`);
    return v;
  };

  const id = text('id', 36, true) ?? '';
  if (!isGuid(id)) throw bad('id', 'a UUID');
  const atMs = int('at', 0, MAX_TIME);
  const lastAt = int('lastAt', atMs, MAX_TIME);
  const count = int('count', 1, Number.MAX_SAFE_INTEGER);
  const decision = r['decision'];
  if (decision !== 'served' && decision !== 'refused') throw bad('decision', "'served' or 'refused'");
  const source = r['source'];
  if (source !== undefined && source !== 'cache' && source !== 'authority' && source !== 'upstream') throw bad('source', "'cache', 'authority' or 'upstream'");
  const surface = r['surface'];
  if (typeof surface !== 'string' || !SURFACES.has(surface)) throw bad('surface', `one of ${[...SURFACES].join(', ')}`);
  const identity = text('identity', LIMITS.identity, false);
  const audience = text('audience', LIMITS.audience, false);
  const status = int('status', 100, 599);
  const reason = text('reason', LIMITS.reason, false);
  const session = text('session', LIMITS.session, false);

  const c = r['caller'];
  if (c === null || typeof c !== 'object' || Array.isArray(c)) throw bad('caller', 'an object with an address');
  const callerFields = c as Record<string, unknown>;
  const address = callerFields['address'];
  if (typeof address !== 'string' || address === '' || address.length > LIMITS.callerAddress || CONTROL_CHARACTER.test(address)) {
    throw bad('caller.address', `a string of 1 to ${String(LIMITS.callerAddress)} characters without control characters`);
  }
  const caller: AgentAuditRecord['caller'] = { address };
  if (callerFields['pid'] !== undefined) caller.pid = int('pid', 0, 2 ** 32, callerFields, 'caller.');
  if (callerFields['uid'] !== undefined) caller.uid = int('uid', 0, 2 ** 32, callerFields, 'caller.');
  if (callerFields['exe'] !== undefined) {
    const exe = callerFields['exe'];
    if (typeof exe !== 'string' || exe === '' || exe.length > LIMITS.callerExe || CONTROL_CHARACTER.test(exe)) {
      throw bad('caller.exe', `a string of 1 to ${String(LIMITS.callerExe)} characters without control characters`);
    }
    caller.exe = exe;
  }

  return {
    id,
    at: atMs,
    lastAt,
    count,
    decision,
    surface: surface as AgentSurface,
    caller,
    status,
    ...(source === undefined ? {} : { source }),
    ...(identity === undefined ? {} : { identity }),
    ...(audience === undefined ? {} : { audience }),
    ...(reason === undefined ? {} : { reason }),
    ...(session === undefined ? {} : { session }),
  };
}
