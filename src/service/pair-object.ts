/**
 * One Durable Object per pair. It only persists, schedules its alarm and delivers: every decision
 * is src/protocol's decide(). It keeps last-seen times in memory (the restart rule makes losing
 * them safe), so a steady-state heartbeat writes nothing.
 */
import { DurableObject } from "cloudflare:workers";
import type { EventsPage, HeartbeatBody, PairSpecBody, PairStatusBody } from "../api/schemas.js";
import type { z } from "@hono/zod-openapi";
import { type ArbiterEvent, type BeatReply, type Outcome, decide } from "../protocol/arbiter/decide.js";
import { nextAlarm } from "../protocol/arbiter/deadline.js";
import type { LogEvent } from "../protocol/arbiter/events.js";
import { type ArbiterState, agentTimings, createPair, restore } from "../protocol/arbiter/state.js";
import { type Health, health, pastLease } from "../protocol/arbiter/view.js";
import { DEFAULT_CONFIG, type PairConfig, checkTimings } from "../protocol/timing.js";
import type { Order } from "../protocol/types.js";
import type { Principal } from "./auth.js";
import { type Clock, clockFor } from "./clock.js";
import type { Env } from "./env.js";
import { type ApiError, type Result, apiError, errorBody, fail, ok } from "./errors.js";
import { BEAT_BURST, type Bucket, beatRate, take } from "./rate-limit.js";
import { type SocketTag, echoableCloseCode, isSocketTag, parseBeatMessage } from "./beat-socket.js";
import { pushOf, viewsChanged } from "../protocol/arbiter/push.js";
import { bearer } from "./auth.js";
import { attempt } from "./notify/deliver.js";
import { outgoing } from "./notify/messages.js";
import { nextAttemptAt } from "./notify/retry.js";
import { type Sink, insecureSinksAllowed, redact, resolveSinks } from "./notify/sinks.js";
import { PairStore } from "./pair-store.js";
import { alarmToSet } from "./schedule.js";
import { type PairSummary, summaryOf } from "./registry-object.js";
import { pairStatus } from "./status-view.js";
import { newAgentToken, parseAgentToken, secretMatches, sha256, toHex } from "./tokens.js";

type OperatorEvent = Extract<ArbiterEvent, { type: "failover" | "maintenance" | "resolve" | "reprotect" }>;

/** Delivered outbox entries are kept this long (their attempts stay visible), then dropped. */
const DELIVERED_KEPT_MS = 7 * 24 * 3600 * 1000;
const GUARD_NOTICE_EVERY_MS = 60_000;
/** How long a rotated-out agent token may still work while its agent has not used the new one. */
export const ROTATION_GRACE_MS = 24 * 3600 * 1000;

export interface PutResult {
  created: boolean;
  status: PairStatusBody;
  agentTokens?: Record<string, string>;
}

