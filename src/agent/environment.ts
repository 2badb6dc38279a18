/**
 * The variables for local workloads. `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` come first in every client's
 * detection order (App Service 2019-08-01, §2 of the spec). `MSI_ENDPOINT` + `MSI_SECRET` serve clients that
 * only know the 2017 pair (they GET it with a `secret` header) and Debian's azure-cli 2.45 (msrestazure POSTs
 * `resource=` to `MSI_ENDPOINT` with `Metadata: true`): `/oauth2/token` answers both.
 */
export function agentEnvironment(port: number, secret: string): [string, string][] {
  const base = `http://127.0.0.1:${String(port)}`;
  return [
    ['IDENTITY_ENDPOINT', `${base}/msi/token`],
    ['IDENTITY_HEADER', secret],
    ['MSI_ENDPOINT', `${base}/oauth2/token`],
    ['MSI_SECRET', secret],
  ];
}
