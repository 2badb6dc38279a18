/**
 * Outbound assertions per linked identity, from the authority (`POST /openmsi/hosts/federation-assertion`),
 * reused until 80 % of their life (one authority call in flight per identity). The assertion is a credential:
 * it is never logged.
 */
import type { FederationAssertionGrant } from '../../shared/host-protocol.js';
import { epochSeconds, systemClock, type Clock } from '../../shared/clock.js';

/** The share of an assertion's life after which a new one is fetched (and a token file rewritten). */
export const ASSERTION_REFRESH_FRACTION = 0.8;

/** When a grant is due for replacement (epoch seconds): 80 % of its life. */
export function refreshDue(grant: FederationAssertionGrant): number {
  return grant.issuedAt + Math.floor((grant.expiresOn - grant.issuedAt) * ASSERTION_REFRESH_FRACTION);
}

export class FederationAssertions {
  readonly #fetch: (objectId: string) => Promise<FederationAssertionGrant>;
  readonly #clock: Clock;
  readonly #grants = new Map<string, FederationAssertionGrant>();
  readonly #inFlight = new Map<string, Promise<FederationAssertionGrant>>();
  #generation = 0;

  constructor(options: { fetch: (objectId: string) => Promise<FederationAssertionGrant>; clock?: Clock }) {
    this.#fetch = options.fetch;
    this.#clock = options.clock ?? systemClock;
  }

  /** A current assertion for the identity: the kept one before its refresh is due, else a new one. */
  async get(objectId: string): Promise<FederationAssertionGrant> {
    const key = objectId.toLowerCase();
    const kept = this.#grants.get(key);
    if (kept !== undefined && epochSeconds(this.#clock) < refreshDue(kept)) return kept;
    const pending = this.#inFlight.get(key);
    if (pending !== undefined) return pending;
    const generation = this.#generation;
    const flight = this.#fetch(key)
      .then((grant) => {
        if (generation === this.#generation) this.#grants.set(key, grant);
        return grant;
      })
      .finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, flight);
    return flight;
  }

  /** Forgets the assertions of these identities (unassigned, unlinked or relinked). */
  drop(objectIds: readonly string[]): void {
    for (const id of objectIds) this.#grants.delete(id.toLowerCase());
  }

  /** Forgets everything; fetches in flight do not repopulate it. */
  clear(): void {
    this.#generation++;
    this.#grants.clear();
  }
}
