// The containerised app: unchanged Azure code. DefaultAzureCredential finds IDENTITY_ENDPOINT/IDENTITY_HEADER
// (the host agent's App Service surface) and the vault host is reached through HTTPS_PROXY.
import { DefaultAzureCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';

const client = new SecretClient(process.env.AZURE_KEYVAULT_URL, new DefaultAzureCredential());
const secret = await client.getSecret(process.argv[2] ?? process.env.SECRET_NAME ?? 'sample-secret');
console.log(secret.value);
