/**
 * QEMU's process, from its pidfile: the instance a fence binds to (pid and start time), whether it
 * still exists, and the kill by pid that ends a fence QMP could not confirm.
 *
 * A pidfile is only a hint. Its pid is adopted only if that process's command line names this
 * agent's QMP socket (or, with QMP over TCP, if it is a QEMU): a pid reused by another program must
 * never be killed. A missing or unreadable pidfile says nothing: QEMU may still run.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { basename } from "node:path";
import type { QemuReading } from "../../protocol/agent/core.js";
import type { QemuInstance } from "../../protocol/types.js";

export interface QemuProcess {
  /** What the pidfile says now, checked against /proc. */
  read(): QemuReading;
  /** SIGKILL this instance if it is still that QEMU, then wait for it to be gone. */
  kill(instance: QemuInstance, timeoutMs: number): Promise<boolean>;
}

interface ProcInfo {
  startedAt: number;
  zombie: boolean;
  exe: string;
  cmdline: string[];
}

/**
 * Field 22 of /proc/<pid>/stat is the start time in clock ticks since boot; with the pid, it names
 * one process. A zombie runs nothing.
 */
function procInfo(pid: number, proc: string): ProcInfo | null {
  try {
    const stat = readFileSync(`${proc}/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const startedAt = Number(fields[19]);
    if (!Number.isFinite(startedAt)) return null;
    const cmdline = readFileSync(`${proc}/${pid}/cmdline`, "utf8").split("\0").filter((a) => a !== "");
    let exe = cmdline[0] ?? "";
    try {
      exe = readlinkSync(`${proc}/${pid}/exe`).replace(/ \(deleted\)$/, "");
    } catch {
      // Another user's process: its argv[0] is all there is.
    }
    return { startedAt, zombie: fields[0] === "Z", exe, cmdline };
  } catch {
    return null;
  }
}

function isQemu(p: ProcInfo): boolean {
  return basename(p.exe).startsWith("qemu");
}

/** `qmpPath`: this agent's QMP unix socket; a QEMU whose command line does not name it is not this agent's. */
export function pidfileProcess(pidfile: string, opts: { qmpPath?: string | null; proc?: string } = {}): QemuProcess {
  const proc = opts.proc ?? "/proc";
  const qmpPath = opts.qmpPath ?? null;
  const alive = (i: QemuInstance): boolean => {
    const p = procInfo(i.pid, proc);
    return !!p && !p.zombie && p.startedAt === i.startedAt;
  };
  return {
    read(): QemuReading {
      let text: string;
      try {
        text = readFileSync(pidfile, "utf8").trim();
      } catch (e) {
        return { kind: "unknown", why: `pidfile ${pidfile} unreadable: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
      }
      const pid = Number(text);
      if (!/^\d+$/.test(text) || !Number.isSafeInteger(pid) || pid <= 0) return { kind: "unknown", why: `pidfile ${pidfile} holds no pid` };
      const p = procInfo(pid, proc);
      if (!p || p.zombie) return { kind: "gone" };
      const instance = { pid, startedAt: p.startedAt };
      // The process whose command line names this agent's QMP socket is this agent's QEMU.
      if (qmpPath !== null && p.cmdline.some((a) => a.includes(qmpPath))) return { kind: "running", instance };
      // A pid reused by a program that is no QEMU: the QEMU the pidfile named is gone.
      if (!isQemu(p)) return { kind: "gone" };
      if (qmpPath !== null) return { kind: "unknown", why: `pid ${pid} is a QEMU whose command line does not name ${qmpPath}` };
      return { kind: "running", instance };
    },
    async kill(instance, timeoutMs) {
      if (!alive(instance)) return true;
      try {
        process.kill(instance.pid, "SIGKILL");
      } catch {
        // gone already
      }
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        if (!alive(instance)) return true;
        await new Promise((r) => setTimeout(r, 5));
      }
      return false;
    },
  };
}
