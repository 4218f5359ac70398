/**
 * Heartbeats to the arbiter over HTTP: the fallback and the simple client (arbiter-link.ts prefers
 * a WebSocket). The agent token is read from its file, and read again after a 401 (the operator
 * may have rotated it). Answers are validated with the API's own schema.
 */
import { readFileSync } from "node:fs";
import { type HeartbeatBody, HeartbeatReply, type HeartbeatReplyBody } from "../api/schemas.js";

export type BeatFailure = { ok: false; status: number | null; code: string; message: string };
export type BeatResult = { ok: true; reply: HeartbeatReplyBody } | BeatFailure;

export class ArbiterClient {
  #token: string | null = null;

  constructor(
    readonly url: string,
    readonly pairId: string,
    readonly tokenFile: string,
    readonly fetchImpl: typeof fetch = fetch,
  ) {}

  /** The token, read from its file once and again after it was refused. */
  token(): { ok: true; token: string } | BeatFailure {
    try {
      this.#token ??= readFileSync(this.tokenFile, "utf8").trim();
      return { ok: true, token: this.#token };
    } catch (e) {
      // A missing or unreadable token file is a failed beat, never a crash: the fence and watchdog rules go on.
      return { ok: false, status: null, code: "token_unreadable", message: `${this.tokenFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
    }
  }

  /** The arbiter refused the token: read the file again next time (the operator may have rotated it). */
  forgetToken() {
    this.#token = null;
  }

  /** One heartbeat, given up after `timeoutMs`. */
  async beat(body: HeartbeatBody, timeoutMs: number): Promise<BeatResult> {
    const t = this.token();
    if (!t.ok) return t;
    const token = t.token;
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.url.replace(/\/$/, "")}/v1/pairs/${encodeURIComponent(this.pairId)}/heartbeat`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      return { ok: false, status: null, code: "unreachable", message: e instanceof Error ? e.message : String(e) };
    }
    const text = await res.text().catch(() => "");
    if (res.status === 401) this.forgetToken();
    if (!res.ok) {
      const err = safeJson(text) as { error?: { code?: string; message?: string } } | null;
      return { ok: false, status: res.status, code: err?.error?.code ?? `http_${res.status}`, message: err?.error?.message ?? text.slice(0, 200) };
    }
    const parsed = HeartbeatReply.safeParse(safeJson(text));
    if (!parsed.success) return { ok: false, status: res.status, code: "bad_reply", message: parsed.error.message.slice(0, 200) };
    return { ok: true, reply: parsed.data };
  }
}

export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
