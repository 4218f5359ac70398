/**
 * The agent's side of a host's shared watchdog keeper (watchdog-keeper.ts): it tells the keeper the
 * last instant a pet is allowed whenever that changes, and is armed only while connected. A lost
 * connection makes the node unguarded (its beats say so) until it reconnects, with capped,
 * jittered backoff well inside any watchdog timeout.
 */
import { type Socket, createConnection } from "node:net";
import type { Logger } from "./log.js";
import type { Watchdog, WatchdogDriver } from "./watchdog.js";
import { type KeeperReply, type KeeperRequest, encodeBound } from "./watchdog-keeper.js";

const HOLD_TIMEOUT_MS = 1000;

export function keeperWatchdog(socketPath: string, agent: string, log: Logger, random: () => number = Math.random): Watchdog {
  let sock: Socket | null = null;
  let armed = false;
  let closed = false;
  let seq = 0;
  let acked = -1;
  let backoffMs = 0;
  // Infinity until the first evaluation: registering adds no bound (see KeeperBounds.register).
  let bound = Number.POSITIVE_INFINITY;
  let sentBound: number | null | undefined;
  const waiters = new Set<() => void>();
  let driver: WatchdogDriver = { timeoutMs: null, magicClose: null, nowayout: null, identity: null };

  const send = (r: KeeperRequest) => sock?.write(`${JSON.stringify(r)}\n`);
  const sendBound = () => {
    const wire = encodeBound(bound);
    if (!armed || wire === sentBound) return;
    sentBound = wire;
    send({ op: "bound", seq: ++seq, petUntil: wire });
  };
  const wake = () => {
    for (const w of waiters) w();
  };

  const connect = () => {
    if (closed) return;
    const s = createConnection(socketPath);
    sock = s;
    let buffered = "";
    s.setEncoding("utf8");
    s.on("connect", () => send({ op: "hello", agent }));
    s.on("data", (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const r = JSON.parse(buffered.slice(0, nl)) as KeeperReply;
        buffered = buffered.slice(nl + 1);
        if (r.op === "driver") {
          driver = { timeoutMs: r.timeoutMs, magicClose: r.magicClose, nowayout: r.nowayout, identity: r.identity };
          armed = true;
          backoffMs = 0;
          sentBound = undefined;
          log.info("watchdog keeper connected", { socket: socketPath, timeoutMs: r.timeoutMs });
          sendBound();
        } else if (r.op === "ack") {
          acked = Math.max(acked, r.seq);
          wake();
        } else log.error("watchdog keeper refused a request", { code: r.code, message: r.message });
      }
    });
    s.on("error", () => {});
    s.on("close", () => {
      if (sock !== s) return;
      if (armed) log.error("watchdog keeper connection lost: this node is unguarded until it reconnects");
      armed = false;
      sock = null;
      wake();
      if (closed) return;
      backoffMs = Math.min(Math.max(2 * backoffMs, 100 + 150 * random()), 1000);
      setTimeout(connect, backoffMs).unref();
    });
  };
  connect();

  return {
    get armed() {
      return armed;
    },
    get timeoutMs() {
      return driver.timeoutMs;
    },
    get magicClose() {
      return driver.magicClose;
    },
    get nowayout() {
      return driver.nowayout;
    },
    get identity() {
      return driver.identity;
    },
    tend(_pet: boolean, petUntil: number) {
      bound = petUntil;
      sendBound();
    },
    async hold(petUntil: number): Promise<boolean> {
      bound = petUntil;
      if (!armed) return false;
      // Sent even when unchanged: the ack of a request sent now is what proves the keeper holds it.
      sentBound = encodeBound(bound);
      const mine = ++seq;
      send({ op: "bound", seq: mine, petUntil: sentBound });
      return new Promise<boolean>((resolve) => {
        const done = () => {
          if (acked < mine && armed) return;
          clearTimeout(timer);
          waiters.delete(done);
          resolve(acked >= mine);
        };
        const timer = setTimeout(() => {
          waiters.delete(done);
          resolve(acked >= mine);
        }, HOLD_TIMEOUT_MS);
        waiters.add(done);
      });
    },
    disarm() {
      closed = true;
      if (armed) send({ op: "release", seq: ++seq });
      sock?.end();
      armed = false;
    },
  };
}
