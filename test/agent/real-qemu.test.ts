/** The agent's QMP client, tracker and runbook against a real QEMU 7.2 (no guest: -machine none). */
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/agent/clock.js";
import { silentLogger } from "../../src/agent/log.js";
import { pidfileProcess } from "../../src/agent/qemu/process.js";
import { queryQemu } from "../../src/agent/qemu/query.js";
import { QmpClient } from "../../src/agent/qmp/client.js";
import { DEFAULT_IDS, runFailover } from "../../src/agent/runbooks.js";
import { type RealQemu, qemuAvailable, startQemu } from "./real-qemu.js";

const have = qemuAvailable();
const running: RealQemu[] = [];
const clients: QmpClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const q of running.splice(0)) q.stop();
});

async function connected(extra: string[] = []) {
  const q = await startQemu(extra);
  running.push(q);
  const qmp = new QmpClient({ kind: "unix", path: q.qmpPath }, { timeoutMs: 3000 });
  clients.push(qmp);
  await qmp.connect();
  return { q, qmp };
}

describe.skipIf(!have)("against a real QEMU", () => {
  it("negotiates, and reports COLO status, run state and the instance from the pidfile", async () => {
    const { q, qmp } = await connected();
    expect(await qmp.execute("query-colo-status")).toEqual({ mode: "none", "last-mode": "none", reason: "none" });
    expect(pidfileProcess(q.pidfile).instance()?.pid).toBe(q.child.pid);
    const answer = await queryQemu(qmp, 2000);
    expect(answer?.colo).toEqual({ mode: "none", lastMode: "none", reason: "none" });
    expect(answer?.vm.running).toBe(true);
  });

  it("sees stop and cont as STOP and RESUME events", async () => {
    const { qmp } = await connected();
    const events: string[] = [];
    qmp.onEvent((e) => events.push(e.event));
    await qmp.execute("stop");
    expect(await qmp.execute("query-status")).toMatchObject({ running: false, status: "paused" });
    await qmp.execute("cont");
    const end = Date.now() + 2000;
    while (events.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect(events).toEqual(["STOP", "RESUME"]);
  });

  it("turns QEMU's error outside COLO into a failed runbook, judged by the postcondition", async () => {
    const { qmp } = await connected();
    const out = await runFailover("none", { qmp, ids: DEFAULT_IDS, clock: systemClock, log: silentLogger, stepTimeoutMs: 2000, notBefore: () => 0, signal: new AbortController().signal });
    expect(out).toMatchObject({ ok: false, step: "verify" });
    await expect(qmp.execute("x-colo-lost-heartbeat")).rejects.toMatchObject({ code: "command_failed", message: "The feature 'colo' is not enabled" });
  });

  it("kills QEMU by the pid in its pidfile", async () => {
    const { q } = await connected();
    const proc = pidfileProcess(q.pidfile);
    const inst = proc.instance()!;
    expect(await proc.kill(inst, 3000)).toBe(true);
    expect(proc.instance()).toBeNull();
  });
});
