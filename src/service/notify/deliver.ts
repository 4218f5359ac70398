/** One delivery attempt of an outbox entry to its sink, bounded by a timeout. */
import type { OutboxEntry } from "../pair-store.js";
import { type AttemptResult, classify } from "./retry.js";
import { signWebhook } from "./sign.js";
import type { Sink } from "./sinks.js";

export const ATTEMPT_TIMEOUT_MS = 10_000;

export async function attempt(sink: Sink, entry: OutboxEntry, now: number, timeoutMs = ATTEMPT_TIMEOUT_MS): Promise<{ status: string; result: AttemptResult }> {
  const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "colo-arbiter" };
  if (sink.type === "webhook") {
    const ts = Math.floor(now / 1000);
    headers["webhook-id"] = entry.eventId;
    headers["webhook-timestamp"] = String(ts);
    try {
      headers["webhook-signature"] = await signWebhook(sink.secret, entry.eventId, ts, entry.body);
    } catch (e) {
      // Never retried into a stuck outbox: recorded and dead-lettered like any permanent failure.
      return { status: "bad_secret", result: { kind: "permanent", error: e instanceof Error ? e.message : String(e) } };
    }
  }
  try {
    // A redirect is not followed (it could point into the arbiter's own network): it fails for good.
    const res = await fetch(sink.url, { method: "POST", headers, body: entry.body, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return { status: String(res.status), result: classify(res.status, res.headers.get("retry-after"), now) };
  } catch (e) {
    const timeout = e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError");
    // The class only: a fetch error's text can carry the URL, and a Slack URL is its secret.
    const error = timeout ? `no answer within ${timeoutMs} ms` : `network error (${e instanceof Error ? e.name : typeof e})`;
    return { status: timeout ? "timeout" : "network_error", result: { kind: "retry", error } };
  }
}
