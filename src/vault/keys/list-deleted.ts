/** `GET /deletedkeys` (spec §1.3 #8): DeletedKeyItems (base kids), paged by name. */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { nextLink, pageCursor, pageSize } from '../paging.js';
import { admitted } from '../state.js';
import type { KeysDeps } from './common.js';
import { deletedKeyView, keyItemView } from './views.js';

export function listDeletedKeysRoute(app: FastifyInstance, { ctx }: KeysDeps): void {
  app.get('/deletedkeys', { config: { op: KEY_OPERATIONS.listDeleted, target: 'vault' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const size = pageSize(request);
    const after = pageCursor(request);
    const entries = await ctx.store.keys.list(vault.id, { deleted: true, limit: size + 1, ...(after === undefined ? {} : { afterName: after }) });
    const page = entries.slice(0, size);
    return {
      value: page.map((e) => ({ ...deletedKeyView(request, e), ...keyItemView(request, e.name, e.latest, vault, apiVersion, false) })),
      nextLink: nextLink(request, '/deletedkeys', apiVersion, size, page.at(-1)?.name.toLowerCase(), entries.length > size),
    };
  });
}
