/** Opening a store on each backend for the rbac-store suites. */
import { after } from 'node:test';
import { openStore, type Store } from '../../../src/store/index.js';
import type { RoleDefinition } from '../../../src/rbac/contracts.js';
import { createTestDatabase, type TestDatabase } from '../../support/pg-database.js';
import type { Backend } from '../../support/authority.js';

/** A per-file store opener: SQLite in memory, or a fresh PostgreSQL database shared by the file's stores. */
export function storeOpener(backend: Backend): { open(): Promise<Store>; url(): Promise<string> } {
  let database: Promise<TestDatabase> | undefined;
  const db = (): Promise<TestDatabase> => {
    database ??= createTestDatabase(process.env['OPENMSI_TEST_POSTGRES_URL'] ?? '');
    return database;
  };
  after(async () => {
    if (database !== undefined) await (await database).drop();
  });
  return {
    async open() {
      return backend === 'postgres' ? openStore((await db()).url, { maxConnections: 4 }) : openStore(':memory:');
    },
    async url() {
      return (await db()).url;
    },
  };
}

/** Two built-ins with Azure's GUIDs, enough for the store-side tests. */
export const TEST_BUILT_INS: readonly RoleDefinition[] = [
  {
    id: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
    roleName: 'Reader',
    roleType: 'BuiltInRole',
    description: 'View all resources, but does not allow you to make any changes.',
    permissions: [{ actions: ['*/read'], notActions: [], dataActions: [], notDataActions: [] }],
    assignableScopes: ['/'],
    tenantId: null,
  },
  {
    id: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
    roleName: 'Owner',
    roleType: 'BuiltInRole',
    description: 'Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.',
    permissions: [{ actions: ['*'], notActions: [], dataActions: [], notDataActions: [] }],
    assignableScopes: ['/'],
    tenantId: null,
  },
];
