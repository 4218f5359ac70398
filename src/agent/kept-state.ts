/**
 * What the agent keeps under /run across its own restarts: lease end, last checkpoint, executed
 * epoch and fenced instance, on CLOCK_MONOTONIC. A file from another boot is ignored.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import { type KeptState, NOTHING_KEPT } from "../protocol/agent/serving-rules.js";

const Instance = z.object({ pid: z.number(), startedAt: z.number() });
const Kept = z.object({
  bootId: z.string(),
  leaseUntil: z.number().nullable(),
  lastCheckpointAt: z.number().nullable(),
  executedEpoch: z.number(),
  fenced: Instance.nullable(),
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
        return rest;
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
