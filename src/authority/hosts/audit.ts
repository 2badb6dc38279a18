import type { FastifyInstance } from 'fastify';
import { HostErrors } from '../../directory/hosts.js';
import { HOST_API_PATHS, type AgentAuditRecord, type AgentSurface, type AuditUploadResult } from '../../shared/host-protocol.js';
import { isGuid } from '../../shared/ids.js';
import type { AuditEvent } from '../../store/types.js';
import { authenticateHost, type AuthenticatedHost } from './authenticate.js';
import { bodyObject, HOST_AUDIT_BODY_LIMIT, MAX_AUDIT_RECORDS, type HostApiContext } from './common.js';

const SURFACES: ReadonlySet<AgentSurface> = new Set(['imds', 'app-service', 'app-service-2017', 'cloud-shell', 'arc', 'session', 'instance']);
/** Epoch milliseconds no record may be later than: year 9999 (anything beyond is not a time). */
const MAX_TIME = 253_402_300_799_999;

/**
 * `POST /openmsi/hosts/audit` `AuditUpload` (host assertion) → 200 `{ accepted, stored }`: at most
 * {@link MAX_AUDIT_RECORDS} records, each checked against the contract (a bad one refuses the batch, naming
 * it). They are stored as the host's tenant's audit events `agent.token.served` / `agent.token.refused`,
 * actor = the identity's object id (else the host), target = the host, id = the record id; a record whose
 * id is already stored is skipped, so a retried upload is stored once. `accepted` counts the records now
 * durable (all of them), `stored` those that were new.
 */
export function auditRoute(app: FastifyInstance, { ctx }: HostApiContext): void {
  app.route({
    method: 'POST',
    url: HOST_API_PATHS.audit,
    bodyLimit: HOST_AUDIT_BODY_LIMIT,
    handler: async (request, reply) => {
      const caller = await authenticateHost(ctx, request);
      const records = parseUpload(bodyObject(request));
      const stored = await ctx.store.audit.appendIgnoringDuplicates(records.map((r) => toAuditEvent(caller, r)));
      const result: AuditUploadResult = { accepted: records.length, stored };
      return reply.send(result);
    },
  });
}

function toAuditEvent(caller: AuthenticatedHost, record: AgentAuditRecord): AuditEvent {
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

function parseUpload(body: Record<string, unknown>): AgentAuditRecord[] {
  const records = body['records'];
  if (!Array.isArray(records)) throw HostErrors.invalidRequest("'records' must be an array of audit records");
  if (records.length > MAX_AUDIT_RECORDS) throw HostErrors.invalidRequest(`at most ${String(MAX_AUDIT_RECORDS)} records may be sent at once`);
  const seen = new Set<string>();
  return records.map((value, index) => {
    const record = parseRecord(value, `records[${String(index)}]`);
    // A batch repeating an id is a bug in the sender, not a retry: say so rather than store one of them.
    if (seen.has(record.id.toLowerCase())) throw HostErrors.invalidRequest(`records[${String(index)}].id repeats an earlier record's id`);
    seen.add(record.id.toLowerCase());
    return record;
  });
}

function parseRecord(value: unknown, at: string): AgentAuditRecord {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw HostErrors.invalidRequest(`${at} must be an object`);
  const r = value as Record<string, unknown>;
  const bad = (field: string, expected: string) => HostErrors.invalidRequest(`${at}.${field} must be ${expected}`);
  const text = (field: string, max: number, required: boolean): string | undefined => {
    const v = r[field];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v === '' || v.length > max) throw bad(field, `a string of 1 to ${String(max)} characters`);
    return v;
  };
  const int = (field: string, min: number, max: number, source: Record<string, unknown> = r, prefix = ''): number => {
    const v = source[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(`${prefix}${field}`, `a whole number from ${String(min)} to ${String(max)}`);
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
  if (source !== undefined && source !== 'cache' && source !== 'authority') throw bad('source', "'cache' or 'authority'");
  const surface = r['surface'];
  if (typeof surface !== 'string' || !SURFACES.has(surface as AgentSurface)) throw bad('surface', `one of ${[...SURFACES].join(', ')}`);
  const identity = text('identity', 128, false);
  const audience = text('audience', 2048, false);
  const status = int('status', 100, 599);
  const reason = text('reason', 128, false);
  const session = text('session', 128, false);

  const c = r['caller'];
  if (c === null || typeof c !== 'object' || Array.isArray(c)) throw bad('caller', 'an object with an address');
  const callerFields = c as Record<string, unknown>;
  const address = callerFields['address'];
  if (typeof address !== 'string' || address === '' || address.length > 64) throw bad('caller.address', 'a string of 1 to 64 characters');
  const caller: AgentAuditRecord['caller'] = { address };
  if (callerFields['pid'] !== undefined) caller.pid = int('pid', 0, 2 ** 32, callerFields, 'caller.');
  if (callerFields['uid'] !== undefined) caller.uid = int('uid', 0, 2 ** 32, callerFields, 'caller.');
  if (callerFields['exe'] !== undefined) {
    const exe = callerFields['exe'];
    if (typeof exe !== 'string' || exe === '' || exe.length > 4096) throw bad('caller.exe', 'a string of 1 to 4096 characters');
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
