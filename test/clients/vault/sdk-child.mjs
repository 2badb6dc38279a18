// Unchanged @azure/keyvault-secrets@4.11.2 against the vault over real HTTPS. The CA comes from
// NODE_EXTRA_CA_CERTS (set by the parent); `*.vault.localhost` resolves to 127.0.0.1 by patching dns.lookup.
// Tokens: a TokenCredential doing client credentials at the test authority. Prints one JSON line.
import dns from 'node:dns';
import { SecretClient } from '@azure/keyvault-secrets';

const lookup = dns.lookup;
dns.lookup = (hostname, options, callback) => {
  if (hostname.endsWith('.vault.localhost')) {
    const cb = typeof options === 'function' ? options : callback;
    const all = typeof options === 'object' && options?.all;
    return all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4);
  }
  return lookup(hostname, options, callback);
};

const { AUTHORITY, CLIENT_ID, CLIENT_SECRET, VAULT1, VAULT2 } = process.env;
const credential = {
  async getToken(scopes, options) {
    const tenant = options?.tenantId;
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      scope: [scopes].flat().join(' '),
    });
    const response = await fetch(`${AUTHORITY}/${tenant}/oauth2/v2.0/token`, { method: 'POST', body });
    if (!response.ok) throw new Error(`token ${response.status} ${await response.text()}`);
    const json = await response.json();
    return { token: json.access_token, expiresOnTimestamp: Date.now() + json.expires_in * 1000 };
  },
};

const out = {};
try {
  const c1 = new SecretClient(VAULT1, credential);
  const c2 = new SecretClient(VAULT2, credential);
  const set = await c1.setSecret('sdk-one', 'sdk-value', { contentType: 'text/plain', tags: { a: 'b' } });
  out.setVersion = set.properties.version;
  out.get = (await c1.getSecret('sdk-one')).value;
  out.updated = (await c1.updateSecretProperties('sdk-one', set.properties.version, { contentType: 'ct2' })).contentType;
  for (let i = 0; i < 26; i++) await c1.setSecret(`bulk-${i}`, `v${i}`);
  for (let i = 0; i < 26; i++) await c1.setSecret('sdk-one', `sdk-value-${i}`);
  let n = 0;
  for await (const _ of c1.listPropertiesOfSecrets()) n++;
  out.listed = n;
  let versions = 0;
  for await (const _ of c1.listPropertiesOfSecretVersions('sdk-one')) versions++;
  out.versions = versions;
  const delPoller = await c1.beginDeleteSecret('bulk-0');
  out.deleted = (await delPoller.pollUntilDone()).name;
  const recPoller = await c1.beginRecoverDeletedSecret('bulk-0');
  out.recovered = (await recPoller.pollUntilDone()).name;
  await (await c1.beginDeleteSecret('bulk-1')).pollUntilDone();
  await c1.purgeDeletedSecret('bulk-1');
  out.purged = await c1.getDeletedSecret('bulk-1').then(
    () => 'still there',
    (e) => e.statusCode,
  );
  const backup = await c1.backupSecret('sdk-one');
  out.restored = (await c2.restoreSecretBackup(backup)).name;
  out.restoredValue = (await c2.getSecret('sdk-one')).value;
  await c1.setSecret('off', 'x', { enabled: false });
  out.disabled = await c1.getSecret('off').then(
    () => 'served',
    (e) => `${e.statusCode} ${e.details?.error?.innerError?.code ?? e.code}`,
  );
  await c1.setSecret('expired', 'old', { expiresOn: new Date(1000_000) });
  out.expired = (await c1.getSecret('expired')).value;
  process.stdout.write(JSON.stringify({ ok: true, ...out }) + '\n');
} catch (err) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(err?.stack ?? err), ...out }) + '\n');
}
