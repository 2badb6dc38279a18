// The application: opens data sealed for it (seal.js) with the vault key, through CryptographyClient and
// DefaultAzureCredential. No app id, no app secret, no certificate in code or configuration: the credential is
// the managed identity the process runs as (on Azure: App Service, a VM; here: `openmsi run --identity ...`).
//
// The vault unwraps the data key (RSA-OAEP-256 with the private half, which never leaves it); the data itself
// is decrypted here with AES-256-GCM, so it never travels to the vault.
//
//   node examples/decrypt-with-key/app.js sealed.json
import { createDecipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DefaultAzureCredential } from '@azure/identity';
import { CryptographyClient } from '@azure/keyvault-keys';

const sealedPath = process.argv[2];
if (!sealedPath) throw new Error('usage: app.js SEALED-FILE');
const sealed = JSON.parse(readFileSync(sealedPath, 'utf8'));
const fromB64url = (text) => Buffer.from(text, 'base64url');

const crypto = new CryptographyClient(sealed.kid, new DefaultAzureCredential());
const { result: dataKey } = await crypto.unwrapKey(sealed.alg, fromB64url(sealed.wrappedKey));

const decipher = createDecipheriv('aes-256-gcm', dataKey, fromB64url(sealed.iv));
decipher.setAuthTag(fromB64url(sealed.tag));
const plaintext = Buffer.concat([decipher.update(fromB64url(sealed.ciphertext)), decipher.final()]);
process.stdout.write(`${plaintext.toString('utf8')}\n`);
