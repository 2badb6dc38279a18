import { X509Certificate } from 'node:crypto';
import { defaultOrigin, hostForUrl } from '../shared/public-url.js';

/**
 * Every URL published for one https origin. Token issuers follow Entra's shapes: v1 access tokens carry
 * `{origin}/{tenant}/` (Entra: `https://sts.windows.net/{tid}/`), the v2 discovery document names
 * `{origin}/{tenant}/v2.0`.
 */
export class OriginUrls {
  readonly origin: string;

  constructor(url: string) {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:') throw new TypeError(`the authority's public URL must be https (Azure SDKs refuse anything else): ${url}`);
    this.origin = parsed.origin;
  }

  /** v1 issuer shape; on the canonical origin, the `iss` of the access tokens we issue (see {@link AuthorityUrls}). */
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
    return version === 'v1' ? `${this.origin}/${tenant}/.well-known/openid-configuration` : `${this.origin}/${tenant}/v2.0/.well-known/openid-configuration`;
  }
}

export interface AuthorityUrlsOptions {
  /** A public URL the operator set explicitly; it is then the canonical origin whatever the listen address. */
  publicUrl?: string | undefined;
  /** The address the authority listens on. */
  listenHost: string;
  /** The port it will listen on; {@link AuthorityUrls.bind} replaces it with the port actually bound. */
  port: number;
  /** The names the server certificate is valid for (DNS names and IP addresses, as in its SAN). */
  certificateNames: readonly string[];
}

/**
 * What the authority advertises. One canonical origin (the explicit public URL, or else
 * `https://localhost:<bound port>`, or the listen address when it is a specific one) names the token
 * issuer, which must be one stable value that verifiers can be configured with. Discovery documents and
 * token endpoints may also be advertised on every other name of the server certificate, on the port
 * actually bound, because MSAL requires the discovery `issuer` to share the origin of the authority it was
 * given; a `Host` header that is not one of those names gets the canonical origin, so a forged header can
 * never make the authority advertise a host it does not hold a certificate for.
 */
export class AuthorityUrls {
  readonly #explicit: OriginUrls | undefined;
  readonly #listenHost: string;
  readonly #certificateNames: ReadonlySet<string>;
  #port: number;
  #canonical: OriginUrls;
  /** The canonical origin and each certificate name on the port: derived again only when the port changes. */
  #advertised: readonly OriginUrls[];
  #byHost = new Map<string, OriginUrls>();

  constructor(options: AuthorityUrlsOptions) {
    this.#explicit = options.publicUrl === undefined ? undefined : new OriginUrls(options.publicUrl);
    this.#listenHost = options.listenHost;
    // Wildcards (`*.vault.localhost`) name vault hosts, never an origin of the authority's own endpoints.
    this.#certificateNames = new Set(
      options.certificateNames
        .filter((n) => !n.startsWith('*'))
        .map(normaliseHostname)
        .filter((n): n is string => n !== undefined),
    );
    this.#port = options.port;
    this.#canonical = this.#deriveCanonical();
    this.#advertised = this.#deriveAdvertised();
  }

  /** Fixes the port actually bound (it differs from the configured one with port 0). */
  bind(port: number): void {
    this.#port = port;
    this.#canonical = this.#deriveCanonical();
    this.#advertised = this.#deriveAdvertised();
    this.#byHost = new Map();
  }

  /** The canonical origin: where tokens say they come from, and what logs and the CLI name. */
  get origin(): string {
    return this.#canonical.origin;
  }

  /** URLs on the canonical origin. */
  get canonical(): OriginUrls {
    return this.#canonical;
  }

  /** `iss` of every access token for `tenantId`: always on the canonical origin, whichever name the client used. */
  v1Issuer(tenantId: string): string {
    return this.#canonical.v1Issuer(tenantId);
  }

  /**
   * The URLs to advertise to a request that came with this `Host` header: its own origin when the host is
   * one of the certificate's names on the bound port, else the canonical origin.
   */
  forHost(hostHeader: string | undefined): OriginUrls {
    if (hostHeader === undefined || hostHeader === '') return this.#canonical;
    const cached = this.#byHost.get(hostHeader);
    if (cached !== undefined) return cached;
    let url: URL;
    try {
      url = new URL(`https://${hostHeader}`);
    } catch {
      return this.#canonical;
    }
    // Anything but a plain `host:port` (a path, credentials, another spelling) is not a name we advertise.
    if (url.host !== hostHeader.toLowerCase() || url.host === new URL(this.#canonical.origin).host) return this.#canonical;
    if ((url.port === '' ? 443 : Number(url.port)) !== this.#port || !this.#certificateNames.has(url.hostname)) return this.#canonical;
    const urls = new OriginUrls(url.origin);
    // Bounded: only certificate names times one port get here, and header spellings of them.
    if (this.#byHost.size < 64) this.#byHost.set(hostHeader, urls);
    return urls;
  }

  /** Whether the server certificate is valid for the canonical origin's host (else clients refuse its TLS). */
  canonicalIsCertified(): boolean {
    return this.#certificateNames.has(new URL(this.#canonical.origin).hostname);
  }

  /** Every origin advertised: the canonical one and each certificate name on the bound port. */
  advertisedOrigins(): readonly OriginUrls[] {
    return this.#advertised;
  }

  /**
   * Audiences a client assertion may name for a tenant (by each of `tenantNames`): any advertised token
   * endpoint (v1 or v2), or the tenant's issuer, on any advertised origin, as MSAL addresses the assertion to
   * the token endpoint of the origin it was given.
   */
  assertionAudiences(tenantNames: Iterable<string>): string[] {
    const out: string[] = [];
    for (const name of new Set(tenantNames)) {
      for (const urls of this.#advertised) {
        out.push(urls.tokenEndpoint(name, 'v2'), urls.tokenEndpoint(name, 'v1'), urls.v1Issuer(name), urls.v2Issuer(name));
      }
    }
    return out;
  }

  #deriveCanonical(): OriginUrls {
    if (this.#explicit !== undefined) return this.#explicit;
    return new OriginUrls(defaultOrigin(this.#listenHost, this.#port));
  }

  #deriveAdvertised(): readonly OriginUrls[] {
    const out = new Map<string, OriginUrls>([[this.#canonical.origin, this.#canonical]]);
    for (const name of this.#certificateNames) {
      const urls = new OriginUrls(`https://${name}:${String(this.#port)}`);
      out.set(urls.origin, urls);
    }
    return [...out.values()];
  }
}

/** A DNS name or IP address in the form `URL.hostname` gives (lower case, IPv6 bracketed and compressed). */
function normaliseHostname(name: string): string | undefined {
  try {
    return new URL(`https://${hostForUrl(name.replace(/^\[|\]$/g, ''))}/`).hostname;
  } catch {
    return undefined;
  }
}

/** The DNS names and IP addresses a PEM certificate (the first in a chain) is valid for. */
export function certificateNames(certPem: string): string[] {
  const san = new X509Certificate(certPem).subjectAltName ?? '';
  const names: string[] = [];
  for (const entry of san.split(', ')) {
    // Node quotes entries that contain separators; no name we issue does, so skip rather than unquote.
    const match = /^(DNS|IP Address):([^"]+)$/.exec(entry);
    if (match?.[2] !== undefined) names.push(match[2]);
  }
  return names;
}
