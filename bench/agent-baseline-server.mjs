// The baseline for bench/agent-token.mjs: a bare node:http server answering a fixed IMDS-shaped token body
// (same size as the agent's) to any GET. Whatever the agent's cached path costs beyond this is its own work.
import { createServer } from 'node:http';

const [port, size] = process.argv.slice(2);
const body = JSON.stringify({
  access_token: 'x'.repeat(Number(size ?? 1200)),
  client_id: '00000000-0000-0000-0000-000000000000',
  expires_in: '86399',
  expires_on: '1764547200',
  ext_expires_in: '86399',
  not_before: '1764460800',
  refresh_token: '',
  resource: 'https://vault.azure.net',
  token_type: 'Bearer',
});
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('listening\n'));
