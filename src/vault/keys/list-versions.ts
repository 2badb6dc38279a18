/** `GET /keys/{name}/versions` (spec §1.3 #7): KeyItems with versioned kids, paged by version id. */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { nextLink, pageCursor, pageSize } from '../paging.js';
import { admitted } from '../state.js';
import { keyNameOf, type KeysDeps } from './common.js';
import { keyItemView } from './views.js';

export function listKeyVersionsRoute(app: FastifyInstance, { ctx }: KeysDeps): void {
  app.get('/keys/:name/versions', { config: { op: KEY_OPERATIONS.listVersions, target: 'key' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const name = keyNameOf(request);
    const size = pageSize(request);
    const after = pageCursor(request);
    const versions = await ctx.store.keys.listVersions(vault.id, name, { limit: size + 1, ...(after === undefined ? {} : { afterVersion: after }) });
    const page = versions.slice(0, size);
    return {
      value: page.map((v) => keyItemView(request, v.name, v, vault, apiVersion, true)),
      nextLink: nextLink(request, `/keys/${name}/versions`, apiVersion, size, page.at(-1)?.version, versions.length > size),
    };
  });
}
