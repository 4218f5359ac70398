/**
 * A token bucket per node for heartbeats: an agent beats every HB, every fastBeatMs while it sees
 * trouble, plus a few extra beats around orders; anything much faster is a broken or hostile client, refused before it changes state.
 */
export interface Bucket {
  tokens: number;
  at: number;
}

/** Room for a burst well beyond an agent's own (a restart, acknowledgements, retries). */
export const BEAT_BURST = 50;

/** Refill per second: twice the fastest beat rate the configuration allows (fast beats in trouble), plus room for acknowledgements. */
export function beatRate(t: { heartbeatIntervalMs: number; fastBeatMs?: number }): number {
  return 5 + 2000 / Math.min(t.heartbeatIntervalMs, t.fastBeatMs ?? t.heartbeatIntervalMs);
}

/** Takes one token if there is one; the bucket is updated in place. */
export function take(b: Bucket, now: number, perSecond: number, burst = BEAT_BURST): boolean {
  b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) / 1000) * perSecond);
  b.at = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}
