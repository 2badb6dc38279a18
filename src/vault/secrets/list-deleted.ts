/** `GET /deletedsecrets` (spec §1.3 #7): DeletedSecretItems (base ids), paged by name. */
import type { FastifyInstance } from 'fastify';
import { SECRET_OPERATIONS } from '../contracts.js';
import { nextLink, pageCursor, pageSize } from '../paging.js';
import { admitted } from '../state.js';
import { deletedView, itemView } from '../views.js';
import type { SecretsDeps } from './common.js';

export function listDeletedSecretsRoute(app: FastifyInstance, { ctx }: SecretsDeps): void {
  app.get('/deletedsecrets', { config: { op: SECRET_OPERATIONS.listDeleted, target: 'vault' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const size = pageSize(request);
    const after = pageCursor(request);
    const entries = await ctx.store.secrets.list(vault.id, { deleted: true, limit: size + 1, ...(after === undefined ? {} : { afterName: after }) });
    const page = entries.slice(0, size);
    return {
      value: page.map((e) => ({ ...deletedView(request, e), ...itemView(request, e.name, e.latest, vault, apiVersion, false) })),
      nextLink: nextLink(request, '/deletedsecrets', apiVersion, size, page.at(-1)?.name.toLowerCase(), entries.length > size),
    };
  });
}
