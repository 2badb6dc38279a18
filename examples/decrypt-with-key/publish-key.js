// The operator's step, once: makes sure the vault has the RSA key `app-data-key` (RSA 2048) and prints its
// public half as a JWK (kid, kty, n, e): what `az keyvault key show --query key` prints. The private half never
// leaves the vault. Runs with the caller's managed identity (the dev stack's identities are Key Vault Crypto
// Officer on the dev vault).
//
//   node examples/decrypt-with-key/publish-key.js [key-name] > app-data-key.jwk.json
import { DefaultAzureCredential } from '@azure/identity';
import { KeyClient } from '@azure/keyvault-keys';

const vaultUrl = process.env.AZURE_KEYVAULT_URL;
if (!vaultUrl) throw new Error('AZURE_KEYVAULT_URL is not set: run eval "$(openmsi dev env)" first');
const name = process.argv[2] ?? 'app-data-key';
const client = new KeyClient(vaultUrl, new DefaultAzureCredential());
let key;
try {
  key = await client.getKey(name);
} catch (err) {
  if (err.statusCode !== 404) throw err;
  key = await client.createRsaKey(name, { keySize: 2048 });
}
const { kid, kty, n, e } = key.key;
const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
console.log(JSON.stringify({ kid, kty, n: b64url(n), e: b64url(e) }, null, 2));
