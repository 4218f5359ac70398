/**
 * Fencing that holds (docs/protocol.md, "Fence"): an out-of-band yank of the migration stream and
 * of the primary's NBD client, then `stop`, confirmed by query-status after the yank's COLO_EXIT.
 * No QMP answer within the fence bound means SIGKILL by pid. A plain `stop` is not a fence: the
 * next COLO checkpoint restarts the VM. A primary's COLO thread is woken after the yank (it would
 * otherwise notice only at its next checkpoint, up to x-checkpoint-delay later), so a QEMU that
 * answers is paused, not killed. The fence may be aborted (a failover order overrides it):
 * it checks before `stop` and before a kill, and then reports that it let go.
 */
import type { FenceOutcome } from "../protocol/agent/core.js";
import type { QemuInstance } from "../protocol/types.js";
import type { MonoClock } from "./clock.js";
import type { Logger } from "./log.js";
import type { QemuProcess } from "./qemu/process.js";
import type { QmpClient, QmpEvent } from "./qmp/client.js";
import { yankStreams } from "./runbooks.js";
import { waitFor } from "./wait.js";

export interface FenceContext {
  qmp: QmpClient;
  process: QemuProcess;
  clock: MonoClock;
  log: Logger;
  /** The fence bound: past it, kill. */
  boundMs: number;
  nbdNode: string | null;
  /** Replication was working: the yank is followed by a COLO_EXIT, after which no checkpoint restarts the VM. */
  streaming: boolean;
  /** The primary's x-checkpoint-delay, to wake its COLO thread after the yank; null on a secondary. */
  checkpointDelayMs: number | null;
  onYanked: () => void;
  signal: AbortSignal;
}

/** `instance`: the QEMU to fence; "unknown" when one may run with no pid this agent may kill; null when gone. */
export async function fence(instance: QemuInstance | "unknown" | null, ctx: FenceContext): Promise<FenceOutcome> {
  if (!instance) return { confirmed: true, how: "gone" };
  const pid = instance === "unknown" ? null : instance.pid;
  const deadline = ctx.clock.now() + ctx.boundMs;
  const left = () => Math.max(1, deadline - ctx.clock.now());
  const { qmp } = ctx;
  try {
    // Half the bound for the COLO thread to exit, the rest for stop and its confirmation.
    const exitBy = ctx.clock.now() + ctx.boundMs / 2;
    const exited = ctx.streaming ? waitFor<QmpEvent>((fn) => qmp.onEvent(fn), (e) => e.event === "COLO_EXIT", ctx.boundMs / 2) : Promise.resolve(true);
    const nbd = ctx.nbdNode;
    const yanked = await yankStreams(qmp, (i) => i.type === "migration" || (i.type === "block-node" && (nbd === null || i["node-name"] === nbd)), left());
    ctx.onYanked();
    if (yanked > 0 && ctx.streaming && ctx.checkpointDelayMs !== null) {
      // A primary's COLO thread notices the yank only at its next checkpoint (up to x-checkpoint-delay
      // away); setting the delay, even to the same value, starts a checkpoint at once.
      await qmp.execute("migrate-set-parameters", { "x-checkpoint-delay": ctx.checkpointDelayMs }, { timeoutMs: Math.max(1, exitBy - ctx.clock.now()) }).catch(() => {});
    }
    if (yanked > 0 && !(await exited)) {
      // The COLO thread has not left yet; stop anyway: a RESUME of the fenced instance is killed (the agent core watches).
      ctx.log.warn("fence: no COLO_EXIT after the yank; stopping anyway", { pid });
    }
    if (ctx.signal.aborted) return { aborted: true };
    await qmp.execute("stop", undefined, { timeoutMs: left() });
    const st = await qmp.execute<{ running: boolean }>("query-status", undefined, { timeoutMs: left() });
    if (!st.running) return { confirmed: true, how: "stopped" };
    throw new Error("still running after stop");
  } catch (e) {
    if (ctx.signal.aborted) return { aborted: true };
    const why = e instanceof Error ? e.message : String(e);
    // No verified pid: nothing may be killed; the fence fails and the watchdog is no longer petted.
    if (instance === "unknown") return { confirmed: false, error: `QMP did not confirm the fence (${why}) and no verified pid to kill` };
    ctx.log.warn("fence: kill by pid", { pid, why });
    const gone = await ctx.process.kill(instance, 2000);
    return gone ? { confirmed: true, how: "killed" } : { confirmed: false, error: `pid ${instance.pid} survived SIGKILL` };
  }
}
