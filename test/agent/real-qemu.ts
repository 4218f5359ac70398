/** A real qemu-system-x86_64 with no guest (`-machine none`) and a QMP unix socket, for tests. */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const QEMU = "qemu-system-x86_64";

/** Whether QEMU is installed; in CI its absence is a failure, not a reason to skip. */
export function qemuAvailable(): boolean {
  try {
    execFileSync(QEMU, ["--version"], { stdio: "pipe" });
    return true;
  } catch {
    if (process.env.CI === "true") throw new Error(`${QEMU} is missing: .ci/run installs qemu-system-x86`);
    return false;
  }
}

export interface RealQemu {
  qmpPath: string;
  pidfile: string;
  child: ChildProcess;
  stop(): void;
}

export async function startQemu(extra: string[] = []): Promise<RealQemu> {
  const dir = mkdtempSync(join(tmpdir(), "qemu-"));
  const qmpPath = join(dir, "qmp.sock");
  const pidfile = join(dir, "qemu.pid");
  const child = spawn(
    QEMU,
    ["-machine", "none", "-nodefaults", "-display", "none", "-qmp", `unix:${qmpPath},server=on,wait=off`, "-pidfile", pidfile, ...extra],
    { stdio: "ignore" },
  );
  const end = Date.now() + 10_000;
  while (!existsSync(qmpPath) || !existsSync(pidfile)) {
    if (child.exitCode !== null || Date.now() > end) throw new Error("QEMU did not start");
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    qmpPath,
    pidfile,
    child,
    stop() {
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}
