import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FakeQemu } from "../../src/demo/fake-qemu.js";
import { NOTHING_KEPT } from "../../src/protocol/agent/serving-rules.js";
import { type Rig, type Script, TIMINGS, rig, until } from "./harness.js";

const rigs: Rig[] = [];
const fakes: FakeQemu[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) r.stop();
  for (const f of fakes.splice(0)) await f.stop();
});

async function fakeQemu(...args: ConstructorParameters<typeof FakeQemu>) {
  const f = await new FakeQemu(...args).listen();
  fakes.push(f);
  return f;
}

function start(r: Rig) {
  rigs.push(r);
  void r.agent.start();
  return r;
}

const acks = (r: Rig) => r.beats.flatMap((b) => (b.ack ? [`${b.ack.orderId}:${b.ack.state}`] : []));
const commands = (f: FakeQemu) => f.received.map((c) => (c.oob ? `oob:${c.command}` : c.command));

describe("node agent", () => {
  it("reports what QMP says in every beat", async () => {
    const fake = await fakeQemu("secondary");
    const r = start(rig(fake, () => ({})));
    await until(() => r.beats.length >= 2);
    const b = r.beats.at(-1)!;
    expect(b).toMatchObject({ nodeId: "n1", qmp: { ok: true }, colo: { mode: "secondary" }, vm: { running: true }, qemu: { pid: 4242, startedAt: 7 }, watchdog: { armed: false } });
    expect(b.seq).toBeGreaterThan(r.beats[0]!.seq);
    // Its release and what its set-up lacks (this rig has no watchdog and no COLO settings).
    expect(b.agent?.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(b.agent?.setupErrors).toEqual([expect.stringMatching(/^no watchdog/), expect.stringMatching(/^no COLO settings/)]);
  });

  it("runs the secondary's runbook: yank first, then nbd-server-stop and x-colo-lost-heartbeat; acknowledges running then ok", async () => {
    const fake = await fakeQemu("secondary");
    const order = { id: "pair1:1", action: "failover" as const, epoch: 1, peerFenced: true };
    const r = start(rig(fake, (_b, n) => (n >= 2 ? { order, epoch: 1 } : {})));
    await until(() => acks(r).includes("pair1:1:ok"));
    expect(fake.state).toMatchObject({ mode: "none", lastMode: "secondary", reason: "request", running: true });
    const cmds = commands(fake);
    expect(cmds.indexOf("oob:yank")).toBeLessThan(cmds.indexOf("x-colo-lost-heartbeat"));
    expect(cmds).toContain("nbd-server-stop");
    // The agent beats at once when a runbook starts and when it ends (a slow runbook may say running more than once).
    const said = acks(r).filter((a, i, all) => a !== all[i - 1]);
    expect(said.slice(0, 2)).toEqual(["pair1:1:running", "pair1:1:ok"]);
  });

  it("runs the primary's runbook with the COLO-FT.txt ids, and a repeated order after a restart changes nothing", async () => {
    const fake = await fakeQemu("primary");
    const order = { id: "pair1:3", action: "failover" as const, epoch: 3, peerFenced: false };
    const r = start(rig(fake, () => ({ order, epoch: 3 }), { keptLease: true }));
    await until(() => acks(r).includes("pair1:3:ok"));
    expect(fake.state).toMatchObject({ mode: "none", lastMode: "primary", reason: "request", running: true, replicationChild: false });
    expect(fake.state.objects.size).toBe(0);
    expect(fake.state.drives.size).toBe(0);
    const yank = fake.received.find((c) => c.command === "yank")!;
    expect(yank).toMatchObject({ oob: true, args: { instances: [{ type: "migration" }, { type: "block-node", "node-name": "nbd0" }] } });
    r.stop();
    const count = fake.received.length;
    const again = start(rig(fake, () => ({ order, epoch: 3 }), { dir: r.dir, keptLease: true }));
    await until(() => acks(again).includes("pair1:3:ok"));
    const mutating = fake.received.slice(count).filter((c) => !c.command.startsWith("query") && c.command !== "qmp_capabilities");
    expect(mutating).toEqual([]);
  });

  it("refuses an order older than one it executed", async () => {
    const fake = await fakeQemu("secondary");
    const r = rig(fake, () => ({ order: { id: "pair1:2", action: "failover", epoch: 2, peerFenced: true } }));
    r.kept.save({ ...NOTHING_KEPT, order: { id: "pair1:5", epoch: 5, action: "fence", finished: { orderId: "pair1:5", state: "ok" } } });
    const started = start(rig(fake, () => ({ order: { id: "pair1:2", action: "failover", epoch: 2, peerFenced: true } }), { dir: r.dir }));
    await until(() => started.beats.length >= 4);
    expect(acks(started)).toEqual([]);
    expect(commands(fake)).not.toContain("x-colo-lost-heartbeat");
  });

  it("turns QEMU's refusal outside COLO into a failed acknowledgement with its step", async () => {
    const fake = await fakeQemu("none");
    fake.state.running = false;
    fake.state.status = "paused";
    const r = start(rig(fake, () => ({ order: { id: "pair1:1", action: "failover", epoch: 1, peerFenced: true } })));
    await until(() => acks(r).some((a) => a.endsWith(":failed")));
    const b = r.beats.find((x) => x.ack?.state === "failed")!;
    expect(b.ack).toMatchObject({ step: "verify" });
  });

  it("fences on order: yank, COLO_EXIT, stop, confirmed; a checkpoint no longer restarts the VM", async () => {
    const fake = await fakeQemu("primary");
    const r = start(rig(fake, (_b, n) => (n >= 2 ? { order: { id: "pair1:1", action: "fence", epoch: 1, peerFenced: false }, lease: { granted: false, ms: 0 } } : {}), { keptLease: true }));
    await until(() => acks(r).includes("pair1:1:ok"));
    expect(commands(fake).filter((c) => ["oob:yank", "stop"].includes(c))).toEqual(["oob:yank", "stop"]);
    fake.checkpoint();
    expect(fake.state.running).toBe(false);
    expect(r.process.killed).toBe(0);
    const kept = JSON.parse(readFileSync(join(r.dir, "kept.json"), "utf8")) as { fenced: unknown };
    expect(kept.fenced).toEqual({ pid: 4242, startedAt: 7 });
  });

  it("kills QEMU by pid when QMP does not answer within the fence bound", async () => {
    const fake = await fakeQemu("primary");
    const r = start(rig(fake, (_b, n) => (n >= 2 ? { order: { id: "pair1:1", action: "fence", epoch: 1, peerFenced: false }, lease: { granted: false, ms: 0 } } : {}), { keptLease: true }));
    await until(() => r.beats.length >= 1);
    fake.hangMainLoop = true;
    await until(() => acks(r).includes("pair1:1:ok"));
    expect(r.process.killed).toBe(1);
  });

  it("fences by itself once its lease runs out (failsafe off), and at once on start without a kept lease", async () => {
    const fake = await fakeQemu("primary");
    // The arbiter is unreachable from the start: no lease was ever granted.
    const r = start(rig(fake, () => null));
    await until(() => fake.received.some((c) => c.command === "stop"), 3000, "a fence");
    await until(() => !fake.state.running);
    expect(r.beats.every((b) => b.ack === undefined)).toBe(true);
  });

  it("counts a lease from the beat's send time and re-reads its token file after a 401", async () => {
    const fake = await fakeQemu("secondary");
    let unauthorized = true;
    const r = rig(fake, (_b, n): ReturnType<Script> => {
      if (n !== 2 || !unauthorized) return {};
      unauthorized = false;
      return { status: 401, error: "unknown_token" };
    });
    start(r);
    await until(() => r.beats.length >= 1);
    writeFileSync(join(r.dir, "token"), "pair1~n1~token-two\n");
    await until(() => r.beats.length >= 4);
    expect(r.tokensSeen[0]).toBe("Bearer pair1~n1~token-one");
    expect(r.tokensSeen.at(-1)).toBe("Bearer pair1~n1~token-two");
    const lease = r.agent.leaseUntil!;
    expect(lease).toBeGreaterThan(0);
    expect(lease).toBeLessThanOrEqual(Number(process.hrtime.bigint() / 1_000_000n) + TIMINGS.leaseMs);
  });

  it("keeps beating while one beat hangs: a slow answer does not run out a failsafe-off primary's lease", async () => {
    const fake = await fakeQemu("primary");
    // The third beat is answered only after 3 lease lengths; every other beat at once.
    const r = start(rig(fake, (_b, n) => (n === 3 ? { delayMs: 3 * TIMINGS.leaseMs, reply: {} } : ({} as ReturnType<Script>)), { keptLease: true }));
    await until(() => r.beats.length >= 3);
    const third = Date.now();
    await until(() => Date.now() - third > 2 * TIMINGS.leaseMs, 3 * TIMINGS.leaseMs + 5000, "two lease lengths");
    expect(commands(fake)).not.toContain("stop");
    expect(fake.state.running).toBe(true);
    expect(r.beats.length).toBeGreaterThan(6);
  });

  it("treats a missing token file as a failed beat and goes on (fence rule included), rather than crashing", async () => {
    const fake = await fakeQemu("primary");
    let removed = false;
    // Once the file is gone, the arbiter refuses the cached token: the agent reads the file again and finds nothing.
    const r = start(rig(fake, (): ReturnType<Script> => (removed ? { status: 401, error: "unknown_token" } : {}), { keptLease: true }));
    await until(() => r.beats.length >= 2);
    rmSync(join(r.dir, "token"));
    removed = true;
    await until(() => fake.received.some((c) => c.command === "stop"), 5000, "the fence once the lease ran out");
    expect(fake.state.running).toBe(false);
  });
});
