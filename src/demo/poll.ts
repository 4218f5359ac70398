/** Polls `f` until it gives a truthy value (a throw counts as "not yet"), or fails after `ms`. */
export async function pollUntil<T>(what: string, f: () => Promise<T | null | false> | T | null | false, ms = 60_000, everyMs = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await Promise.resolve()
      .then(f)
      .catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
