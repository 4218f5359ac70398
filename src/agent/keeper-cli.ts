#!/usr/bin/env node
/**
 * colo-arbiter-watchdog: the host's watchdog keeper, for hosts that run several VMs (one agent
 * each) and have one watchdog device. Agents point at its socket with --watchdog-keeper.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { systemClock } from "./clock.js";
import { jsonLogger } from "./log.js";
import { openWatchdog, stopsOnClose } from "./watchdog.js";
import { startKeeper } from "./watchdog-keeper.js";
import { version } from "./version.js";

const USAGE = "usage: colo-arbiter-watchdog [--device /dev/watchdog] [--socket /run/colo-arbiter/watchdog.sock] [--state-dir /run/colo-arbiter] [--version]";

let flags: { device?: string; socket?: string; "state-dir"?: string; help?: boolean; version?: boolean };
try {
  flags = parseArgs({
    options: { device: { type: "string" }, socket: { type: "string" }, "state-dir": { type: "string" }, help: { type: "boolean", short: "h" }, version: { type: "boolean" } },
    strict: true,
  }).values;
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`);
  process.exit(2);
}
if (flags.version) {
  process.stdout.write(`${version()}\n`);
  process.exit(0);
}
if (flags.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const stateDir = flags["state-dir"] ?? "/run/colo-arbiter";
const log = jsonLogger();
const device = openWatchdog(flags.device ?? "/dev/watchdog");
if (stopsOnClose(device)) log.error("watchdog stops when its device is closed (no magic close, no nowayout): a dead keeper would disarm it; agents report themselves unguarded");
const keeper = await startKeeper({
  device,
  socketPath: flags.socket ?? join(stateDir, "watchdog.sock"),
  stateFile: join(stateDir, "watchdog-keeper.json"),
  clock: systemClock,
  log,
});
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.once(sig, () => {
    void keeper.stop().then(() => process.exit(0));
  });
}
