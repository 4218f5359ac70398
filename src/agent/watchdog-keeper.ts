/**
 * One host, one /dev/watchdog, one agent per VM: the keeper owns the device and pets it only while
 * every agent's own watchdog rule allows a pet. Each agent tells it the last instant a pet is
 * allowed (its cover − W while its VM may serve; unbounded while it cannot), on the host's shared
 * CLOCK_MONOTONIC. The keeper pets at instant k only if k ≤ every agent's bound, so the device
 * fires no later than any agent's own device would have (docs/agent.md, "Several VMs on one host").
 *
 * An agent that dies keeps its last bound: unlike a device closed by a dying agent, nothing pings
 * once more. A keeper that restarts does not know the bounds it held; agents it had registered
 * (kept in its state file) bound the pets at its start until they say again.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { type Server, type Socket, createServer } from "node:net";
import { z } from "zod";
import type { MonoClock } from "./clock.js";
import type { Logger } from "./log.js";
import type { Watchdog } from "./watchdog.js";

/** Bounds on the wire: a number on the monotonic clock, null for unbounded (the node cannot serve). */
export const KeeperRequest = z.discriminatedUnion("op", [
  z.object({ op: z.literal("hello"), agent: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/) }).strict(),
  z.object({ op: z.literal("bound"), seq: z.number().int().nonnegative(), petUntil: z.number().nullable() }).strict(),
  z.object({ op: z.literal("release"), seq: z.number().int().nonnegative() }).strict(),
]);
export type KeeperRequest = z.infer<typeof KeeperRequest>;

export type KeeperReply =
  | { op: "driver"; timeoutMs: number | null; magicClose: boolean | null; nowayout: boolean | null; identity: string | null }
  | { op: "ack"; seq: number }
  | { op: "error"; code: "bad_request" | "no_hello"; message: string };

export function encodeBound(petUntil: number): number | null {
  if (petUntil === Number.POSITIVE_INFINITY) return null;
  // -Infinity (a fence past its bound): any instant already past will do.
  return Number.isFinite(petUntil) ? petUntil : -1;
}

export function decodeBound(petUntil: number | null): number {
  return petUntil === null ? Number.POSITIVE_INFINITY : petUntil;
}

/** The bounds of the agents one keeper guards. Pure: instants are passed in. */
export class KeeperBounds {
  readonly #bounds = new Map<string, number>();

  /** Agents registered before a keeper restart: unknown bounds, taken as the keeper's start. */
  constructor(inherited: Iterable<string> = [], startedAt = 0) {
    for (const a of inherited) this.#bounds.set(a, startedAt);
  }

