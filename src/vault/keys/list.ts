/** `GET /keys` (spec §1.3 #6): KeyItems with base kids, paged by name. */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { nextLink, pageCursor, pageSize } from '../paging.js';
import { admitted } from '../state.js';
import type { KeysDeps } from './common.js';
import { keyItemView } from './views.js';

export function listKeysRoute(app: FastifyInstance, { ctx }: KeysDeps): void {
  app.get('/keys', { config: { op: KEY_OPERATIONS.list, target: 'vault' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const size = pageSize(request);
    const after = pageCursor(request);
    // One more than the page tells whether there is a next page.
    const entries = await ctx.store.keys.list(vault.id, { deleted: false, limit: size + 1, ...(after === undefined ? {} : { afterName: after }) });
    const page = entries.slice(0, size);
    return {
      value: page.map((e) => keyItemView(request, e.name, e.latest, vault, apiVersion, false)),
      nextLink: nextLink(request, '/keys', apiVersion, size, page.at(-1)?.name.toLowerCase(), entries.length > size),
    };
  });
}
