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

/**
 * `promise`'s value, or `'timeout'` after `timeoutMs`. The timer is cleared either way: a pending timer keeps the
 * test file's process alive after its last test (a 20 s timer left behind made a 3 s file take 23 s).
 */
export async function within<T>(promise: Promise<T>, timeoutMs: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `promise`'s value, or a failure `message()` names after `timeoutMs` ({@link within}: the timer is cleared either way). */
export async function withinOrFail<T>(promise: Promise<T>, timeoutMs: number, message: () => string): Promise<T> {
  const result = await within(promise, timeoutMs);
  if (result === 'timeout') throw new Error(message());
  return result;
}
