/**
 * A background job on an unref'd interval timer that skips a beat while its previous run is still going, so
 * a slow run (a slow store, say) never piles up behind itself.
 */
export class BackgroundInterval {
  #timer: NodeJS.Timeout | undefined;

  /** Runs `run` every `intervalMs`, passing its failures to `onError`. Starting again replaces the previous timer. */
  start(intervalMs: number, run: () => Promise<unknown>, onError: (err: unknown) => void): void {
    this.stop();
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      run()
        .catch(onError)
        .finally(() => {
          running = false;
        });
    }, intervalMs);
    timer.unref();
    this.#timer = timer;
  }

  /** Stops the timer, if one is running. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
