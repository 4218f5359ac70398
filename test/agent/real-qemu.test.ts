/** The agent's QMP client, pidfile reading, queries and runbook against a real QEMU 7.2 (no guest: -machine none). */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
    expect(pidfileProcess(q.pidfile).read()).toMatchObject({ kind: "running", instance: { pid: q.child.pid } });
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
    const out = await runFailover("none", { qmp, ids: DEFAULT_IDS, clock: systemClock, log: silentLogger, stepTimeoutMs: 2000, notBefore: () => 0, signal: new AbortController().signal, beforeServing: async () => {} });
    expect(out).toMatchObject({ ok: false, step: "verify" });
    await expect(qmp.execute("x-colo-lost-heartbeat")).rejects.toMatchObject({ code: "command_failed", message: "The feature 'colo' is not enabled" });
  });

  it("kills QEMU by the pid in its pidfile", async () => {
    const { q } = await connected();
    const proc = pidfileProcess(q.pidfile);
    const r = proc.read();
    if (r.kind !== "running") throw new Error(`no instance: ${JSON.stringify(r)}`);
    expect(await proc.kill(r.instance, 3000)).toBe(true);
    expect(proc.read()).toEqual({ kind: "gone" });
  });

  it("adopts a pid only if it is a QEMU naming this agent's QMP socket; a reused pid is gone and never killed; no pidfile is unknown", async () => {
    const { q } = await connected();
    expect(pidfileProcess(q.pidfile, { qmpPath: q.qmpPath }).read()).toMatchObject({ kind: "running", instance: { pid: q.child.pid } });
    expect(pidfileProcess(q.pidfile, { qmpPath: "/elsewhere/qmp.sock" }).read()).toMatchObject({ kind: "unknown" });
    const dir = mkdtempSync(join(tmpdir(), "pidfile-"));
    // The QEMU died and its pid now names an unrelated program.
    const sleeper = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      writeFileSync(join(dir, "reused.pid"), `${sleeper.pid}\n`);
      const reused = pidfileProcess(join(dir, "reused.pid"), { qmpPath: q.qmpPath });
      expect(reused.read()).toEqual({ kind: "gone" });
      expect(await reused.kill({ pid: sleeper.pid!, startedAt: 0 }, 200)).toBe(true);
      expect(sleeper.exitCode).toBeNull();
      expect(sleeper.signalCode).toBeNull();
    } finally {
      sleeper.kill("SIGKILL");
    }
    expect(pidfileProcess(join(dir, "missing.pid")).read()).toMatchObject({ kind: "unknown" });
    writeFileSync(join(dir, "garbage.pid"), "not a pid");
    expect(pidfileProcess(join(dir, "garbage.pid")).read()).toMatchObject({ kind: "unknown" });
  });
});
