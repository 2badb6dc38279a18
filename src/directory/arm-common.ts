/**
 * ARM rules every resource type shares (locations, tags, the addressed subscription), used by the resource
 * modules of the directory (resources.ts, vaults.ts) so that none of them depends on another.
 */
import type { Repositories, Subscription, Tags } from '../store/types.js';
import { DirectoryErrors } from './errors.js';

/** ARM normalises locations: `West Europe` and `westeurope` are the same place. */
export function normalizeLocation(location: unknown): string {
  if (typeof location !== 'string') throw DirectoryErrors.invalidLocation(location);
  const normalized = location.replace(/\s+/g, '').toLowerCase();
  if (!/^[a-z0-9-]{1,64}$/.test(normalized)) throw DirectoryErrors.invalidLocation(location);
  return normalized;
}

const MAX_TAGS = 50;

/** ARM's tag limits: at most 50, names 1-512 characters without `<>%&\?/`, values up to 256 characters. */
export function validateTags(tags: unknown): Tags {
  if (tags === undefined || tags === null) return {};
  if (typeof tags !== 'object' || Array.isArray(tags)) throw DirectoryErrors.invalidTags('tags must be an object of string values');
  const entries = Object.entries(tags as Record<string, unknown>);
  if (entries.length > MAX_TAGS) throw DirectoryErrors.invalidTags(`at most ${String(MAX_TAGS)} tags are allowed`);
  const out: Tags = {};
  for (const [name, value] of entries) {
    if (name.length === 0 || name.length > 512 || /[<>%&\\?/]/.test(name)) {
      throw DirectoryErrors.invalidTags(`tag name '${name.slice(0, 64)}' must be 1-512 characters and must not contain <, >, %, &, \\, ? or /`);
    }
    if (typeof value !== 'string') throw DirectoryErrors.invalidTags(`the value of tag '${name}' must be a string`);
    if (value.length > 256) throw DirectoryErrors.invalidTags(`the value of tag '${name}' is longer than 256 characters`);
    out[name] = value;
  }
  return out;
}

/** The subscription, or `SubscriptionNotFound`; for writes, `ReadOnlyDisabledSubscription` when it is disabled. */
export async function requireSubscription(repos: Repositories, subscriptionId: string, options: { forWrite?: boolean } = {}): Promise<Subscription> {
  const subscription = await repos.subscriptions.get(subscriptionId);
  if (subscription === undefined) throw DirectoryErrors.subscriptionNotFound(subscriptionId);
  if (options.forWrite === true && subscription.state !== 'Enabled') {
    throw DirectoryErrors.subscriptionDisabled(subscription.id);
  }
  return subscription;
}
