/**
 * The server-side modules a command needs only once it runs: the server, the agent, the dev stack and the
 * logger pull in fastify, pino, kysely, the database drivers and x509 (about half a second of start-up). Client
 * commands (`group list`, `keyvault secret show`, ...) never load them, so they start in a fraction of that;
 * the command that does need one imports it here, in its action.
 */
export const lazy = {
  authority: () => import('../../server/server.js'),
  init: () => import('../../authority/init.js'),
  vaultReplica: () => import('../../server/vault-replica.js'),
  logger: () => import('../../shared/logger.js'),
  agent: () => import('../../agent/agent.js'),
  dev: () => import('../../dev/dev.js'),
  devUser: () => import('../../dev/dev-user.js'),
  jose: () => import('jose'),
  restore: () => import('../../backup/restore.js'),
};
