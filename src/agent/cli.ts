#!/usr/bin/env node
/** colo-arbiter-agent: the node agent beside one QEMU of a COLO pair (see README, "The node agent"). */
import { join } from "node:path";
import { ArbiterClient } from "./arbiter-client.js";
import { Agent } from "./agent.js";
import { ArbiterLink } from "./arbiter-link.js";
import { systemClock } from "./clock.js";
import { USAGE, loadSettings } from "./config.js";
import { fileKeptStore } from "./kept-state.js";
import { jsonLogger } from "./log.js";
import { version } from "./version.js";
import { pidfileProcess } from "./qemu/process.js";
import { QmpClient } from "./qmp/client.js";
import { openWatchdog, stopsOnClose } from "./watchdog.js";
import { keeperWatchdog } from "./watchdog-keeper-client.js";

const argv = process.argv.slice(2);
if (argv.includes("--version")) {
  process.stdout.write(`${version()}\n`);
  process.exit(0);
}
if (argv.includes("--help") || argv.includes("-h")) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const loaded = loadSettings(argv);
if (!loaded.ok) {
  process.stderr.write(`${loaded.error}\n`);
  process.exit(2);
}
const s = loaded.settings;
const log = jsonLogger();
const watchdog = s.watchdog ? openWatchdog(s.watchdog) : s.watchdogKeeper ? keeperWatchdog(s.watchdogKeeper, `${s.pair}.${s.node}`, log) : null;
if (s.watchdogKeeper) log.info("watchdog through the host's keeper", { socket: s.watchdogKeeper });
else if (watchdog) {
  const fields = { device: s.watchdog, timeoutMs: watchdog.timeoutMs, identity: watchdog.identity, magicClose: watchdog.magicClose, nowayout: watchdog.nowayout };
  if (stopsOnClose(watchdog)) log.error("watchdog stops when its device is closed (no magic close, no nowayout): a dead agent would disarm it, so this node reports itself unguarded", fields);
  else log.info("watchdog armed", fields);
}
else log.warn("no watchdog: this node reports itself unguarded");

const http = new ArbiterClient(s.arbiter, s.pair, s.tokenFile);
const agent = new Agent({
  nodeId: s.node,
  clock: systemClock,
  qmp: new QmpClient(s.qmp, { timeoutMs: 2000, backoff: { minMs: 100, maxMs: 5000 } }),
  process: pidfileProcess(s.pidfile, { qmpPath: s.qmp.kind === "unix" ? s.qmp.path : null }),
  arbiter: s.httpOnly ? http : new ArbiterLink(http, log),
  kept: fileKeptStore(join(s.stateDir, `${s.pair}.${s.node}.json`)),
  watchdog,
  log,
  ids: s.ids,
  colo: s.colo,
});
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.once(sig, () => {
    log.info("stopping", { signal: sig });
    agent.stop();
    process.exit(0);
  });
}
await agent.start();
