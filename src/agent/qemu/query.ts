/** What QMP says of the QEMU now: its COLO status, run state and (on a primary) checkpoint delay. */
import type { QemuAnswer } from "../../protocol/agent/core.js";
import type { ColoMode } from "../../protocol/types.js";
import type { QmpClient } from "../qmp/client.js";

/** null when QMP is not connected or does not answer in time (a hung QEMU is a sick node; the beat says so). */
export async function queryQemu(qmp: QmpClient, timeoutMs: number): Promise<QemuAnswer | null> {
  if (!qmp.connected) return null;
  try {
    const [colo, st] = await Promise.all([
      qmp.execute<{ mode: ColoMode; "last-mode": ColoMode; reason: string }>("query-colo-status", undefined, { timeoutMs }),
      qmp.execute<{ running: boolean; status: string }>("query-status", undefined, { timeoutMs }),
    ]);
    const delay =
      colo.mode === "primary"
        ? ((await qmp.execute<{ "x-checkpoint-delay"?: number }>("query-migrate-parameters", undefined, { timeoutMs }))["x-checkpoint-delay"] ?? null)
        : null;
    return { colo: { mode: colo.mode, lastMode: colo["last-mode"], reason: colo.reason }, vm: { running: st.running, status: st.status }, checkpointDelayMs: delay };
  } catch {
    return null;
  }
}
