/**
 * The pair object's storage, on the SQLite storage API. Every write goes through here, setAlarm
 * included, and is counted: the heartbeat path must write nothing in steady state.
 */
import type { LogEvent } from "../protocol/arbiter/events.js";
import type { DurableState } from "../protocol/arbiter/state.js";
import type { Outgoing } from "./notify/messages.js";
import type { Sink } from "./notify/sinks.js";

/** One delivery of one event to one sink. */
export interface OutboxEntry {
  seq: number;
  sinkId: string;
  eventId: string;
  body: string;
  createdAt: number;
  nextAt: number;
  attempts: number;
}

/** Attempts kept per outbox entry. */
const HISTORY_LIMIT = 20;

/** Events kept per pair: the oldest go first. */
export const EVENT_LOG_LIMIT = 2000;

/** Operator and security events, and the outcomes a post-mortem needs: kept apart from churn. */
export const KEPT_EVENTS: LogEvent["type"][] = [
  "pair_created",
  "pair_updated",
  "token_rotated",
  "maintenance_entered",
  "maintenance_left",
  "resolved",
  "config_changed",
  "needs_operator",
  "failover_completed",
  "failover_failed",
  "failover_outcome_unknown",
  "fence_failed",
];
export const KEPT_EVENT_LIMIT = 1000;
const KEPT_LIST = KEPT_EVENTS.map((t) => `'${t}'`).join(", ");

export interface StoredEvent extends LogEvent {
  id: number;
}

type Row = Record<string, SqlStorageValue>;

export class PairStore {
  /** Storage writes since this object started, setAlarm included. */
  writes = 0;
  /** Alarm invocations since this object started (each is a billed request). */
  alarms = 0;
  /** Of `writes`, those made while handling alarms (re-arming the alarm, mostly). */
  alarmWrites = 0;
  #sql: SqlStorage;
  #storage: DurableObjectStorage;
  #persisted: string | null = null;

