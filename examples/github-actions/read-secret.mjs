// An unchanged Azure app for a GitHub Actions job: DefaultAzureCredential, configured only by the environment
// the workflow sets (AZURE_CLIENT_ID, AZURE_TENANT_ID=adfs, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST,
// NODE_EXTRA_CA_CERTS), reads a secret from the openmsi vault at OPENMSI_VAULT_URL. The value is masked in the
// job's log (::add-mask::) and only its length and a hash prefix are printed; use it where your job needs it.
import { createHash } from 'node:crypto';
import { DefaultAzureCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';

const name = process.argv[2] ?? 'sample-secret';
const vaultUrl = process.env.OPENMSI_VAULT_URL;
if (!vaultUrl) {
  console.error('OPENMSI_VAULT_URL is not set');
  process.exit(2);
}
try {
  const secret = await new SecretClient(vaultUrl, new DefaultAzureCredential()).getSecret(name);
  const value = secret.value ?? '';
  for (const line of value.split('\n')) if (line !== '') console.log(`::add-mask::${line}`);
  const digest = createHash('sha256').update(value).digest('hex').slice(0, 12);
  console.log(`read ${name} from ${vaultUrl}: ${value.length} characters, sha256 ${digest}…`);
} catch (err) {
  console.error(`could not read ${name}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
