/**
 * Every URL the authority publishes, derived from one public origin. Token issuers follow Entra's shapes:
 * v1 access tokens carry `{origin}/{tenant}/` (Entra: `https://sts.windows.net/{tid}/`), the v2 discovery
 * document names `{origin}/{tenant}/v2.0`.
 */
export class AuthorityUrls {
  readonly origin: string;

  constructor(publicUrl: string) {
    const url = new URL(publicUrl);
    if (url.protocol !== 'https:') throw new TypeError(`the authority's public URL must be https (Azure SDKs refuse anything else): ${publicUrl}`);
    this.origin = url.origin;
  }

  /** `iss` of the access tokens we issue (v1 shape), and the v1 discovery document's issuer. */
  v1Issuer(tenantId: string): string {
    return `${this.origin}/${tenantId}/`;
  }

  /** Issuer named by the v2 discovery document. */
  v2Issuer(tenantId: string): string {
    return `${this.origin}/${tenantId}/v2.0`;
  }

  tokenEndpoint(tenant: string, version: 'v1' | 'v2'): string {
    return version === 'v1' ? `${this.origin}/${tenant}/oauth2/token` : `${this.origin}/${tenant}/oauth2/v2.0/token`;
  }

  authorizationEndpoint(tenant: string, version: 'v1' | 'v2'): string {
    return version === 'v1' ? `${this.origin}/${tenant}/oauth2/authorize` : `${this.origin}/${tenant}/oauth2/v2.0/authorize`;
  }

  jwksUri(tenant: string, version: 'v1' | 'v2'): string {
    return version === 'v1' ? `${this.origin}/${tenant}/discovery/keys` : `${this.origin}/${tenant}/discovery/v2.0/keys`;
  }

  discoveryDocument(tenant: string, version: 'v1' | 'v2'): string {
    return version === 'v1'
      ? `${this.origin}/${tenant}/.well-known/openid-configuration`
      : `${this.origin}/${tenant}/v2.0/.well-known/openid-configuration`;
  }
}