  /** Whether this object has tables: a request for a pair that was never created must create no storage. */
  #ready: boolean;

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
    this.#sql = storage.sql;
    this.#ready = this.#sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'kv'").toArray().length > 0;
  }

  /** The tables, created only when a pair is: before that, reads find nothing and nothing is written. */
  ensureSchema() {
    if (this.#ready) return;
    this.#ready = true;
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS tokens (node TEXT PRIMARY KEY, hash TEXT NOT NULL, prev_hash TEXT);
      CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, type TEXT NOT NULL,
        epoch INTEGER NOT NULL, actor TEXT NOT NULL, node TEXT, message TEXT NOT NULL, data TEXT);
      CREATE TABLE IF NOT EXISTS sinks (position INTEGER PRIMARY KEY, spec TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, sink_id TEXT NOT NULL, event_id TEXT NOT NULL,
        body TEXT NOT NULL, created_at INTEGER NOT NULL, next_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'pending', last_error TEXT, history TEXT NOT NULL DEFAULT '[]');
      CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sink_id, state, seq);`);
  }

  #write(query: string, ...params: SqlStorageValue[]) {
    this.writes++;
    this.#sql.exec(query, ...params);
  }

  #get(k: string): string | null {
    const row = this.#sql.exec<{ v: string }>("SELECT v FROM kv WHERE k = ?", k).toArray()[0];
    return row?.v ?? null;
  }

  loadDurable(): DurableState | null {
    if (!this.#ready) return null;
    const v = this.#get("durable");
    this.#persisted = v;
    return v ? (JSON.parse(v) as DurableState) : null;
  }

  /** Writes the durable state only if it changed; reports whether it did. */
  saveDurable(d: DurableState): boolean {
    const v = JSON.stringify(d);
    if (v === this.#persisted) return false;
    this.#write("INSERT INTO kv (k, v) VALUES ('durable', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", v);
    this.#persisted = v;
    return true;
  }

  /** The epoch a deleted pair id left behind: a re-created pair continues from it. */
  tombstoneEpoch(): number {
    if (!this.#ready) return 0;
    return Number(this.#get("tombstone") ?? 0);
  }

  /** Deletes the pair but keeps its epoch. */
  deletePair(epoch: number) {
    this.#write("DELETE FROM kv");
    this.#write("DELETE FROM tokens");
    this.#write("DELETE FROM events");
    this.#write("DELETE FROM sinks");
    this.#write("DELETE FROM outbox");
    this.#write("INSERT INTO kv (k, v) VALUES ('tombstone', ?)", String(epoch));
    this.#persisted = null;
  }

  tokenHashes(): Map<string, { hash: string; prevHash: string | null }> {
    const rows = this.#sql.exec<{ node: string; hash: string; prev_hash: string | null }>("SELECT node, hash, prev_hash FROM tokens").toArray();
    return new Map(rows.map((r) => [r.node, { hash: r.hash, prevHash: r.prev_hash }]));
  }

  /** A new token; the previous one stays valid until the first beat that uses the new one. */
  setToken(node: string, hash: string, keepPrevious: boolean) {
    this.#write(
      `INSERT INTO tokens (node, hash, prev_hash) VALUES (?, ?, NULL)
       ON CONFLICT(node) DO UPDATE SET prev_hash = ${keepPrevious ? "tokens.hash" : "NULL"}, hash = excluded.hash`,
      node,
      hash,
    );
  }

  /** Until when a rotated node's previous token still works (absent: until its new one is used). */
  previousTokenUntil(node: string): number | null {
    if (!this.#ready) return null;
    const v = this.#get(`prev_until:${node}`);
    return v === null ? null : Number(v);
  }

  setPreviousTokenUntil(node: string, until: number) {
    this.#write("INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", `prev_until:${node}`, String(until));
  }

  forgetPreviousToken(node: string) {
    this.#write("UPDATE tokens SET prev_hash = NULL WHERE node = ?", node);
  }

  appendEvents(events: LogEvent[]) {
    for (const e of events) {
      this.#write(
        "INSERT INTO events (at, type, epoch, actor, node, message, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
        e.at,
        e.type,
        e.epoch,
        e.actor,
        e.node ?? null,
        e.message,
        e.data ? JSON.stringify(e.data) : null,
      );
    }
    if (events.length === 0) return;
    // Agent-driven churn is pruned on its own: it never pushes out what operators did or must see.
    this.#write(`DELETE FROM events WHERE id IN (SELECT id FROM events WHERE type NOT IN (${KEPT_LIST}) ORDER BY id DESC LIMIT -1 OFFSET ?)`, EVENT_LOG_LIMIT);
    this.#write(`DELETE FROM events WHERE id IN (SELECT id FROM events WHERE type IN (${KEPT_LIST}) ORDER BY id DESC LIMIT -1 OFFSET ?)`, KEPT_EVENT_LIMIT);
  }

  /** Newest first; `before`/`after` are event ids. */
  events(limit: number, before?: number, after?: number): StoredEvent[] {
    const rows = this.#sql
      .exec<Row>(
        "SELECT * FROM events WHERE id < ? AND id > ? ORDER BY id DESC LIMIT ?",
        before ?? Number.MAX_SAFE_INTEGER,
        after ?? 0,
        limit,
      )
      .toArray();
    return rows.map((r) => ({
      id: Number(r.id),
      at: Number(r.at),
      type: r.type as LogEvent["type"],
      epoch: Number(r.epoch),
      actor: String(r.actor),
      ...(r.node !== null ? { node: String(r.node) } : {}),
      message: String(r.message),
      ...(r.data !== null ? { data: JSON.parse(String(r.data)) as Record<string, unknown> } : {}),
    }));
  }

  // ---- pager sinks and their outbox ------------------------------------------

  sinks(): Sink[] {
    return this.#sql.exec<{ spec: string }>("SELECT spec FROM sinks ORDER BY position").toArray().map((r) => JSON.parse(r.spec) as Sink);
  }

  setSinks(sinks: Sink[]) {
    this.#write("DELETE FROM sinks");
    for (const [i, s] of sinks.entries()) this.#write("INSERT INTO sinks (position, spec) VALUES (?, ?)", i, JSON.stringify(s));
  }

  /** A webhook-id per event, stable across retries and shared by its sinks. */
  nextEventId(pairId: string): string {
    const n = Number(this.#get("notify_seq") ?? 0) + 1;
    this.#write("INSERT INTO kv (k, v) VALUES ('notify_seq', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", String(n));
    return `msg_${pairId}_${n}`;
  }

  enqueue(items: Outgoing[], now: number) {
    for (const o of items) {
      this.#write("INSERT INTO outbox (sink_id, event_id, body, created_at, next_at) VALUES (?, ?, ?, ?, ?)", o.sinkId, o.eventId, o.body, now, now);
    }
  }

  /** The oldest pending entry of a sink: order is kept per sink, so only it may be sent. */
  head(sinkId: string): OutboxEntry | null {
    const r = this.#sql
      .exec<Row>("SELECT * FROM outbox WHERE sink_id = ? AND state = 'pending' ORDER BY seq LIMIT 1", sinkId)
      .toArray()[0];
    return r
      ? { seq: Number(r.seq), sinkId: String(r.sink_id), eventId: String(r.event_id), body: String(r.body), createdAt: Number(r.created_at), nextAt: Number(r.next_at), attempts: Number(r.attempts) }
      : null;
  }

  /** When the next head of any sink is due. */
  nextDue(): number | null {
    const r = this.#sql
      .exec<{ at: number | null }>(
        "SELECT MIN(next_at) AS at FROM outbox o WHERE state = 'pending' AND seq = (SELECT MIN(seq) FROM outbox WHERE sink_id = o.sink_id AND state = 'pending')",
      )
      .toArray()[0];
    return r?.at ?? null;
  }

  /** Records an attempt: delivered, retried at `nextAt`, or dead-lettered (nextAt null after a failure). */
  recordAttempt(seq: number, now: number, status: string, outcome: "delivered" | "retry" | "dead", nextAt: number | null, error: string | null) {
    const row = this.#sql.exec<{ history: string }>("SELECT history FROM outbox WHERE seq = ?", seq).toArray()[0];
    const history = [...(JSON.parse(row?.history ?? "[]") as unknown[]), { at: now, status }].slice(-HISTORY_LIMIT);
    const state = outcome === "retry" ? "pending" : outcome;
    this.#write(
      "UPDATE outbox SET attempts = attempts + 1, state = ?, next_at = ?, last_error = COALESCE(?, last_error), history = ? WHERE seq = ?",
      state,
      nextAt ?? now,
      error,
      JSON.stringify(history),
      seq,
    );
  }

  /** Per sink: entries still pending, dead-lettered ones, and the last error. */
  deliveryState(): Map<string, { pending: number; deadLettered: number; lastError: string | null }> {
    const rows = this.#sql
      .exec<{ sink_id: string; pending: number; dead: number; last_error: string | null }>(
        `SELECT sink_id, SUM(state = 'pending') AS pending, SUM(state = 'dead') AS dead,
          (SELECT last_error FROM outbox i WHERE i.sink_id = o.sink_id AND last_error IS NOT NULL ORDER BY seq DESC LIMIT 1) AS last_error
         FROM outbox o GROUP BY sink_id`,
      )
      .toArray();
    return new Map(rows.map((r) => [r.sink_id, { pending: Number(r.pending), deadLettered: Number(r.dead), lastError: r.last_error }]));
  }

  /** Delivered and dead-lettered entries are dropped after a while; the event log keeps what happened. */
  pruneDelivered(before: number) {
    const n = this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox WHERE state IN ('delivered', 'dead') AND created_at < ?", before).toArray()[0]?.n ?? 0;
    if (n > 0) this.#write("DELETE FROM outbox WHERE state IN ('delivered', 'dead') AND created_at < ?", before);
  }

  async setAlarm(at: number) {
    this.writes++;
    await this.#storage.setAlarm(at);
  }

  async getAlarm(): Promise<number | null> {
    return this.#storage.getAlarm();
  }

  async deleteAlarm() {
    this.writes++;
    await this.#storage.deleteAlarm();
  }
}
