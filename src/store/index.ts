export { openStore, describeStoreLocation, isPostgresLocation, repositoriesFor, StoreMisuseError, type OpenStoreOptions } from './open.js';
export { StoreLockedError } from './sqlite.js';
export type { Dialect } from './dialect.js';
export type * from './types.js';
export { RBAC_CHANNEL } from './types.js';
