// A workload started by `openmsi run`: unchanged @azure/identity with only the environment openmsi run gave
// it. Prints one JSON line (its token's claims and, for the test's after-exit check, its session secret).
import { ManagedIdentityCredential } from '@azure/identity';

// argv[2]: nothing (the session's default identity), `client:<client id>` or `object:<object id>`.
const [kind, id] = (process.argv[2] ?? '').split(':');
const credential =
  kind === 'client'
    ? new ManagedIdentityCredential({ clientId: id })
    : kind === 'object'
      ? new ManagedIdentityCredential({ objectId: id })
      : new ManagedIdentityCredential();
try {
  const token = await credential.getToken('https://vault.azure.net/.default');
  const payload = JSON.parse(Buffer.from(token.token.split('.')[1], 'base64url').toString('utf8'));
  process.stdout.write(JSON.stringify({ ok: true, oid: payload.oid, aud: payload.aud, secret: process.env.IDENTITY_HEADER, pid: process.pid }) + '\n');
} catch (err) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(err?.message ?? err), secret: process.env.IDENTITY_HEADER }) + '\n');
}
