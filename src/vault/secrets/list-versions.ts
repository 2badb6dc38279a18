/** `GET /secrets/{name}/versions` (spec §1.3 #6): SecretItems with versioned ids, paged by version id. */
import type { FastifyInstance } from 'fastify';
import { SECRET_OPERATIONS } from '../contracts.js';
import { nextLink, pageCursor, pageSize } from '../paging.js';
import { admitted } from '../state.js';
import { itemView } from '../views.js';
import { secretNameOf, type SecretsDeps } from './common.js';

export function listSecretVersionsRoute(app: FastifyInstance, { ctx }: SecretsDeps): void {
  app.get('/secrets/:name/versions', { config: { op: SECRET_OPERATIONS.listVersions, target: 'secret' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const name = secretNameOf(request);
    const size = pageSize(request);
    const after = pageCursor(request);
    const versions = await ctx.store.secrets.listVersions(vault.id, name, { limit: size + 1, ...(after === undefined ? {} : { afterVersion: after }) });
    const page = versions.slice(0, size);
    return {
      value: page.map((v) => itemView(request, v.name, v, vault, apiVersion, true)),
      nextLink: nextLink(request, `/secrets/${name}/versions`, apiVersion, size, page.at(-1)?.version, versions.length > size),
    };
  });
}
