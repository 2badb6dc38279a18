// The baseline for bench/vault-read.mjs: the vault's own server stack (vaultServer(): the same fastify options,
// TLS certificate, logger and response headers as the data plane) answering a fixed body of the same size to
// GET /secrets/:name. Whatever a secret read costs beyond this is openmsi's own work on the request: token
// check, authorisation, vault and secret lookup, decryption, audit.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MasterKey } from '../dist/pki/master-key.js';
import { createLogger } from '../dist/shared/logger.js';
import { setVaultHeaders, vaultServer } from '../dist/vault/app.js';

const [dataDir, port, bodyBytes] = process.argv.slice(2);
const masterKey = MasterKey.fromEnvOrFile({ dataDir });
const app = vaultServer(createLogger({ level: 'warn' }), {
  cert: readFileSync(join(dataDir, 'tls/server.pem'), 'utf8'),
  key: masterKey.decrypt(readFileSync(join(dataDir, 'tls/server.key.enc'), 'utf8'), 'tls-server-key').toString('utf8'),
});
app.addHook('onSend', async (request, reply) => setVaultHeaders(request, reply, 'local'));
const fixed = JSON.stringify({ value: 'x'.repeat(Math.max(0, Number(bodyBytes) - 12)) });
app.get('/secrets/:name', async (_req, reply) => reply.header('content-type', 'application/json; charset=utf-8').send(fixed));
await app.listen({ host: '127.0.0.1', port: Number(port) });
process.stdout.write('listening\n');
