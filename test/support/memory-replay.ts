/**
 * An in-memory replay store (the store's `replay` facet: a `jti` is remembered once) for the store-less unit
 * suites of the token endpoint's client authentication, host authentication and grants.
 */
export function memoryReplay(): { remember(key: string): Promise<boolean>; purgeExpired(): Promise<number> } {
  const seen = new Set<string>();
  return {
    remember: (key) => {
      if (seen.has(key)) return Promise.resolve(false);
      seen.add(key);
      return Promise.resolve(true);
    },
    purgeExpired: () => Promise.resolve(0),
  };
}
