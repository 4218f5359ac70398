/**
 * The agent's path to the arbiter: beats over a WebSocket when one is open, over HTTP otherwise,
 * and views the arbiter pushes. The socket is a speed-up, never a dependency: a beat goes over HTTP
 * at once when no socket is open, when the socket closes under it, or when its answer is later
 * than `fallbackAfterMs` (the socket is then dropped as dead). A closed socket is reopened after
 * 100-250 ms, doubling to at most 5 s. Beats are never queued for a socket: a stale beat is worthless.
 */
import WebSocket from "ws";
import { HeartbeatReply, type HeartbeatBody, PushMessage, type PushMessageBody } from "../api/schemas.js";
import { type ArbiterClient, type BeatFailure, type BeatResult, safeJson } from "./arbiter-client.js";
import type { Logger } from "./log.js";

export type PushedView = PushMessageBody["push"];

/** What the agent needs of its arbiter, over whichever path. */
export interface ArbiterPort {
  readonly pairId: string;
  beat(body: HeartbeatBody, timeoutMs: number, fallbackAfterMs?: number): Promise<BeatResult>;
  /** Views pushed with no beat to answer (none over plain HTTP). */
  onPush?(fn: (view: PushedView) => void): void;
  open?(): void;
  close?(): void;
}

const FIRST_RETRY_MS: [number, number] = [100, 250];
const MAX_RETRY_MS = 5000;

interface Pending {
  resolve: (r: BeatResult | null) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class ArbiterLink implements ArbiterPort {
  readonly pairId: string;
  #ws: WebSocket | null = null;
  #pending = new Map<number, Pending>();
  #pushFns: ((v: PushedView) => void)[] = [];
  #retryMs = 0;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;
  /** Sockets opened so far (the tests and the log count reconnects). */
  opened = 0;

  constructor(
    readonly http: ArbiterClient,
    readonly log: Logger,
    readonly random: () => number = Math.random,
  ) {
    this.pairId = http.pairId;
  }

  get socketOpen(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  onPush(fn: (view: PushedView) => void) {
    this.#pushFns.push(fn);
  }

  open() {
    this.#closed = false;
    this.#connect();
  }

  close() {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#drop(this.#ws, "agent stopping");
  }

  async beat(body: HeartbeatBody, timeoutMs: number, fallbackAfterMs = timeoutMs): Promise<BeatResult> {
    const started = Date.now();
    const ws = this.#ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      const viaSocket = await this.#socketBeat(ws, body, Math.min(fallbackAfterMs, timeoutMs));
      if (viaSocket) return viaSocket;
      // No answer on the socket: the same beat (same seq, so never counted twice) over HTTP.
      const left = timeoutMs - (Date.now() - started);
      if (left <= 0) return { ok: false, status: null, code: "timeout", message: "no answer on the WebSocket" };
      return this.http.beat(body, left);
    }
    return this.http.beat(body, timeoutMs);
  }

  /** The answer, or null when the socket failed the beat (closed under it, or silent too long). */
  #socketBeat(ws: WebSocket, body: HeartbeatBody, waitMs: number): Promise<BeatResult | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(body.seq);
        this.log.warn("no answer on the WebSocket: beating over HTTP and reconnecting", { waitMs });
        this.#drop(ws, "silent");
        resolve(null);
      }, waitMs);
      this.#pending.set(body.seq, { resolve, timer });
      ws.send(JSON.stringify(body), (err) => {
        if (err) this.#settle(body.seq, null);
      });
    });
  }

  #settle(seq: number, r: BeatResult | null) {
    const p = this.#pending.get(seq);
    if (!p) return;
    this.#pending.delete(seq);
    clearTimeout(p.timer);
    p.resolve(r);
  }

  #connect() {
    if (this.#closed || this.#ws) return;
    const t = this.http.token();
    if (!t.ok) return this.#retryLater(t.message);
    const url = `${this.http.url.replace(/\/$/, "").replace(/^http/, "ws")}/v1/pairs/${encodeURIComponent(this.pairId)}/connect`;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${t.token}` }, handshakeTimeout: 5000, perMessageDeflate: false });
    this.#ws = ws;
    ws.on("open", () => {
      this.opened += 1;
      this.log.info("push channel open", { opened: this.opened });
    });
    ws.on("message", (data, isBinary) => {
      if (!isBinary) this.#onMessage(data.toString());
    });
    ws.on("unexpected-response", (_req, res) => {
      if (res.statusCode === 401) this.http.forgetToken();
      this.log.warn("push channel refused: beating over HTTP", { status: res.statusCode });
      this.#drop(ws, `HTTP ${res.statusCode}`);
    });
    ws.on("error", (e) => this.#drop(ws, e.message));
    ws.on("close", (code, reason) => this.#drop(ws, `closed ${code} ${reason.toString()}`.trim()));
  }

  #onMessage(text: string) {
    const m = safeJson(text);
    if (m && typeof m === "object" && "push" in m) {
      const p = PushMessage.safeParse(m);
      if (p.success) for (const fn of this.#pushFns) fn(p.data.push);
      else this.log.warn("a push that is not a view: ignored", { error: p.error.message.slice(0, 200) });
      return;
    }
    const seq = m && typeof m === "object" && Number.isSafeInteger((m as { seq?: unknown }).seq) ? (m as { seq: number }).seq : null;
    if (seq === null) return;
    if ("error" in (m as object)) {
      const e = (m as { error?: { code?: unknown; message?: unknown } }).error;
      const failure: BeatFailure = { ok: false, status: null, code: typeof e?.code === "string" ? e.code : "bad_reply", message: typeof e?.message === "string" ? e.message.slice(0, 200) : "" };
      if (failure.code === "unknown_token") this.http.forgetToken();
      return this.#settle(seq, failure);
    }
    const r = HeartbeatReply.safeParse(m);
    this.#settle(seq, r.success ? { ok: true, reply: r.data } : { ok: false, status: null, code: "bad_reply", message: r.error.message.slice(0, 200) });
    // A socket that answers is healthy: the next failure starts its backoff from the beginning.
    if (r.success) this.#retryMs = 0;
  }

  /** Forget a socket: fail the beats waiting on it (they go over HTTP at once) and reconnect soon. */
  #drop(ws: WebSocket | null, why: string) {
    if (!ws || this.#ws !== ws) return;
    this.#ws = null;
    for (const seq of [...this.#pending.keys()]) this.#settle(seq, null);
    ws.removeAllListeners();
    ws.on("error", () => {});
    try {
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, "done");
      else ws.terminate();
    } catch {
      // Already gone.
    }
    if (!this.#closed) this.#retryLater(why);
  }

  #retryLater(why: string) {
    if (this.#closed || this.#retryTimer) return;
    const [lo, hi] = FIRST_RETRY_MS;
    // The first wait is jittered; doubling it keeps agents that lost the same deploy spread apart.
    this.#retryMs = this.#retryMs === 0 ? lo + (hi - lo) * this.random() : Math.min(MAX_RETRY_MS, this.#retryMs * 2);
    const delay = Math.round(this.#retryMs);
    this.log.info("push channel down: beating over HTTP", { why, retryInMs: delay });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#connect();
    }, delay);
  }
}