  /** A new agent, or a restarted one, adds no bound until it states one. */
  register(agent: string): void {
    if (!this.#bounds.has(agent)) this.#bounds.set(agent, Number.POSITIVE_INFINITY);
  }

  set(agent: string, petUntil: number): void {
    this.#bounds.set(agent, petUntil);
  }

  release(agent: string): void {
    this.#bounds.delete(agent);
  }

  get agents(): string[] {
    return [...this.#bounds.keys()];
  }

  /** The earliest bound: no pet after it. */
  earliest(): number {
    return Math.min(Number.POSITIVE_INFINITY, ...this.#bounds.values());
  }

  mayPet(now: number): boolean {
    return now <= this.earliest();
  }

  /** No agent's VM may serve: a stop may disarm the device. */
  allUnbounded(): boolean {
    return this.earliest() === Number.POSITIVE_INFINITY;
  }

  /** The next pet: every W/4, and exactly at the earliest bound, so the device fires no sooner than it. */
  nextPetAt(now: number, watchdogMs: number): number {
    const bound = this.earliest();
    const regular = now + watchdogMs / 4;
    return bound > now && bound < regular ? bound : regular;
  }
}

export interface KeeperDeps {
  device: Watchdog;
  socketPath: string;
  /** Which agents this keeper has registered: survives a keeper restart (not a reboot). */
  stateFile: string;
  clock: MonoClock;
  log: Logger;
}

export interface Keeper {
  readonly bounds: KeeperBounds;
  /** SIGTERM: disarm the device only when no registered agent's VM may serve. */
  stop(): Promise<void>;
}

export async function startKeeper(d: KeeperDeps): Promise<Keeper> {
  const bounds = new KeeperBounds(readRegistered(d.stateFile), d.clock.now());
  const watchdogMs = d.device.timeoutMs ?? 1000;
  let timer: NodeJS.Timeout | null = null;
  const sockets = new Set<Socket>();

  const tick = () => {
    const now = d.clock.now();
    d.device.tend(bounds.mayPet(now), bounds.earliest());
    if (timer) clearTimeout(timer);
    timer = setTimeout(tick, Math.max(1, Math.ceil(bounds.nextPetAt(now, watchdogMs) - now)));
  };
  const persist = () => writeRegistered(d.stateFile, bounds.agents);

  const server: Server = createServer((sock) => {
    sockets.add(sock);
    let agent: string | null = null;
    let buffered = "";
    const send = (r: KeeperReply) => sock.write(`${JSON.stringify(r)}\n`);
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      buffered += chunk;
      if (buffered.length > 64 * 1024) {
        send({ op: "error", code: "bad_request", message: "line too long" });
        sock.destroy();
        return;
      }
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let parsed: ReturnType<typeof KeeperRequest.safeParse>;
        try {
          parsed = KeeperRequest.safeParse(JSON.parse(line));
        } catch {
          parsed = KeeperRequest.safeParse(undefined);
        }
        if (!parsed.success) {
          send({ op: "error", code: "bad_request", message: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") });
          continue;
        }
        const req = parsed.data;
        if (req.op === "hello") {
          agent = req.agent;
          const known = bounds.agents.includes(agent);
          bounds.register(agent);
          if (!known) persist();
          d.log.info("agent registered", { agent });
          send({ op: "driver", timeoutMs: d.device.timeoutMs, magicClose: d.device.magicClose, nowayout: d.device.nowayout, identity: d.device.identity });
          continue;
        }
        if (agent === null) {
          send({ op: "error", code: "no_hello", message: "say hello first" });
          continue;
        }
        if (req.op === "bound") bounds.set(agent, decodeBound(req.petUntil));
        else {
          bounds.release(agent);
          persist();
          d.log.info("agent released", { agent });
          agent = null;
        }
        // Acknowledged after the pet decision sees it: a held bound is in force once acked.
        tick();
        send({ op: "ack", seq: req.seq });
      }
    });
    sock.on("close", () => {
      sockets.delete(sock);
      // A dead agent keeps its last bound: the host resets at it unless the agent comes back.
      if (agent !== null) d.log.warn("agent disconnected; its last bound stays in force", { agent, petUntil: encodeBound(bounds.earliest()) });
    });
    sock.on("error", () => {});
  });
  if (existsSync(d.socketPath)) rmSync(d.socketPath);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(d.socketPath, () => resolve());
  });
  tick();
  d.log.info("watchdog keeper listening", { socket: d.socketPath, timeoutMs: d.device.timeoutMs, inherited: bounds.agents });

  return {
    bounds,
    async stop() {
      if (timer) clearTimeout(timer);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      if (bounds.allUnbounded()) {
        d.device.disarm();
        d.log.info("watchdog disarmed", { why: "no registered agent's VM may serve" });
      } else d.log.warn("stopping with a VM that may serve: the watchdog keeps counting", { earliest: bounds.earliest() });
    },
  };
}

function readRegistered(file: string): string[] {
  try {
    const v = JSON.parse(readFileSync(file, "utf8")) as unknown;
    return Array.isArray(v) ? v.filter((a): a is string => typeof a === "string") : [];
  } catch {
    return [];
  }
}

function writeRegistered(file: string, agents: string[]) {
  writeFileSync(`${file}.tmp`, JSON.stringify(agents));
  renameSync(`${file}.tmp`, file);
}
