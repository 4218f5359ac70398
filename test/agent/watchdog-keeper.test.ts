/** The host's shared watchdog keeper: pets only while every agent's bound allows, over a real socket. */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/agent/clock.js";
import { silentLogger } from "../../src/agent/log.js";
import type { Watchdog } from "../../src/agent/watchdog.js";
import { KeeperBounds, startKeeper } from "../../src/agent/watchdog-keeper.js";
import { keeperWatchdog } from "../../src/agent/watchdog-keeper-client.js";
import { FakeQemu } from "../../src/demo/fake-qemu.js";
import { type Rig, TIMINGS, rig, until } from "./harness.js";

/**
 * A device that records when it was petted and what the keeper held as the earliest bound then.
 * "When" is the instant the keeper read its clock for that decision (the keeper's clock below):
 * a clock read after it could already be a millisecond on.
 */
let lastRead = 0;
const keeperClock = { now: () => (lastRead = systemClock.now()), wall: () => systemClock.wall() };

function recordingDevice(timeoutMs = 400) {
  const pets: { at: number; earliest: number }[] = [];
  let disarmed = false;
  const device: Watchdog = {
    timeoutMs,
    magicClose: true,
    nowayout: false,
    identity: "recording",
    get armed() {
      return !disarmed;
    },
    tend(pet, petUntil) {
      if (pet) pets.push({ at: lastRead, earliest: petUntil });
    },
    hold: async () => true,
    disarm() {
      disarmed = true;
    },
  };
  return { device, pets, disarmed: () => disarmed };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function keeper(dir = mkdtempSync(join(tmpdir(), "keeper-")), timeoutMs = 400) {
  const rec = recordingDevice(timeoutMs);
  const k = await startKeeper({ device: rec.device, socketPath: join(dir, "wd.sock"), stateFile: join(dir, "keeper.json"), clock: keeperClock, log: silentLogger });
  let stopped = false;
  const stop = async () => {
    if (!stopped) await k.stop();
    stopped = true;
  };
  cleanups.push(stop);
  return { k, rec, dir, socket: join(dir, "wd.sock"), stop };
}

/** An agent's end of the socket by hand: to die without a release, or to send what no agent would. */
async function raw(socket: string) {
  const s = createConnection(socket);
  cleanups.push(() => s.destroy());
  const lines: string[] = [];
  s.setEncoding("utf8").on("data", (d: string) => lines.push(...d.split("\n").filter(Boolean)));
  await new Promise((r) => s.once("connect", r));
  return { lines, send: (m: object) => s.write(`${JSON.stringify(m)}\n`), write: (t: string) => s.write(t), destroy: () => s.destroy() };
}

function client(socket: string, agent: string) {
  const c = keeperWatchdog(socket, agent, silentLogger);
  cleanups.push(() => c.disarm());
  return c;
}

describe("the keeper's bounds", () => {
  it("take the earliest agent's bound, add none for an agent that has not stated one, and pet exactly at the earliest", () => {
    const b = new KeeperBounds();
    b.register("a");
    expect(b.mayPet(1e9)).toBe(true);
    b.set("a", 1000);
    b.register("b");
    b.set("b", 700);
    expect(b.earliest()).toBe(700);
    expect(b.mayPet(700)).toBe(true);
    expect(b.mayPet(701)).toBe(false);
    // W = 400: every 100 ms, and once exactly at the bound.
    expect(b.nextPetAt(0, 400)).toBe(100);
    expect(b.nextPetAt(650, 400)).toBe(700);
    b.release("b");
    expect(b.earliest()).toBe(1000);
    // A restarted agent keeps its last bound until it states a new one.
    b.register("a");
    expect(b.earliest()).toBe(1000);
    expect(b.allUnbounded()).toBe(false);
  });

  it("after a keeper restart, agents it had registered bound the pets at its start until they speak", () => {
    const b = new KeeperBounds(["a", "b"], 5000);
    expect(b.mayPet(5001)).toBe(false);
    b.set("a", Number.POSITIVE_INFINITY);
    expect(b.mayPet(5001)).toBe(false);
    b.set("b", 9000);
    expect(b.mayPet(5001)).toBe(true);
  });
});

describe("the keeper over its socket", () => {
  it("pets while every agent allows it, never past the earliest bound, and holds a dead agent's last bound", async () => {
    const { k, rec, socket } = await keeper();
    const a = client(socket, "pair1.a");
    const b = await raw(socket);
    b.send({ op: "hello", agent: "pair2.b" });
    await until(() => a.armed && b.lines.length === 1, 5000, "both agents registered");
    expect(a.timeoutMs).toBe(400);
    a.tend(true, Number.POSITIVE_INFINITY);
    const before = rec.pets.length;
    await until(() => rec.pets.length > before + 2, 5000, "pets while no VM serves");

    // b's VM serves, its last allowed pet 200 ms from now; then b dies without a release.
    const bound = systemClock.now() + 200;
    b.send({ op: "bound", seq: 1, petUntil: bound });
    await until(() => b.lines.length === 2, 5000, "the ack");
    expect(k.bounds.earliest()).toBe(bound);
    b.destroy();
    await sleep(600);
    expect(rec.pets.filter((p) => p.at > bound)).toEqual([]);
    expect(rec.pets.some((p) => p.at >= bound - 150)).toBe(true);
    for (const p of rec.pets) expect(p.at).toBeLessThanOrEqual(p.earliest);
    // b comes back and its VM cannot serve: pets again.
    const back = await raw(socket);
    back.send({ op: "hello", agent: "pair2.b" });
    back.send({ op: "bound", seq: 1, petUntil: null });
    const frozen = rec.pets.length;
    await until(() => rec.pets.length > frozen, 5000, "pets after the restarted agent spoke");
  });

  it("pets again once the bound's agent releases it (its VM stopped), and says when a request is bad", async () => {
    const { k, rec, socket } = await keeper();
    const a = client(socket, "pair1.a");
    await until(() => a.armed, 5000, "registered");
    expect(await a.hold(systemClock.now() - 1)).toBe(true);
    const frozen = rec.pets.length;
    await sleep(300);
    expect(rec.pets.length).toBe(frozen);
    a.disarm();
    await until(() => rec.pets.length > frozen, 5000, "pets after the release");
    expect(k.bounds.agents).toEqual([]);
    expect(JSON.parse(readFileSync(join(socket, "..", "keeper.json"), "utf8"))).toEqual([]);
  });

  it("refuses malformed requests and bounds from an agent that has not said hello", async () => {
    const { k, socket } = await keeper();
    const s = await raw(socket);
    s.write(`${JSON.stringify({ op: "bound", seq: 1, petUntil: 5 })}\n{"op":"bound","seq":-1}\nnot json\n`);
    await until(() => s.lines.length >= 3, 5000, "three answers");
    expect(s.lines.map((l) => (JSON.parse(l) as { code: string }).code)).toEqual(["no_hello", "bad_request", "bad_request"]);
    expect(k.bounds.agents).toEqual([]);
  });

  it("a restarted keeper inherits its agents: no pets until they state their bounds again", async () => {
    const first = await keeper();
    const a = client(first.socket, "pair1.a");
    await until(() => a.armed, 5000, "registered");
    expect(await a.hold(systemClock.now() + 60_000)).toBe(true);
    await first.stop();
    await until(() => !a.armed, 5000, "the agent sees the keeper gone");
    expect(await a.hold(systemClock.now() + 60_000)).toBe(false);

    const second = await keeper(first.dir);
    expect(second.k.bounds.agents).toEqual(["pair1.a"]);
    await until(() => a.armed, 5000, "reconnected");
    // The client states its bound again on reconnecting.
    await until(() => second.k.bounds.earliest() > systemClock.now() + 30_000, 5000, "the bound restated");
    await until(() => second.rec.pets.length > 0, 5000, "pets once every inherited agent has spoken");
    for (const p of second.rec.pets) expect(p.at).toBeLessThanOrEqual(p.earliest);
  });

  it("stops disarmed only when no registered agent's VM may serve", async () => {
    const one = await keeper();
    const a = client(one.socket, "pair1.a");
    await until(() => a.armed, 5000, "registered");
    expect(await a.hold(systemClock.now() + 60_000)).toBe(true);
    await one.stop();
    expect(one.rec.disarmed()).toBe(false);

    const two = await keeper();
    const b = client(two.socket, "pair1.b");
    await until(() => b.armed, 5000, "registered");
    expect(await b.hold(Number.POSITIVE_INFINITY)).toBe(true);
    await two.stop();
    expect(two.rec.disarmed()).toBe(true);
  });
});

describe("an agent guarded by a keeper", () => {
  const fakes: FakeQemu[] = [];
  const rigs: Rig[] = [];
  afterEach(async () => {
    for (const r of rigs.splice(0)) r.stop();
    for (const f of fakes.splice(0)) await f.stop();
  });

  it("has the keeper hold its serving bound before the failover step that makes its VM serve", async () => {
    const { k, socket } = await keeper();
    const fake = await new FakeQemu("secondary").listen();
    fakes.push(fake);
    const wd = keeperWatchdog(socket, "pair1.n1", silentLogger);
    cleanups.push(() => wd.disarm());
    const order = { id: "pair1:1", action: "failover" as const, epoch: 1, peerFenced: true };
    const r = rig(fake, (_b, n) => (n >= 3 ? { order, epoch: 1 } : {}), { watchdog: wd });
    rigs.push(r);
    // What the keeper held when QEMU got x-colo-lost-heartbeat.
    let heldThen: number | null = null;
    const push = fake.received.push.bind(fake.received);
    fake.received.push = (...cs) => {
      if (cs.some((c) => c.command === "x-colo-lost-heartbeat")) heldThen = k.bounds.earliest();
      return push(...cs);
    };
    void r.agent.start();
    await until(() => r.beats.some((b) => b.ack?.state === "ok"), 30_000, "the failover");
    // A secondary cannot serve: unbounded until the runbook asked for its serving bound.
    expect(heldThen).not.toBeNull();
    expect(heldThen!).toBeLessThan(systemClock.now() + TIMINGS.leaseMs);
  }, 60_000);
});

describe("the colo-arbiter-watchdog binary beside an agent", () => {
  const procs: ChildProcess[] = [];
  const fakes: FakeQemu[] = [];
  const rigs: Rig[] = [];
  afterEach(async () => {
    for (const r of rigs.splice(0)) r.stop();
    for (const p of procs.splice(0)) p.kill("SIGKILL");
    for (const f of fakes.splice(0)) await f.stop();
  });

  function spawnKeeper(dir: string) {
    const p = spawn(process.execPath, ["dist/agent/keeper-cli.js", "--device", join(dir, "watchdog9"), "--socket", join(dir, "wd.sock"), "--state-dir", dir], { stdio: "ignore" });
    procs.push(p);
    return p;
  }

  it("guards the agent's node, which reports itself unguarded while the keeper is down", async () => {
    const dir = mkdtempSync(join(tmpdir(), "keeper-bin-"));
    writeFileSync(join(dir, "watchdog9"), "");
    let keeperProc = spawnKeeper(dir);
    const fake = await new FakeQemu("primary").listen();
    fakes.push(fake);
    const wd = keeperWatchdog(join(dir, "wd.sock"), "pair1.n1", silentLogger);
    const r = rig(fake, () => ({}), { watchdog: wd, keptLease: true });
    rigs.push(r);
    void r.agent.start();
    await until(() => r.beats.at(-1)?.watchdog?.armed === true, 30_000, "a guarded beat");
    await until(() => readFileSync(join(dir, "watchdog9"), "utf8").length > 2, 30_000, "the keeper petting the device");

    keeperProc.kill("SIGKILL");
    await until(() => r.beats.at(-1)?.watchdog?.armed === false, 30_000, "an unguarded beat");
    keeperProc = spawnKeeper(dir);
    await until(() => r.beats.at(-1)?.watchdog?.armed === true, 30_000, "guarded again");
    expect(JSON.parse(readFileSync(join(dir, "watchdog-keeper.json"), "utf8"))).toEqual(["pair1.n1"]);
  }, 120_000);
});
