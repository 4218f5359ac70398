/**
 * What the agent keeps under /run across its own restarts (the core's KeptState: lease end, the
 * order it took on and whether it finished, the fenced instance, the applied timings), on
 * CLOCK_MONOTONIC. A file from another boot is ignored; an unreadable one counts as nothing kept.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import { type KeptState, NOTHING_KEPT } from "../protocol/agent/serving-rules.js";
import { ACK_STATES, ORDER_ACTIONS } from "../protocol/types.js";

const Instance = z.object({ pid: z.number(), startedAt: z.number() });
const Timings = z.object({
  heartbeatIntervalMs: z.number(),
  leaseMs: z.number(),
  replicationStallMs: z.number(),
  failsafe: z.boolean(),
  fenceLatencyMs: z.number(),
  watchdogMs: z.number(),
});
const Ack = z.object({ orderId: z.string(), state: z.enum(ACK_STATES), step: z.string().optional(), error: z.string().optional() });
const Kept = z.object({
  bootId: z.string(),
  leaseUntil: z.number().nullable(),
  order: z.object({ id: z.string(), epoch: z.number(), action: z.enum(ORDER_ACTIONS), finished: Ack.nullable() }).nullable().default(null),
  fenced: Instance.nullable(),
  timings: Timings.nullable().default(null),
  configVersion: z.number().default(0),
  soloLease: z.boolean().default(false),
});

export interface KeptStore {
  load(): KeptState;
  save(k: KeptState): void;
}

function bootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "unknown";
  }
}

export function fileKeptStore(path: string, boot = bootId()): KeptStore {
  return {
    load() {
      try {
        const k = Kept.parse(JSON.parse(readFileSync(path, "utf8")));
        if (k.bootId !== boot) return NOTHING_KEPT;
        const { bootId: _b, ...rest } = k;
        return rest as KeptState;
      } catch {
        return NOTHING_KEPT;
      }
    },
    save(k) {
      mkdirSync(dirname(path), { recursive: true });
      const tmp = `${path}.tmp`;
      writeFileSync(tmp, JSON.stringify({ bootId: boot, ...k }), { mode: 0o600 });
      renameSync(tmp, path);
    },
  };
}
