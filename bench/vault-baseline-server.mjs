// The baseline for bench/vault-read.mjs: bare fastify 5 over the same TLS certificate, answering a fixed
// secret-sized JSON body to GET /secrets/:name. Whatever a secret read costs beyond this is openmsi's own
// work (token check, authorisation, vault lookup, the store read, decryption, audit).
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MasterKey } from '../dist/pki/master-key.js';

const [dataDir, port, bodyBytes] = process.argv.slice(2);
const masterKey = MasterKey.fromEnvOrFile({ dataDir });
const app = Fastify({
  https: {
    cert: readFileSync(join(dataDir, 'tls/server.pem'), 'utf8'),
    key: masterKey.decrypt(readFileSync(join(dataDir, 'tls/server.key.enc'), 'utf8'), 'tls-server-key').toString('utf8'),
  },
  keepAliveTimeout: 65_000,
});
const fixed = JSON.stringify({ value: 'x'.repeat(Math.max(0, Number(bodyBytes) - 20)) });
app.get('/secrets/:name', async (_req, reply) => reply.header('content-type', 'application/json; charset=utf-8').send(fixed));
await app.listen({ host: '127.0.0.1', port: Number(port) });
process.stdout.write('listening\n');
