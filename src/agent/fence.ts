/**
 * Fencing that holds (docs/protocol.md, "Fence"): an out-of-band yank of the migration stream and
 * of the primary's NBD client, then `stop`, confirmed by query-status after the yank's COLO_EXIT.
 * No QMP answer within the fence bound means SIGKILL by pid. A plain `stop` is not a fence: the
 * next COLO checkpoint restarts the VM.
 */
import type { QemuInstance } from "../protocol/types.js";
import type { MonoClock } from "./clock.js";
import type { Logger } from "./log.js";
import type { QemuProcess } from "./qemu/process.js";
import type { QemuTracker } from "./qemu/tracker.js";
import type { QmpEvent } from "./qmp/client.js";
import { yankStreams } from "./runbooks.js";
import { waitFor } from "./wait.js";

export type FenceOutcome = { confirmed: true; how: "stopped" | "killed" | "gone" } | { confirmed: false; error: string };

export interface FenceContext {
  qemu: QemuTracker;
  process: QemuProcess;
  clock: MonoClock;
  log: Logger;
  /** The fence bound: past it, kill. */
  boundMs: number;
  nbdNode: string | null;
}

export async function fence(instance: QemuInstance | null, ctx: FenceContext): Promise<FenceOutcome> {
  if (!instance) return { confirmed: true, how: "gone" };
  const deadline = ctx.clock.now() + ctx.boundMs;
  const left = () => Math.max(1, deadline - ctx.clock.now());
  try {
    const { qmp } = ctx.qemu;
    const mode = ctx.qemu.knowledge.colo?.mode;
    const wasStreaming = !ctx.qemu.replication.broken && (mode === "primary" || mode === "secondary");
    const exited = wasStreaming ? nextColoExit(ctx.qemu, left()) : Promise.resolve(true);
    const nbd = ctx.nbdNode;
    const yanked = await yankStreams(qmp, (i) => i.type === "migration" || (i.type === "block-node" && (nbd === null || i["node-name"] === nbd)), left());
    ctx.qemu.noteYanked();
    // The yank's COLO_EXIT comes once the COLO thread has stopped: after it, no checkpoint can restart the VM.
    if (yanked > 0 && !(await exited)) throw new Error("no COLO_EXIT after the yank");
    await qmp.execute("stop", undefined, { timeoutMs: left() });
    const st = await qmp.execute<{ running: boolean }>("query-status", undefined, { timeoutMs: left() });
    if (!st.running) return { confirmed: true, how: "stopped" };
    throw new Error("still running after stop");
  } catch (e) {
    ctx.log.warn("fence: kill by pid", { pid: instance.pid, why: e instanceof Error ? e.message : String(e) });
    const gone = await ctx.process.kill(instance, 2000);
    return gone ? { confirmed: true, how: "killed" } : { confirmed: false, error: `pid ${instance.pid} survived SIGKILL` };
  }
}

function nextColoExit(qemu: QemuTracker, timeoutMs: number): Promise<boolean> {
  return waitFor<QmpEvent>((fn) => qemu.onEvent(fn), (e) => e.event === "COLO_EXIT", timeoutMs);
}
