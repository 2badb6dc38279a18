// Reads a secret from the vault with the machine's managed identity: no credential in code or configuration.
// The same code runs on Azure (App Service, a VM) and, after `eval "$(openmsi dev env)"`, on a developer machine.
//
//   node examples/node/read-secret.js [secret-name]        (default: sample-secret)
import { DefaultAzureCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';

const vaultUrl = process.env.AZURE_KEYVAULT_URL;
if (!vaultUrl) throw new Error('AZURE_KEYVAULT_URL is not set: run eval "$(openmsi dev env)" first');
const client = new SecretClient(vaultUrl, new DefaultAzureCredential());
const secret = await client.getSecret(process.argv[2] ?? 'sample-secret');
console.log(secret.value);
