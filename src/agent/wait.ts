/** Waits for the first value a subscription delivers that `accept` takes, or gives up after a timeout. */
export function waitFor<T>(subscribe: (fn: (v: T) => void) => () => void, accept: (v: T) => boolean, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      off();
      resolve(false);
    }, timeoutMs);
    const off = subscribe((v) => {
      if (!accept(v)) return;
      clearTimeout(timer);
      off();
      resolve(true);
    });
  });
}
