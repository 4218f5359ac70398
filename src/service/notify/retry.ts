/** When a failed delivery is tried again: exponential backoff with jitter, Retry-After honoured, for at least 24 h. */
export const RETRY_FOR_MS = 24 * 3600 * 1000;
const BASE_MS = 5000;
const CAP_MS = 3600 * 1000;

export type AttemptResult = { kind: "delivered" } | { kind: "retry"; error: string; retryAfterMs?: number } | { kind: "permanent"; error: string };

/** 2xx delivered; 408, 429 and 5xx retried; any other 4xx is a mistake retrying cannot mend. */
export function classify(status: number, retryAfter: string | null, now: number): AttemptResult {
  if (status >= 200 && status < 300) return { kind: "delivered" };
  const ra = parseRetryAfter(retryAfter, now);
  if (status === 408 || status === 429 || status >= 500) return { kind: "retry", error: `HTTP ${status}`, ...(ra !== null ? { retryAfterMs: ra } : {}) };
  return { kind: "permanent", error: `HTTP ${status}` };
}

export function parseRetryAfter(v: string | null, now: number): number | null {
  if (!v) return null;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** The next attempt, or null when the entry has been retried for long enough and is dead-lettered. */
export function nextAttemptAt(createdAt: number, attempts: number, now: number, retryAfterMs: number | undefined, random: () => number): number | null {
  if (now - createdAt >= RETRY_FOR_MS) return null;
  const backoff = Math.min(CAP_MS, BASE_MS * 2 ** Math.max(0, attempts - 1)) * (0.5 + random());
  return now + Math.max(backoff, retryAfterMs ?? 0);
}
