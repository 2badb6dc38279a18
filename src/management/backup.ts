import type { FastifyInstance } from 'fastify';
import type { ManagementContext } from './context.js';
import { ApiError } from '../shared/api-error.js';
import { authenticate, callerOf } from './authenticate.js';
import { audited, route } from './common.js';
import { atRoot, authorize, OPENMSI_ACTIONS } from './authorize.js';

/**
 * `POST /openmsi/backup`: a consistent copy of the embedded store and the data dir's files, streamed as one
 * backup file (src/backup/format.ts); what `openmsi backup --out FILE` asks for. Owner-level at `/`: the file
 * is the whole installation (encrypted under the master key, which it never holds). On PostgreSQL, 409
 * `BackupNotSupported`: its backups are `pg_dump`'s (docs/operations.md).
 */
export function backupRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  route(app, {
    method: 'POST',
    url: '/openmsi/backup',
    onRequest: [authenticate(ctx, 'arm'), authorize(ctx, atRoot(OPENMSI_ACTIONS.backupWrite))],
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const backups = ctx.backups;
      if (backups === undefined) {
        throw new ApiError(
          409,
          'BackupNotSupported',
          'This server keeps its store in PostgreSQL: back it up with pg_dump (see docs/operations.md, "Backup and restore").',
        );
      }
      const taken = await audited(ctx, { tenantId: caller.tenantId, actor: caller.principal.objectId, action: 'store.backup', target: 'store' }, async () => {
        const result = await backups.take();
        return { result, detail: { bytes: result.bytes, migration: result.header.migration, masterKeyId: result.header.masterKeyId } };
      });
      return reply
        .type('application/octet-stream')
        .header('content-length', String(taken.bytes))
        .header('content-disposition', `attachment; filename="openmsi-${taken.header.createdAt.replace(/[:.]/g, '-')}.backup"`)
        .send(taken.stream);
    },
  });
}
