/**
 * The pair registry: one small Durable Object that pair objects update on creation, deletion and
 * state change, so pairs can be listed. Its limit is a single object's throughput (state changes of
 * all pairs funnel through it; see docs/api.md).
 */
import { DurableObject } from "cloudflare:workers";
import type { DurableState } from "../protocol/arbiter/state.js";
import type { PairStateName } from "../protocol/types.js";
import type { Env } from "./env.js";

export interface PairSummary {
  pairId: string;
  state: PairStateName;
  epoch: number;
  activeNode: string | null;
  createdAt: number;
  /** When the pair entered its state; the registry keeps it while the state stays the same. */
  stateSince: number | null;
}

export function summaryOf(d: DurableState, now: number): PairSummary {
  return { pairId: d.pairId, state: d.lastState, epoch: d.epoch, activeNode: d.active, createdAt: d.createdAt, stateSince: now };
}

export class RegistryObject extends DurableObject<Env> {
  #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS pairs (pair_id TEXT PRIMARY KEY, state TEXT NOT NULL, epoch INTEGER NOT NULL,
      active_node TEXT, created_at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS pairs_newest ON pairs (created_at DESC, pair_id DESC);`);
    // Registries created before the column existed get it (rows there: null until their next change).
    if (!this.#sql.exec("SELECT * FROM pairs LIMIT 0").columnNames.includes("state_since")) this.#sql.exec("ALTER TABLE pairs ADD COLUMN state_since INTEGER");
  }

  upsert(p: PairSummary) {
    this.#sql.exec(
      `INSERT INTO pairs (pair_id, state, epoch, active_node, created_at, state_since) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(pair_id) DO UPDATE SET
         state_since = CASE WHEN pairs.state = excluded.state AND pairs.state_since IS NOT NULL THEN pairs.state_since ELSE excluded.state_since END,
         state = excluded.state, epoch = excluded.epoch, active_node = excluded.active_node`,
      p.pairId,
      p.state,
      p.epoch,
      p.activeNode,
      p.createdAt,
      p.stateSince,
    );
  }

  remove(pairId: string) {
    this.#sql.exec("DELETE FROM pairs WHERE pair_id = ?", pairId);
  }

  /** Newest first; the cursor is the last row's (createdAt, pairId); null for a cursor that is not ours. */
  list(limit: number, cursor?: string): { pairs: PairSummary[]; next: string | null } | null {
    const from = cursor ? decodeCursor(cursor) : [Number.MAX_SAFE_INTEGER, ""];
    if (!from) return null;
    const [at, id] = from;
    const rows = this.#sql
      .exec<{ pair_id: string; state: string; epoch: number; active_node: string | null; created_at: number; state_since: number | null }>(
        `SELECT * FROM pairs WHERE created_at < ? OR (created_at = ? AND pair_id < ?)
         ORDER BY created_at DESC, pair_id DESC LIMIT ?`,
        at,
        at,
        id || "\uffff",
        limit,
      )
      .toArray();
    const pairs = rows.map((r) => ({
      pairId: r.pair_id,
      state: r.state as PairStateName,
      epoch: r.epoch,
      activeNode: r.active_node,
      createdAt: r.created_at,
      stateSince: r.state_since,
    }));
    const last = pairs.at(-1);
    return { pairs, next: pairs.length === limit && last ? encodeCursor(last.createdAt, last.pairId) : null };
  }
}

function encodeCursor(at: number, id: string): string {
  return btoa(JSON.stringify([at, id])).replace(/=+$/, "");
}

function decodeCursor(c: string): [number, string] | null {
  try {
    const v = JSON.parse(atob(c)) as unknown;
    if (Array.isArray(v) && typeof v[0] === "number" && typeof v[1] === "string") return [v[0], v[1]];
  } catch {
    // not base64 or not JSON: not a cursor of ours
  }
  return null;
}
