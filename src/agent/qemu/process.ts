/**
 * QEMU's process, from its pidfile: the instance a fence binds to (pid and start time), whether it
 * still exists, and the kill by pid that ends a fence QMP could not confirm.
 */
import { readFileSync } from "node:fs";
import type { QemuInstance } from "../../protocol/types.js";

export interface QemuProcess {
  /** The QEMU instance the pidfile names, if that process is alive. */
  instance(): QemuInstance | null;
  /** SIGKILL, then wait for it to be gone. */
  kill(instance: QemuInstance, timeoutMs: number): Promise<boolean>;
}

/**
 * Field 22 of /proc/<pid>/stat: start time in clock ticks since boot; with the pid, it names one
 * process. A zombie (state Z) counts as gone: it runs nothing.
 */
function startTicks(pid: number, proc: string): number | null {
  try {
    const stat = readFileSync(`${proc}/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") return null;
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

export function pidfileProcess(pidfile: string, proc = "/proc"): QemuProcess {
  const current = (): QemuInstance | null => {
    let pid: number;
    try {
      pid = Number.parseInt(readFileSync(pidfile, "utf8").trim(), 10);
    } catch {
      return null;
    }
    if (!Number.isInteger(pid) || pid <= 0) return null;
    const startedAt = startTicks(pid, proc);
    return startedAt === null ? null : { pid, startedAt };
  };
  return {
    instance: current,
    async kill(instance, timeoutMs) {
      if (startTicks(instance.pid, proc) !== instance.startedAt) return true;
      try {
        process.kill(instance.pid, "SIGKILL");
      } catch {
        // gone already
      }
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        if (startTicks(instance.pid, proc) !== instance.startedAt) return true;
        await new Promise((r) => setTimeout(r, 5));
      }
      return false;
    },
  };
}
