/** Argument helpers shared by the az-shaped commands. */
import { createInterface } from 'node:readline/promises';
import { parseArmResourceId, type ArmResourceId } from '../../shared/ids.js';

/** az's `--tags a=b c=d` (a bare `k` means an empty value; `--tags ""` clears all tags). */
export function parseTags(values: readonly string[] | undefined): Record<string, string> | undefined {
  if (values === undefined) return undefined;
  const tags: Record<string, string> = {};
  for (const value of values) {
    if (value === '') continue;
    const eq = value.indexOf('=');
    const key = eq < 0 ? value : value.slice(0, eq);
    if (key === '') throw new Error(`invalid tag '${value}': use key=value`);
    tags[key] = eq < 0 ? '' : value.slice(eq + 1);
  }
  return tags;
}

/** Appends a repeated option's values. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A whole number of years from 1 to 100 (`--years`). */
export function parseYears(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 1 || n > 100) throw new Error(`--years must be a whole number from 1 to 100 (got '${value}')`);
  return n;
}

/** Path segment encoding for names that go into ARM paths. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

/** Parses `--ids` for a resource of `type`. */
export function parseIds(id: string, type: string): ArmResourceId {
  const parsed = parseArmResourceId(id.trim());
  if (parsed?.type.toLowerCase() !== type.toLowerCase()) throw new Error(`'${id}' is not the resource id of a ${type}`);
  return parsed;
}

/** Asks az's confirmation question on the terminal; refuses to guess when there is no terminal. */
export async function confirm(action: string, flagHint: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new Error(`refusing to ${action} without confirmation: pass ${flagHint} when not running interactively`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question('Are you sure you want to perform this operation? (y/n): ');
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/** A warning on stderr, az style. */
export function warn(message: string): void {
  process.stderr.write(`WARNING: ${message}\n`);
}
