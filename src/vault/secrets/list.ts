/** `GET /secrets` (spec §1.3 #5): SecretItems with base ids, paged by name. */
import type { FastifyInstance } from 'fastify';
import { SECRET_OPERATIONS } from '../contracts.js';
import { nextLink, pageCursor, pageSize } from '../paging.js';
import { admitted } from '../state.js';
import { itemView } from '../views.js';
import type { SecretsDeps } from './common.js';

export function listSecretsRoute(app: FastifyInstance, { ctx }: SecretsDeps): void {
  app.get('/secrets', { config: { op: SECRET_OPERATIONS.list, target: 'vault' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const size = pageSize(request);
    const after = pageCursor(request);
    // One more than the page tells whether there is a next page.
    const entries = await ctx.store.secrets.list(vault.id, { deleted: false, limit: size + 1, ...(after === undefined ? {} : { afterName: after }) });
    const page = entries.slice(0, size);
    return {
      value: page.map((e) => itemView(request, e.name, e.latest, vault, apiVersion, false)),
      nextLink: nextLink(request, '/secrets', apiVersion, size, page.at(-1)?.name.toLowerCase(), entries.length > size),
    };
  });
}
