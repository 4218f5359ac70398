/**
 * The Linux watchdog device: opening it arms it, any write pets it, and "V" before close disarms
 * it (magic close). Its timeout W is set out of band (wdctl, or the driver's parameter) and read
 * back from sysfs. Closing without the magic character (a crashed agent) leaves it counting.
 */
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { basename } from "node:path";

export interface Watchdog {
  readonly timeoutMs: number | null;
  readonly armed: boolean;
  pet(): void;
  /** Magic close: only when the VM is confirmed stopped or gone. */
  disarm(): void;
}

export function sysfsTimeoutMs(device: string, sysfs = "/sys/class/watchdog"): number | null {
  const name = basename(device) === "watchdog" ? "watchdog0" : basename(device);
  try {
    const s = Number(readFileSync(`${sysfs}/${name}/timeout`, "utf8").trim());
    return Number.isFinite(s) && s > 0 ? s * 1000 : null;
  } catch {
    return null;
  }
}

export function openWatchdog(device: string, sysfs?: string): Watchdog {
  const fd = openSync(device, "w");
  let armed = true;
  return {
    timeoutMs: sysfsTimeoutMs(device, sysfs),
    get armed() {
      return armed;
    },
    pet() {
      if (armed) writeSync(fd, "\0");
    },
    disarm() {
      if (!armed) return;
      writeSync(fd, "V");
      closeSync(fd);
      armed = false;
    },
  };
}
