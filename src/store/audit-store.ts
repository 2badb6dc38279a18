import type { Insertable, Kysely, Selectable } from 'kysely';
import type { AuditEventTable, Database } from './schema.js';
import type { AuditEvent, AuditStore } from './types.js';
import { atomically, chunks, fromJson, rowCount, toJson } from './kysely-helpers.js';

/** Rows per INSERT: 8 parameters each keeps a statement far below both backends' bound-parameter limits. */
const ROWS_PER_STATEMENT = 1000;

/** What `list` returns when the query names no limit. */
export const DEFAULT_AUDIT_LIST_LIMIT = 100;

function toEvent(row: Selectable<AuditEventTable>): AuditEvent {
  return {
    id: row.id,
    at: row.at,
    tenantId: row.tenant_id,
    actor: row.actor,
    action: row.action,
    target: row.target,
    outcome: row.outcome as AuditEvent['outcome'],
    detail: fromJson<Record<string, unknown>>(row.detail),
  };
}

function toRow(e: AuditEvent): Insertable<AuditEventTable> {
  return {
    id: e.id,
    at: e.at,
    tenant_id: e.tenantId,
    actor: e.actor,
    action: e.action,
    target: e.target,
    outcome: e.outcome,
    detail: toJson(e.detail),
  };
}

export function createAuditStore(db: Kysely<Database>): AuditStore {
  return {
    async append(events) {
      if (events.length === 0) return;
      const rows = events.map(toRow);
      if (rows.length <= ROWS_PER_STATEMENT) {
        // One multi-row INSERT: atomic on its own, and `seq` follows the array order.
        await db.insertInto('audit_events').values(rows).execute();
        return;
      }
      await atomically(db, async (trx) => {
        for (const slice of chunks(rows, ROWS_PER_STATEMENT)) await trx.insertInto('audit_events').values(slice).execute();
      });
    },

    async appendIgnoringDuplicates(events) {
      if (events.length === 0) return 0;
      const rows = events.map(toRow);
      // One statement per slice, all in one transaction: a retried batch is stored whole or not at all.
      return atomically(db, async (trx) => {
        let inserted = 0;
        for (const slice of chunks(rows, ROWS_PER_STATEMENT)) {
          const result = await trx
            .insertInto('audit_events')
            .values(slice)
            .onConflict((oc) => oc.column('id').doNothing())
            .executeTakeFirst();
          inserted += rowCount(result.numInsertedOrUpdatedRows);
        }
        return inserted;
      });
    },

    async list(query) {
      let q = db.selectFrom('audit_events').selectAll();
      if (query.since !== undefined) q = q.where('at', '>=', query.since);
      if (query.action !== undefined) q = q.where('action', '=', query.action);
      const { tenantId } = query;
      if (tenantId !== undefined) {
        // Filtered here, before the limit, so a busy other tenant cannot crowd this one's events out of the page.
        q = q.where((eb) => eb.or([eb('tenant_id', 'is', null), eb(eb.fn('lower', ['tenant_id']), '=', tenantId.toLowerCase())]));
      }
      for (const values of query.involving ?? []) {
        const keys = [...new Set(values.map((v) => v.toLowerCase()))];
        if (keys.length === 0) return [];
        q = q.where((eb) => eb.or([eb(eb.fn('lower', ['actor']), 'in', keys), eb(eb.fn('lower', ['target']), 'in', keys)]));
      }
      const limit = Math.max(0, Math.floor(query.limit ?? DEFAULT_AUDIT_LIST_LIMIT));
      const rows = await q.orderBy('seq', 'desc').limit(limit).execute();
      return rows.map(toEvent);
    },
  };
}
