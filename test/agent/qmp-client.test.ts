import { afterEach, describe, expect, it } from "vitest";
import { QmpClient, QmpError, parseQmpAddress } from "../../src/agent/qmp/client.js";
import { FakeQemu } from "../../src/demo/fake-qemu.js";
import { until } from "./harness.js";

const fakes: FakeQemu[] = [];
const clients: QmpClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const f of fakes.splice(0)) await f.stop();
});

async function setup(mode: "primary" | "secondary" | "none" = "primary", timeoutMs = 300) {
  const fake = await new FakeQemu(mode).listen();
  fakes.push(fake);
  const qmp = new QmpClient({ kind: "unix", path: fake.path }, { timeoutMs, backoff: { minMs: 20, maxMs: 100 } });
  clients.push(qmp);
  await qmp.connect();
  return { fake, qmp };
}

describe("QMP client", () => {
  it("parses unix and tcp addresses", () => {
    expect(parseQmpAddress("unix:/run/q.sock")).toEqual({ kind: "unix", path: "/run/q.sock" });
    expect(parseQmpAddress("tcp:127.0.0.1:4444")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 4444 });
    expect(parseQmpAddress("tcp:[::1]:4444")).toEqual({ kind: "tcp", host: "::1", port: 4444 });
    expect(parseQmpAddress("qmp.sock")).toBeNull();
  });

  it("negotiates capabilities with out-of-band execution after the greeting", async () => {
    const { fake, qmp } = await setup();
    expect(qmp.connected).toBe(true);
    expect(fake.received[0]).toEqual({ command: "qmp_capabilities", args: { enable: ["oob"] }, oob: false });
  });

  it("matches replies by id, and turns QMP errors into typed errors with QEMU's text", async () => {
    const { qmp } = await setup("none");
    const [st, colo] = await Promise.all([qmp.execute("query-status"), qmp.execute("query-colo-status")]);
    expect(st).toMatchObject({ running: true });
    expect(colo).toMatchObject({ mode: "none" });
    const e = await qmp.execute("x-colo-lost-heartbeat").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(QmpError);
    expect(e).toMatchObject({ code: "command_failed", qmpClass: "GenericError", message: "The feature 'colo' is not enabled" });
    expect(qmp.pendingCount).toBe(0);
  });

  it("bounds every command by a timeout and leaks no pending entry; out-of-band commands overtake a hung main loop", async () => {
    const { fake, qmp } = await setup();
    fake.hangMainLoop = true;
    await expect(qmp.execute("query-status", undefined, { timeoutMs: 50 })).rejects.toMatchObject({ code: "timeout" });
    expect(qmp.pendingCount).toBe(0);
    await expect(qmp.execute("yank", { instances: [{ type: "migration" }] }, { oob: true })).resolves.toEqual({});
    expect(fake.received.at(-1)).toMatchObject({ command: "yank", oob: true });
  });

  it("delivers events to subscribers while replies interleave", async () => {
    const { fake, qmp } = await setup();
    const events: string[] = [];
    qmp.onEvent((e) => events.push(e.event));
    const reply = qmp.execute("query-status");
    fake.checkpoint();
    await reply;
    await until(() => events.length === 2);
    expect(events).toEqual(["STOP", "RESUME"]);
  });

  it("turns an HMP failure (a non-empty string) into an error", async () => {
    const { qmp } = await setup();
    await expect(qmp.hmp("drive_del replication0")).resolves.toBeUndefined();
    await expect(qmp.hmp("drive_del replication0")).rejects.toMatchObject({ code: "hmp_failed", message: "Device 'replication0' not found" });
  });

  it("fails pending commands on disconnect and reconnects with backoff when QEMU comes back", async () => {
    const fake = await new FakeQemu("primary").listen();
    const qmp = new QmpClient({ kind: "unix", path: fake.path }, { timeoutMs: 300, backoff: { minMs: 20, maxMs: 100 } });
    clients.push(qmp);
    const states: boolean[] = [];
    qmp.onConnection((c) => states.push(c));
    qmp.start();
    await until(() => qmp.connected);
    fake.hangMainLoop = true;
    const pending = qmp.execute("query-status", undefined, { timeoutMs: 5000 });
    await fake.stop();
    await expect(pending).rejects.toMatchObject({ code: "disconnected" });
    expect(qmp.pendingCount).toBe(0);
    const again = new FakeQemu("primary");
    Object.defineProperty(again, "path", { value: fake.path });
    await again.listen();
    fakes.push(again);
    await until(() => qmp.connected);
    expect(states).toEqual([true, false, true]);
    await expect(qmp.execute("query-status")).resolves.toMatchObject({ running: true });
  });
});
