/**
 * The pair object's storage, on the SQLite storage API. Every write goes through here, setAlarm
 * included, and is counted: the heartbeat path must write nothing in steady state.
 */
import type { LogEvent } from "../protocol/arbiter/events.js";
import type { DurableState } from "../protocol/arbiter/state.js";

/** Events kept per pair: the oldest go first. */
export const EVENT_LOG_LIMIT = 2000;

export interface StoredEvent extends LogEvent {
  id: number;
}

type Row = Record<string, SqlStorageValue>;

export class PairStore {
  writes = 0;
  #sql: SqlStorage;
  #storage: DurableObjectStorage;
  #persisted: string | null = null;

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
    this.#sql = storage.sql;
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS tokens (node TEXT PRIMARY KEY, hash TEXT NOT NULL, prev_hash TEXT);
      CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, type TEXT NOT NULL,
        epoch INTEGER NOT NULL, actor TEXT NOT NULL, node TEXT, message TEXT NOT NULL, data TEXT);`);
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
    return Number(this.#get("tombstone") ?? 0);
  }

  /** Deletes the pair but keeps its epoch. */
  deletePair(epoch: number) {
    this.#write("DELETE FROM kv");
    this.#write("DELETE FROM tokens");
    this.#write("DELETE FROM events");
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
    if (events.length > 0) this.#write("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", EVENT_LOG_LIMIT);
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
