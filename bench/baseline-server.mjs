// The baseline for bench/token-grant.mjs: bare fastify 5 over the same TLS certificate, answering a
// fixed token-sized JSON body to a form POST. Whatever the grant costs beyond this is openmsi's own work.
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MasterKey } from '../dist/pki/master-key.js';

const [dataDir, port] = process.argv.slice(2);
const masterKey = MasterKey.fromEnvOrFile({ dataDir });
const app = Fastify({
  https: {
    cert: readFileSync(join(dataDir, 'tls/server.pem'), 'utf8'),
    key: masterKey.decrypt(readFileSync(join(dataDir, 'tls/server.key.enc'), 'utf8'), 'tls-server-key').toString('utf8'),
  },
  keepAliveTimeout: 65_000,
});
app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body));
const fixed = JSON.stringify({ token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: 'x'.repeat(1100) });
app.post('/token', async (_req, reply) => reply.header('content-type', 'application/json; charset=utf-8').send(fixed));
await app.listen({ host: '127.0.0.1', port: Number(port) });
process.stdout.write('listening\n');