export class PairObject extends DurableObject<Env> {
  #store: PairStore;
  #clock: Clock;
  #state: ArbiterState | null = null;
  #tokens = new Map<string, { hash: string; prevHash: string | null; prevUntil: number | null }>();
  #alarmAt: number | null = null;
  #sinks: Sink[] = [];
  #delivering: Promise<void> | null = null;
  /** When the outbox's next head is due, mirrored in memory so a beat reads no storage for it. */
  #outboxDue: number | null = null;
  /** When this instance started: a hibernated object starts again when it wakes. */
  readonly #since: number;
  /** Each node's last beat before this instance started, from its socket's attachment. */
  #heardBefore: Record<string, number> = {};

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#clock = clockFor(env);
    this.#since = this.#clock.now();
    this.#store = new PairStore(ctx.storage);
    void ctx.blockConcurrencyWhile(async () => {
      const d = this.#store.loadDurable();
      if (!d) return;
      // A (re)start: every node counts as granted a lease now (the protocol's restart rule).
      this.#state = restore(d, this.#clock.now());
      this.#tokens = new Map([...this.#store.tokenHashes()].map(([node, t]) => [node, { ...t, prevUntil: this.#store.previousTokenUntil(node) }]));
      this.#sinks = this.#store.sinks();
      this.#outboxDue = this.#store.nextDue();
      this.#alarmAt = await this.#store.getAlarm();
      for (const ws of ctx.getWebSockets()) {
        const tag = ws.deserializeAttachment();
        if (isSocketTag(tag) && tag.lastBeatAt !== undefined) this.#heardBefore[tag.nodeId] = Math.max(this.#heardBefore[tag.nodeId] ?? 0, tag.lastBeatAt);
      }
      await this.#rearm();
    });
  }

  // ---- agents ------------------------------------------------------------

  async heartbeat(secret: string, body: HeartbeatBody): Promise<Result<BeatReply>> {
    const auth = await this.#agentAuth(body.nodeId, secret);
    if (!auth.ok) return auth;
    this.#tokenUsed(body.nodeId, auth.value);
    return this.#beat(body);
  }

  /** One beat, over HTTP or a WebSocket alike, once its sender is authenticated. */
  async #beat(body: HeartbeatBody): Promise<Result<BeatReply>> {
    if (!this.#admitBeat(body.nodeId)) return fail("rate_limited", `${body.nodeId} beats faster than its configuration allows: beat every heartbeatIntervalMs`);
    const out = await this.#apply({ type: "beat", report: body }, body.nodeId);
    return out.reply ? ok(out.reply) : { ok: false, error: rejectionError(out) };
  }

  /** Rotation: the old token works until the agent first uses the new one (a beat or a connect). */
  #tokenUsed(node: string, which: "current" | "previous") {
    const t = this.#tokens.get(node)!;
    if (which === "current" && t.prevHash) {
      this.#store.forgetPreviousToken(node);
      t.prevHash = null;
    }
  }

  // ---- the push channel ----------------------------------------------------------

  /**
   * GET /v1/pairs/:pairId/connect, forwarded by the Worker: the agent's token is checked here,
   * before the socket is accepted, through the Hibernation API (the node id is the socket's tag,
   * so the object can sleep between beats and find the socket when it wakes).
   */
  override async fetch(request: Request): Promise<Response> {
    const refuse = (e: ApiError) => Response.json(errorBody(e), { status: e.status });
    if (this.env.BENCH_FLOOR && new URL(request.url).pathname.startsWith("/bench/echo/")) return this.#echoSocket();
    const token = parseAgentToken(bearer(request.headers.get("authorization") ?? undefined) ?? "");
    if (!token || !this.#state || token.pairId !== this.#state.durable.pairId) return refuse(apiError("unknown_token", "unknown token"));
    const auth = await this.#agentAuth(token.nodeId, token.secret);
    if (!auth.ok) return refuse(auth.error);
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return refuse(apiError("upgrade_required", "connect with a WebSocket upgrade"));
    this.#tokenUsed(token.nodeId, auth.value);
    const t = this.#tokens.get(token.nodeId)!;
    const tag: SocketTag = { nodeId: token.nodeId, tokenHash: auth.value === "current" ? t.hash : t.prevHash! };
    // One channel per node: a reconnect supersedes a socket the agent may no longer read.
    for (const old of this.ctx.getWebSockets(token.nodeId)) closeQuietly(old, 4000, "replaced by a newer connection");
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [token.nodeId]);
    server.serializeAttachment(tag);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** The benchmark's floor for the push channel: a hibernatable socket on this object that echoes. */
  #echoSocket(): Response {
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, ["bench-echo"]);
    server.serializeAttachment({ echo: true });
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer) {
    const tag = ws.deserializeAttachment() as unknown;
    if ((tag as { echo?: boolean } | null)?.echo) return ws.send(message);
    const answer = await this.#socketBeat(tag, message);
    // Kept with the socket (in memory, across hibernation; no storage write): when the node was last heard.
    if (answer.ok && isSocketTag(tag)) ws.serializeAttachment({ ...tag, lastBeatAt: this.#clock.now() });
    const body = answer.ok ? answer.value : { ...errorBody(answer.error), ...(answer.seq !== null ? { seq: answer.seq } : {}) };
    try {
      ws.send(JSON.stringify(body));
    } catch {
      // Closed meanwhile: the agent beats over HTTP until it reconnects.
    }
    if (!answer.ok && answer.error.code === "unknown_token") closeQuietly(ws, 4401, "unknown token");
  }

  async #socketBeat(tag: unknown, message: string | ArrayBuffer): Promise<{ seq: number | null } & Result<BeatReply>> {
    if (!isSocketTag(tag) || !this.#socketTokenValid(tag)) return { seq: null, ...fail("unknown_token", "unknown token") };
    const beat = parseBeatMessage(message);
    if (!beat.ok) return beat;
    if (beat.value.nodeId !== tag.nodeId) return { seq: beat.seq, ...fail("node_mismatch", `the token is for node ${tag.nodeId}, the beat for ${beat.value.nodeId}`) };
    return { seq: beat.seq, ...(await this.#beat(beat.value)) };
  }

  /** The token that opened a socket must still be valid: a rotation's grace ends, a revocation is at once. */
  #socketTokenValid(tag: SocketTag): boolean {
    const t = this.#tokens.get(tag.nodeId);
    if (!this.#state || !t) return false;
    if (t.hash === tag.tokenHash) {
      this.#tokenUsed(tag.nodeId, "current");
      return true;
    }
    return t.prevHash === tag.tokenHash && !(t.prevUntil !== null && this.#clock.now() > t.prevUntil);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string) {
    // Before compatibility date 2026-04-07 the runtime does not answer a close itself.
    closeQuietly(ws, echoableCloseCode(code), reason);
  }

  override async webSocketError(ws: WebSocket) {
    closeQuietly(ws, 1011, "socket error");
  }

  /**
   * A decision that changed a node's view (an order, a config, a role) goes to that node at once.
   * The view is delivered through decide() first, so an order that leaves is recorded as delivered
   * before it does (the output gate holds the message until that write is durable).
   */
  #push(before: ArbiterState, answered: string | undefined) {
    for (const node of viewsChanged(before, this.#state!)) {
      const sockets = node === answered ? [] : this.ctx.getWebSockets(node);
      if (sockets.length === 0) continue;
      const out = decide(this.#state!, { type: "deliver", node }, this.#clock.now());
      this.#state = out.state;
      this.#store.saveDurable(out.state.durable);
      const message = JSON.stringify({ push: pushOf(out.reply!) });
      for (const ws of sockets) {
        try {
          ws.send(message);
        } catch {
          // A closing socket: the view goes out in the reply to the node's next beat instead.
        }
      }
    }
  }

  /** When each node's watchdog change last went to the sinks (in memory, like the buckets). */
  readonly #guardNoticeAt = new Map<string, number>();

  /**
   * A watchdog that flaps pages once a minute per node, not per flip: the event log keeps every
   * change, and the status always shows the current one.
   */
  #flapping(e: LogEvent): boolean {
    if (e.type !== "node_unguarded" || !e.node) return false;
    const last = this.#guardNoticeAt.get(e.node);
    if (last !== undefined && e.at - last < GUARD_NOTICE_EVERY_MS) return true;
    this.#guardNoticeAt.set(e.node, e.at);
    return false;
  }

  /** In memory: an eviction resets it, which only ever admits more. */
  readonly #buckets = new Map<string, Bucket>();

  #admitBeat(node: string): boolean {
    if (this.env.BEAT_RATE_LIMIT === "off") return true;
    const now = this.#clock.now();
    const b = this.#buckets.get(node) ?? { tokens: BEAT_BURST, at: now };
    this.#buckets.set(node, b);
    return take(b, now, beatRate(agentTimings(this.#state!.durable)));
  }

  // ---- reads -------------------------------------------------------------

  /** The checks that come before any body validation: 401 for a wrong agent secret, 404 for a missing pair. */
  async authorize(p: Principal): Promise<Result<null>> {
    if (!this.#state) return p.kind === "admin" ? fail("pair_not_found", "no such pair") : fail("unknown_token", "unknown token");
    if (p.kind === "agent") {
      const auth = await this.#agentAuth(p.nodeId, p.secret);
      if (!auth.ok) return auth;
    }
    return ok(null);
  }

  async status(p: Principal): Promise<Result<PairStatusBody>> {
    const a = await this.authorize(p);
    if (!a.ok) return a;
    const s = this.#status();
    if (p.kind === "admin") return ok(s);
    // Sink URLs and storage counters are the admin's: an agent or a monitor sees the pair only.
    const { sinks: _sinks, storage: _storage, ...pair } = s;
    return ok(pair);
  }

  #status(): PairStatusBody {
    const delivery = this.#store.deliveryState();
    const sinks = this.#sinks.map((s) => ({ ...redact(s), pending: 0, deadLettered: 0, lastError: null, ...delivery.get(s.id) }));
    return { ...pairStatus(this.#state!, this.#clock.now(), this.#heardBefore), sinks, storage: { since: this.#since, writes: this.#store.writes, alarms: this.#store.alarms, alarmWrites: this.#store.alarmWrites, alarmAt: this.#alarmAt } };
  }

  async health(): Promise<Result<Health>> {
    if (!this.#state) return fail("pair_not_found", "no such pair");
    return ok(health(this.#state, this.#clock.now()));
  }

  async events(p: Principal, limit: number, before?: number, after?: number): Promise<Result<z.infer<typeof EventsPage>>> {
    const a = await this.authorize(p);
    if (!a.ok) return a;
    const events = this.#store.events(limit, before, after);
    const last = events.at(-1);
    return ok({ events, next: events.length === limit && last ? last.id : null });
  }

  /** For tests and the benchmark: storage writes so far, setAlarm included. */
  writes(): number {
    return this.#store.writes;
  }

  /** The benchmark's floor: one Durable Object round trip that does nothing. */
  ping(): number {
    return 1;
  }

  // ---- operators -----------------------------------------------------------

  async put(pairId: string, spec: PairSpecBody, createOnly: boolean): Promise<Result<PutResult>> {
    const config = configOf(spec, this.#state?.durable.config.requested ?? DEFAULT_CONFIG);
    const sinks = spec.sinks ? resolveSinks(spec.sinks, this.#state ? this.#sinks : [], insecureSinksAllowed(this.env.ALLOW_INSECURE_SINKS)) : null;
    if (sinks && "field" in sinks) return { ok: false, error: apiError("invalid_body", `${sinks.field}: ${sinks.message}`, sinks.field.split(".")) };
    if (this.#state) {
      if (createOnly) return fail("pair_exists", `pair ${pairId} exists (If-None-Match: *)`);
      const ids = new Set(this.#state.durable.nodeIds);
      if (spec.nodes.some((n) => !ids.has(n.id))) return fail("nodes_immutable", "the node set of a pair cannot change after creation");
      const out = await this.#apply({ type: "configure", config, actor: "admin" });
      if (out.rejection) return { ok: false, error: rejectionError(out) };
      if (sinks) this.#saveSinks(sinks);
      return ok({ created: false, status: this.#status() });
    }
    const violations = checkTimings(config);
    if (violations.length > 0) return fail("timing_rule", violations.map((v) => `${v.rule}: ${v.message}`).join("; "));
    const primary = spec.nodes.find((n) => n.role === "primary")!.id;
    const secondary = spec.nodes.find((n) => n.role === "secondary")!.id;
    const now = this.#clock.now();
    this.#store.ensureSchema();
    this.#state = createPair({ pairId, primary, secondary, config, epoch: this.#store.tombstoneEpoch() }, now);
    const agentTokens: Record<string, string> = {};
    for (const node of [primary, secondary]) agentTokens[node] = await this.#issueToken(pairId, node, false);
    this.#store.saveDurable(this.#state.durable);
    this.#store.appendEvents([serviceEvent(this.#state, now, "pair_created", `pair created: ${primary} primary, ${secondary} secondary`)]);
    this.#saveSinks(sinks ?? []);
    await this.#rearm();
    await this.#updateRegistry();
    return ok({ created: true, status: this.#status(), agentTokens });
  }

  async operate(event: OperatorEvent): Promise<Result<{ issued: Order[]; status: PairStatusBody }>> {
    if (!this.#state) return fail("pair_not_found", "no such pair");
    const out = await this.#apply(event);
    if (out.rejection) return { ok: false, error: rejectionError(out) };
    return ok({ issued: out.issued, status: this.#status() });
  }

  /**
   * A new agent token. The old one works until the agent first uses the new one, for at most
   * ROTATION_GRACE_MS; with `revoke` it stops at once (a token known to be leaked).
   */
  async rotateToken(nodeId: string, revoke = false): Promise<Result<{ token: string; previousValidUntil: number | null }>> {
    const s = this.#state;
    if (!s) return fail("pair_not_found", "no such pair");
    if (!s.durable.nodeIds.includes(nodeId)) return fail("unknown_node", `node ${nodeId} is not in pair ${s.durable.pairId}`);
    const now = this.#clock.now();
    const token = await this.#issueToken(s.durable.pairId, nodeId, !revoke);
    const until = revoke ? null : now + ROTATION_GRACE_MS;
    if (until !== null) this.#store.setPreviousTokenUntil(nodeId, until);
    this.#tokens.get(nodeId)!.prevUntil = until;
    if (revoke) for (const ws of this.ctx.getWebSockets(nodeId)) closeQuietly(ws, 4401, "token revoked");
    const how = revoke ? "revoked at once" : `the old one works until the agent uses the new one, at most until ${new Date(until!).toISOString()}`;
    this.#store.appendEvents([serviceEvent(s, now, "token_rotated", `agent token of ${nodeId} rotated: ${how}`, nodeId)]);
    return ok({ token, previousValidUntil: until });
  }

  async remove(force: boolean): Promise<Result<null>> {
    const s = this.#state;
    if (!s) return fail("pair_not_found", "no such pair");
    const now = this.#clock.now();
    const leased = s.durable.nodeIds.filter((n) => !pastLease(s, n, now));
    if (leased.length > 0 && !force) return fail("lease_held", `${leased.join(" and ")} may hold a lease: delete with ?force=true`);
    this.#store.deletePair(s.durable.epoch);
    for (const ws of this.ctx.getWebSockets()) closeQuietly(ws, 4404, "pair deleted");
    this.#outboxDue = null;
    await this.#store.deleteAlarm();
    this.#alarmAt = null;
    this.#state = null;
    this.#sinks = [];
    this.#tokens.clear();
    await this.#registry().remove(s.durable.pairId);
    return ok(null);
  }

  // ---- the alarm -------------------------------------------------------------

  override async alarm() {
    // Alarms are at-least-once: a tick is idempotent, so a repeated one only re-evaluates.
    this.#alarmAt = null;
    this.#store.alarms++;
    if (!this.#state) return;
    const before = this.#store.writes;
    await this.#apply({ type: "tick" });
    this.#store.alarmWrites += this.#store.writes - before;
    // Deliveries run outside the alarm: a slow sink must not hold back the next deadline's alarm.
    this.ctx.waitUntil(this.deliverDue());
  }

  /**
   * Sends every sink's due head of line, sinks side by side, each in order; a failure schedules a
   * retry and holds that sink's later events back; an entry past its retries is dead-lettered and
   * unblocks the next. Runs once at a time; tests call it to wait for deliveries.
   */
  deliverDue(): Promise<void> {
    if (this.#delivering) return this.#delivering;
    const run = (async () => {
      try {
        await Promise.all(this.#sinks.map((s) => this.#deliverSink(s)));
      } finally {
        this.#delivering = null;
        this.#store.pruneDelivered(this.#clock.now() - DELIVERED_KEPT_MS);
        this.#outboxDue = this.#store.nextDue();
        await this.#rearm();
      }
    })();
    this.#delivering = run;
    return run;
  }

  async #deliverSink(sink: Sink) {
    for (;;) {
      const now = this.#clock.now();
      const head = this.#store.head(sink.id);
      if (!head || head.nextAt > now || !this.#sinks.includes(sink)) return;
      const { status, result } = await attempt(sink, head, now, this.env.SINK_TIMEOUT_MS ? Number(this.env.SINK_TIMEOUT_MS) : undefined);
      const at = this.#clock.now();
      if (result.kind === "delivered") {
        this.#store.recordAttempt(head.seq, at, status, "delivered", null, null);
        continue;
      }
      const next = result.kind === "retry" ? nextAttemptAt(head.createdAt, head.attempts + 1, at, result.retryAfterMs, Math.random) : null;
      if (next !== null) {
        this.#store.recordAttempt(head.seq, at, status, "retry", next, result.error);
        return;
      }
      this.#store.recordAttempt(head.seq, at, status, "dead", null, result.error);
      const s = this.#state;
      if (s) {
        this.#store.appendEvents([
          { type: "delivery_dead_lettered", at, epoch: s.durable.epoch, actor: "arbiter", message: `${redact(sink).type} sink ${sink.id} gave up on ${head.eventId}: ${result.error}`, data: { sink: sink.id, eventId: head.eventId, attempts: head.attempts + 1 } },
        ]);
      }
    }
  }

  // ---- plumbing --------------------------------------------------------------

  /** `answered`: the node whose beat this is, which gets its view in the reply instead of a push. */
  async #apply(event: ArbiterEvent, answered?: string): Promise<Outcome> {
    const before = this.#state!;
    const out = decide(before, event, this.#clock.now());
    this.#state = out.state;
    // Written before the response leaves (the output gate holds it until the write is durable).
    this.#store.saveDurable(out.state.durable);
    this.#push(before, answered);
    this.#store.appendEvents(out.events);
    const notify = out.events.filter((e) => !this.#flapping(e));
    if (this.#sinks.length > 0 && notify.length > 0) {
      const d = out.state.durable;
      const items = outgoing(notify, d, this.#sinks, () => this.#store.nextEventId(d.pairId), this.env.PUBLIC_BASE_URL);
      if (items.length > 0) {
        this.#store.enqueue(items, this.#clock.now());
        this.#outboxDue = this.#store.nextDue();
      }
    }
    await this.#rearm();
    const a = before.durable;
    const b = out.state.durable;
    if (a.lastState !== b.lastState || a.epoch !== b.epoch || a.active !== b.active) await this.#updateRegistry();
    return out;
  }

  /** One alarm at the next deadline; re-armed only when that moves earlier or after it fired. */
  async #rearm() {
    // While a delivery run is under way it re-arms itself when done: its entries are not due again yet.
    const outbox = this.#delivering ? null : this.#outboxDue;
    const at = this.#state ? alarmToSet([nextAlarm(this.#state, this.#clock.now()), outbox], this.#alarmAt) : null;
    if (at === null) return;
    this.#alarmAt = at;
    await this.#store.setAlarm(this.#clock.alarmTime(at));
  }

  async #agentAuth(nodeId: string, secret: string): Promise<Result<"current" | "previous">> {
    const t = this.#tokens.get(nodeId);
    if (!this.#state || !t) return fail("unknown_token", "unknown token");
    if (await secretMatches(secret, t.hash)) return ok("current");
    const graceOver = t.prevUntil !== null && this.#clock.now() > t.prevUntil;
    if (t.prevHash && !graceOver && (await secretMatches(secret, t.prevHash))) return ok("previous");
    return fail("unknown_token", "unknown token");
  }

  async #issueToken(pairId: string, nodeId: string, keepPrevious: boolean): Promise<string> {
    const t = await newAgentToken(pairId, nodeId, this.env.AGENT_TOKEN_KEY);
    const hash = toHex(await sha256(t.secret));
    const prev = keepPrevious ? (this.#tokens.get(nodeId)?.hash ?? null) : null;
    this.#store.setToken(nodeId, hash, keepPrevious);
    this.#tokens.set(nodeId, { hash, prevHash: prev, prevUntil: null });
    return t.token;
  }

  #saveSinks(sinks: Sink[]) {
    if (JSON.stringify(sinks) === JSON.stringify(this.#sinks)) return;
    this.#store.setSinks(sinks);
    this.#sinks = sinks;
  }

  #registry() {
    return this.env.REGISTRY.get(this.env.REGISTRY.idFromName("registry"));
  }

  /** The registry is an index for listing: a failure to update it never fails a decision. */
  async #updateRegistry() {
    const s = this.#state;
    if (!s) return;
    const summary: PairSummary = summaryOf(s.durable, this.#clock.now());
    try {
      await this.#registry().upsert(summary);
    } catch (e) {
      console.error(JSON.stringify({ msg: "registry update failed", pairId: summary.pairId, error: String(e) }));
    }
  }
}

function closeQuietly(ws: WebSocket, code: number, reason: string) {
  try {
    ws.close(code, reason);
  } catch {
    // Already closed.
  }
}

function configOf(spec: PairSpecBody, base: PairConfig): PairConfig {
  const { nodes: _nodes, ...fields } = spec;
  const defined = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  return { ...base, ...defined };
}

function rejectionError(out: Outcome): ApiError {
  const r = out.rejection ?? { code: "unknown_node" as const, message: "rejected" };
  return apiError(r.code, r.message);
}

function serviceEvent(s: ArbiterState, at: number, type: LogEvent["type"], message: string, node?: string): LogEvent {
  return { type, at, epoch: s.durable.epoch, actor: "admin", message, ...(node ? { node } : {}) };
}
