/**
 * The Linux watchdog device: opening it arms it, any write pets it, and "V" before close disarms
 * it (magic close). Its timeout W is set out of band (wdctl, or the driver's parameter) and read
 * back from sysfs, with what the driver does when its device is closed without "V" (an agent that
 * died): with WDIOF_MAGICCLOSE, or with nowayout, it keeps counting after one last ping; without
 * either, closing stops it, and the node is unguarded.
 */
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { basename } from "node:path";

/** WDIOF_MAGICCLOSE in the driver's options (include/uapi/linux/watchdog.h). */
const WDIOF_MAGICCLOSE = 0x0100;

export interface WatchdogDriver {
  /** W, from sysfs. */
  timeoutMs: number | null;
  /** The driver supports magic close: a close without "V" does not stop it. null: not reported. */
  magicClose: boolean | null;
  /** nowayout: nothing stops it once started. null: not reported. */
  nowayout: boolean | null;
  identity: string | null;
}

/** What guards this node: its own watchdog device, or a host's shared keeper (watchdog-keeper.ts). */
export interface Watchdog extends WatchdogDriver {
  /** The guard holds this node now (a keeper's connection can drop; the node is then unguarded). */
  readonly armed: boolean;
  /** The watchdog rule at one evaluation: pet now or not, and the last instant a pet is allowed. */
  tend(pet: boolean, petUntil: number): void;
  /**
   * Before a step that makes the VM serve: resolves true once the guard holds `petUntil`. A device
   * holds it at once (its pets just stop later); a keeper confirms it.
   */
  hold(petUntil: number): Promise<boolean>;
  /** Magic close: only when the VM is confirmed stopped or gone. */
  disarm(): void;
}

function sysfsDir(device: string, sysfs: string): string {
  const name = basename(device) === "watchdog" ? "watchdog0" : basename(device);
  return `${sysfs}/${name}`;
}

function readSys(dir: string, attr: string): string | null {
  try {
    return readFileSync(`${dir}/${attr}`, "utf8").trim();
  } catch {
    return null;
  }
}

export function sysfsTimeoutMs(device: string, sysfs = "/sys/class/watchdog"): number | null {
  const s = Number(readSys(sysfsDir(device, sysfs), "timeout"));
  return Number.isFinite(s) && s > 0 ? s * 1000 : null;
}

/** What sysfs says of the driver behind a watchdog device (options needs Linux 5.9 or later). */
export function readDriver(device: string, sysfs = "/sys/class/watchdog"): WatchdogDriver {
  const dir = sysfsDir(device, sysfs);
  const options = readSys(dir, "options");
  const flags = options === null ? Number.NaN : Number.parseInt(options, 16);
  const nowayout = readSys(dir, "nowayout");
  return {
    timeoutMs: sysfsTimeoutMs(device, sysfs),
    magicClose: Number.isFinite(flags) ? (flags & WDIOF_MAGICCLOSE) !== 0 : null,
    nowayout: nowayout === null ? null : nowayout === "1",
    identity: readSys(dir, "identity"),
  };
}

/** A driver that stops when its device is closed without "V": a dead agent would disarm it. */
export function stopsOnClose(d: Pick<WatchdogDriver, "magicClose" | "nowayout">): boolean {
  return d.magicClose === false && d.nowayout !== true;
}

export function openWatchdog(device: string, sysfs?: string): Watchdog {
  const driver = readDriver(device, sysfs);
  const fd = openSync(device, "w");
  let armed = true;
  return {
    ...driver,
    get armed() {
      return armed;
    },
    tend(pet) {
      if (armed && pet) writeSync(fd, "\0");
    },
    hold: () => Promise.resolve(armed),
    disarm() {
      if (!armed) return;
      writeSync(fd, "V");
      closeSync(fd);
      armed = false;
    },
  };
}
