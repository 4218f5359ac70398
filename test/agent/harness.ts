/** An agent wired to a fake QEMU and a scripted arbiter, with short timings. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { HeartbeatBody, HeartbeatReplyBody } from "../../src/api/schemas.js";
import { Agent } from "../../src/agent/agent.js";
import { ArbiterClient } from "../../src/agent/arbiter-client.js";
import { systemClock } from "../../src/agent/clock.js";
import { type KeptStore, fileKeptStore } from "../../src/agent/kept-state.js";
import { type Logger, silentLogger } from "../../src/agent/log.js";
import type { QemuProcess } from "../../src/agent/qemu/process.js";
import type { QemuReading } from "../../src/protocol/agent/core.js";
import { QmpClient } from "../../src/agent/qmp/client.js";
import { DEFAULT_IDS } from "../../src/agent/runbooks.js";
import type { Watchdog } from "../../src/agent/watchdog.js";
import type { Timings } from "../../src/protocol/timing.js";
import type { FakeQemu } from "../../src/demo/fake-qemu.js";
import { pollUntil } from "../../src/demo/poll.js";

export const TIMINGS: Timings = { heartbeatIntervalMs: 100, leaseMs: 2100, replicationStallMs: 300, failsafe: false, fenceLatencyMs: 200, watchdogMs: 1000 };

/** A reply, an HTTP error, null (unreachable), or a reply held back for `delayMs`. */
export type Script = (beat: HeartbeatBody, n: number) => Partial<HeartbeatReplyBody> | { status: number; error: string } | { delayMs: number; reply: Partial<HeartbeatReplyBody> } | null;

export class FakeProcess implements QemuProcess {
  killed = 0;
  constructor(
    readonly fake: FakeQemu,
    public alive = true,
  ) {}
  read(): QemuReading {
    return this.alive ? { kind: "running", instance: { pid: 4242, startedAt: 7 } } : { kind: "gone" };
  }
  async kill() {
    this.killed++;
    this.alive = false;
    await this.fake.stop();
    return true;
  }
}

export interface Rig {
  agent: Agent;
  beats: HeartbeatBody[];
  tokensSeen: string[];
  process: FakeProcess;
  kept: KeptStore;
  dir: string;
  stop(): void;
}

export function reply(over: Partial<HeartbeatReplyBody> = {}, timings: Timings = TIMINGS): HeartbeatReplyBody {
  return { pairId: "pair1", nodeId: "n1", epoch: over.order?.epoch ?? 0, role: "secondary", lease: { granted: true, ms: timings.leaseMs }, config: { ...timings, version: 1 }, order: null, ...over };
}

/** `keptLease`: the agent starts as if it had been running with a lease (no start-rule fence). */
export function rig(fake: FakeQemu, script: Script, opts: { dir?: string; watchdog?: Watchdog; log?: Logger; timings?: Timings; keptLease?: boolean } = {}): Rig {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "agent-"));
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, "pair1~n1~token-one\n");
  const beats: HeartbeatBody[] = [];
  const tokensSeen: string[] = [];
  const fetchImpl = (async (_url: string, init: RequestInit) => {
    const body = JSON.parse(String(init.body)) as HeartbeatBody;
    beats.push(body);
    tokensSeen.push(String((init.headers as Record<string, string>).authorization));
    let r = script(body, beats.length);
    if (r === null) throw new TypeError("fetch failed: unreachable");
    if ("delayMs" in r) {
      const { delayMs, reply: later } = r;
      await new Promise((res) => setTimeout(res, delayMs));
      r = later;
    }
    if ("status" in r) return new Response(JSON.stringify({ error: { code: r.error, message: r.error } }), { status: r.status });
    return new Response(JSON.stringify(reply(r, opts.timings)), { status: 200 });
  }) as typeof fetch;
  const process = new FakeProcess(fake);
  const kept = fileKeptStore(join(dir, "kept.json"), "test-boot");
  if (opts.keptLease) kept.save({ ...kept.load(), leaseUntil: systemClock.now() + (opts.timings ?? TIMINGS).leaseMs });
  const qmp = new QmpClient({ kind: "unix", path: fake.path }, { timeoutMs: 500, backoff: { minMs: 20, maxMs: 100 } });
  const agent = new Agent({
    nodeId: "n1",
    clock: systemClock,
    qmp,
    process,
    arbiter: new ArbiterClient("http://arbiter.test", "pair1", tokenFile, fetchImpl),
    kept,
    watchdog: opts.watchdog ?? null,
    log: opts.log ?? silentLogger,
    ids: { ...DEFAULT_IDS },
    initialTimings: opts.timings ?? TIMINGS,
  });
  return { agent, beats, tokensSeen, process, kept, dir, stop: () => agent.stop() };
}

export function until(cond: () => boolean, ms = 5000, what = "condition"): Promise<true> {
  return pollUntil(what, () => cond() || null, ms, 10);
}
