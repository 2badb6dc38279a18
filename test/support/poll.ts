/**
 * The one way tests wait: poll the condition itself, bounded, never a fixed sleep that assumes an idle machine.
 */

/** Polls `probe` every `intervalMs` until it returns a value other than undefined; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${String(timeoutMs)} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** {@link until} for a yes/no condition. */
export async function untilTrue(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 20_000, intervalMs = 200): Promise<void> {
  await until(what, async () => ((await predicate()) ? true : undefined), timeoutMs, intervalMs);
}
