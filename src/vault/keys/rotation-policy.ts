/**
 * Rotation policies (spec §1.8): validated and normalised as Key Vault stores them, and when a `Rotate`
 * action falls due. Rules: `expiryTime` an ISO-8601 duration of at least 28 days; at most one `Rotate` and one
 * `Notify`; each action has exactly one trigger; `timeAfterCreate` only on `Rotate`; triggers at least 7 days
 * after creation and at least 7 days before expiry; `timeBeforeExpiry` needs `expiryTime`; a `Notify` of
 * `timeBeforeExpiry: P30D` is added when absent; action types compare case-insensitively. Durations use
 * years, months, weeks and days, counted as 365, 30, 7 and 1 days.
 */
import { VaultErrors } from '../errors.js';

export interface LifetimeAction {
  trigger: { timeAfterCreate?: string; timeBeforeExpiry?: string };
  action: { type: 'Rotate' | 'Notify' };
}

/** A policy as stored: the actions and expiry, with its own times (Unix seconds). */
export interface RotationPolicy {
  lifetimeActions: LifetimeAction[];
  expiryTime?: string;
  created: number;
  updated: number;
}

const DURATION = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$/;
const DEFAULT_NOTIFY: LifetimeAction = { trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Notify' } };

/** Days in an ISO-8601 date duration; undefined when it is not one. */
export function durationDays(text: string): number | undefined {
  const m = DURATION.exec(text.toUpperCase());
  if (m === null || text.length < 3) return undefined;
  const [y, mo, w, d] = [m[1], m[2], m[3], m[4]].map((v) => Number(v ?? 0)) as [number, number, number, number];
  return y * 365 + mo * 30 + w * 7 + d;
}

function duration(value: unknown, field: string): { text: string; days: number } {
  const days = typeof value === 'string' ? durationDays(value) : undefined;
  if (days === undefined || typeof value !== 'string') throw VaultErrors.badParameter(`${field} must be an ISO 8601 duration such as P90D or P1Y.`);
  return { text: value.toUpperCase(), days };
}

/** A KeyRotationPolicy body as stored, or 400 `BadParameter` naming the rule it breaks. */
export function readRotationPolicy(body: unknown, previous: RotationPolicy | undefined, nowSeconds: number): RotationPolicy {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw VaultErrors.badParameter('The request body must be a JSON object.');
  const b = body as { lifetimeActions?: unknown; attributes?: unknown };
  const attributes = (b.attributes ?? {}) as Record<string, unknown>;
  if (typeof attributes !== 'object' || Array.isArray(attributes)) throw VaultErrors.badParameter('Property attributes must be an object.');
  const expiry =
    attributes['expiryTime'] === undefined || attributes['expiryTime'] === null ? undefined : duration(attributes['expiryTime'], 'attributes.expiryTime');
  if (expiry !== undefined && expiry.days < 28) throw VaultErrors.badParameter('attributes.expiryTime must be at least 28 days (P28D).');
  const given = b.lifetimeActions ?? [];
  if (!Array.isArray(given)) throw VaultErrors.badParameter('Property lifetimeActions must be a list.');
  if (given.length > 2) throw VaultErrors.badParameter('A rotation policy has at most two lifetime actions: one Rotate and one Notify.');
  const actions: LifetimeAction[] = [];
  for (const raw of given as unknown[]) {
    const r = (raw ?? {}) as { trigger?: Record<string, unknown>; action?: Record<string, unknown> };
    const typeText = typeof r.action?.['type'] === 'string' ? r.action['type'].toLowerCase() : '';
    const type = typeText === 'rotate' ? 'Rotate' : typeText === 'notify' ? 'Notify' : undefined;
    if (type === undefined) throw VaultErrors.badParameter('lifetimeActions[].action.type must be Rotate or Notify.');
    if (actions.some((a) => a.action.type === type)) throw VaultErrors.badParameter(`A rotation policy has at most one ${type} action.`);
    const after = r.trigger?.['timeAfterCreate'];
    const before = r.trigger?.['timeBeforeExpiry'];
    const hasAfter = after !== undefined && after !== null;
    const hasBefore = before !== undefined && before !== null;
    if (hasAfter === hasBefore) throw VaultErrors.badParameter('Each lifetime action needs exactly one trigger: timeAfterCreate or timeBeforeExpiry.');
    const trigger: LifetimeAction['trigger'] = {};
    if (hasAfter) {
      if (type !== 'Rotate') throw VaultErrors.badParameter('timeAfterCreate can only trigger a Rotate action.');
      const d = duration(after, 'trigger.timeAfterCreate');
      if (d.days < 7) throw VaultErrors.badParameter('timeAfterCreate must be at least 7 days (P7D).');
      if (expiry !== undefined && d.days > expiry.days - 7) throw VaultErrors.badParameter('timeAfterCreate must be at least 7 days before the expiry time.');
      trigger.timeAfterCreate = d.text;
    } else {
      const d = duration(before, 'trigger.timeBeforeExpiry');
      if (expiry === undefined) throw VaultErrors.badParameter('timeBeforeExpiry needs attributes.expiryTime.');
      if (d.days < 7) throw VaultErrors.badParameter('timeBeforeExpiry must be at least 7 days (P7D).');
      if (d.days > expiry.days - 7) throw VaultErrors.badParameter('timeBeforeExpiry must leave at least 7 days after creation.');
      trigger.timeBeforeExpiry = d.text;
    }
    actions.push({ trigger, action: { type } });
  }
  if (!actions.some((a) => a.action.type === 'Notify')) actions.push(DEFAULT_NOTIFY);
  return {
    lifetimeActions: actions,
    ...(expiry === undefined ? {} : { expiryTime: expiry.text }),
    created: previous?.created ?? nowSeconds,
    updated: nowSeconds,
  };
}

export const parseStoredPolicy = (text: string): RotationPolicy => JSON.parse(text) as RotationPolicy;

/** The KeyRotationPolicy wire shape; a key that never had one answers the default Notify policy (spec §1.8). */
export function rotationPolicyView(id: string, policy: RotationPolicy | undefined): Record<string, unknown> {
  if (policy === undefined) return { id, lifetimeActions: [DEFAULT_NOTIFY], attributes: {} };
  return {
    id,
    lifetimeActions: policy.lifetimeActions,
    attributes: { ...(policy.expiryTime === undefined ? {} : { expiryTime: policy.expiryTime }), created: policy.created, updated: policy.updated },
  };
}

const DAY_S = 86_400;

/**
 * Whether the policy's `Rotate` action is due for a latest version created at `createdSeconds` (with `exp` at
 * `expiresSeconds`, if set), at `nowSeconds`.
 */
export function rotationDue(policy: RotationPolicy, createdSeconds: number, expiresSeconds: number | null, nowSeconds: number): boolean {
  const rotate = policy.lifetimeActions.find((a) => a.action.type === 'Rotate');
  if (rotate === undefined) return false;
  if (rotate.trigger.timeAfterCreate !== undefined) return nowSeconds >= createdSeconds + (durationDays(rotate.trigger.timeAfterCreate) ?? Infinity) * DAY_S;
  if (rotate.trigger.timeBeforeExpiry !== undefined && expiresSeconds !== null) {
    return nowSeconds >= expiresSeconds - (durationDays(rotate.trigger.timeBeforeExpiry) ?? 0) * DAY_S;
  }
  return false;
}

/** The `exp` a new version gets under the policy (`created + expiryTime`), or null when it sets none. */
export function expiryUnder(policy: RotationPolicy | undefined, createdSeconds: number): number | null {
  const days = policy?.expiryTime === undefined ? undefined : durationDays(policy.expiryTime);
  return days === undefined ? null : createdSeconds + days * DAY_S;
}
