/**
 * The re-protection runbooks on a REAL COLO pair, driven directly (no arbiter): both directions,
 * the data written while protected present on the final survivor, and the failures the runbook
 * must survive with the VM running.
 */
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/agent/clock.js";
import { silentLogger } from "../../src/agent/log.js";
import type { QmpClient } from "../../src/agent/qmp/client.js";
import { type ReprotectContext, type ReprotectProgress, runPrepareSecondary, runReprotect } from "../../src/agent/reprotect.js";
import { DEFAULT_IDS, runFailover } from "../../src/agent/runbooks.js";
import { pollUntil } from "../../src/demo/poll.js";
import { qemuAvailable } from "../agent/real-qemu.js";
import { type ColoPair, type SideName, readPattern, startColoPair, writePattern } from "../../src/demo/colo-pair.js";

const have = qemuAvailable();
const CHECKPOINT_MS = 1000;
const pairs: ColoPair[] = [];
afterEach(() => {
  for (const p of pairs.splice(0)) p.stop();
  steps.length = 0;
});

/** The steps run so far, for a failure's message (QEMU 7.2 has been seen to crash in a resync). */
const steps: string[] = [];
const stepLog = { ...silentLogger, info: (msg: string, f?: Record<string, unknown>) => void (msg === "runbook step" && steps.push(String(f?.step))) };

const ctx = (qmp: QmpClient, colo: ReprotectContext["colo"], progress: ReprotectProgress[] = []): ReprotectContext => ({
  qmp,
  colo,
  clock: systemClock,
  log: stepLog,
  stepTimeoutMs: 10_000,
  signal: new AbortController().signal,
  onProgress: (p) => progress.push(p),
});

async function failOver(qmp: QmpClient, role: "primary" | "secondary") {
  const out = await runFailover(role, { qmp, ids: DEFAULT_IDS, clock: systemClock, log: silentLogger, stepTimeoutMs: 10_000, notBefore: () => 0, signal: new AbortController().signal, beforeServing: async () => {} });
  expect(out).toEqual({ ok: true });
}

const mode = async (qmp: QmpClient) => (await qmp.execute<{ mode: string }>("query-colo-status")).mode;
const running = async (qmp: QmpClient) => (await qmp.execute<{ running: boolean }>("query-status")).running;

/** Rebuilds `lost` as the new secondary of `survivor` and starts COLO. */
async function rebuild(pair: ColoPair, survivor: SideName, lost: SideName, progress: ReprotectProgress[] = []) {
  const incoming = await pair.startIncoming(lost);
  expect(await runPrepareSecondary(ctx(incoming.qmp, pair.colo(lost)))).toEqual({ ok: true });
  const c = pair.colo(lost);
  const out = await runReprotect({ host: c.host, nbdPort: c.nbdPort, migratePort: c.migratePort }, CHECKPOINT_MS, ctx(pair[survivor].qmp, pair.colo(survivor), progress));
  const exit = (side: SideName) => `exit ${pair[side].child.exitCode ?? "-"} signal ${pair[side].child.signalCode ?? "-"}`;
  expect(out, `steps: ${steps.join(" ")}\n${survivor} (${exit(survivor)}): ${pair[survivor].log()}\n${lost} (${exit(lost)}): ${pair[lost].log()}`).toEqual({ ok: true });
  expect(await mode(pair[survivor].qmp)).toBe("primary");
  // The secondary enters COLO once it has loaded the state the primary sent.
  await pollUntil("the new secondary in COLO", async () => (await mode(pair[lost].qmp)) === "secondary" || null, 30_000);
}

describe.skipIf(!have)("re-protection on a real COLO pair", () => {
  it("the secondary survives, the old primary's host is rebuilt, and the data written then survives a second failover and rebuild", async () => {
    const pair = await startColoPair(CHECKPOINT_MS);
    pairs.push(pair);
    process.kill(pair.primary.child.pid!, "SIGKILL");
    await failOver(pair.secondary.qmp, "secondary");

    const progress: ReprotectProgress[] = [];
    await rebuild(pair, "secondary", "primary", progress);
    expect(progress.some((p) => p.phase === "mirror")).toBe(true);
    expect(progress.at(-1)).toMatchObject({ phase: "colo" });
    // Checkpoints run: the new secondary keeps following.
    await new Promise((r) => setTimeout(r, 3 * CHECKPOINT_MS));
    expect(await mode(pair.primary.qmp)).toBe("secondary");

    await writePattern(pair.secondary.qmp, "0xab");
    await new Promise((r) => setTimeout(r, 2 * CHECKPOINT_MS));
    process.kill(pair.secondary.child.pid!, "SIGKILL");
    await failOver(pair.primary.qmp, "secondary");
    expect(await readPattern(pair.primary.qmp, "0xab")).toMatch(/read 65536\/65536 bytes/);
    expect(await readPattern(pair.primary.qmp, "0xcd")).toMatch(/Pattern verification failed/);

    await rebuild(pair, "primary", "secondary");
    // In COLO each checkpoint pauses the guest for a moment: it runs again after it.
    await pollUntil("the primary running in COLO", async () => (await running(pair.primary.qmp)) || null, 30_000);
  }, 240_000);

  /** A primary-side survivor of a lost secondary, and a new -incoming secondary ready to be resynced. */
  async function survivorWithIncoming() {
    const pair = await startColoPair(CHECKPOINT_MS);
    pairs.push(pair);
    process.kill(pair.secondary.child.pid!, "SIGKILL");
    await failOver(pair.primary.qmp, "primary");
    const incoming = await pair.startIncoming("secondary");
    expect(await runPrepareSecondary(ctx(incoming.qmp, pair.colo("secondary")))).toEqual({ ok: true });
    const c = pair.colo("secondary");
    return { pair, incoming, target: { host: c.host, nbdPort: c.nbdPort, migratePort: c.migratePort } };
  }

  it("a new secondary that dies inside the survivor's paused window: the survivor is rolled back and runs, and a second attempt succeeds", async () => {
    const { pair, incoming, target } = await survivorWithIncoming();
    const killAtPause = ctx(pair.primary.qmp, pair.colo("primary"));
    killAtPause.onProgress = (p) => {
      if (p.phase === "paused") process.kill(incoming.child.pid!, "SIGKILL");
    };
    const failed = await runReprotect(target, CHECKPOINT_MS, killAtPause);
    expect(failed.ok).toBe(false);
    await pollUntil("the survivor runs again", async () => (await running(pair.primary.qmp)) || null, 30_000);
    expect(await mode(pair.primary.qmp)).toBe("none");
    await rebuild(pair, "primary", "secondary");
    // In COLO each checkpoint pauses the guest for a moment: it runs again after it.
    await pollUntil("the primary running in COLO", async () => (await running(pair.primary.qmp)) || null, 30_000);
  }, 240_000);

  it("a new secondary that dies during the mirror: the survivor never paused, and a second attempt succeeds", async () => {
    const { pair, incoming, target } = await survivorWithIncoming();
    const killAtMirror = ctx(pair.primary.qmp, pair.colo("primary"));
    killAtMirror.onProgress = (p) => {
      if (p.phase === "mirror" && incoming.child.exitCode === null) process.kill(incoming.child.pid!, "SIGKILL");
    };
    expect((await runReprotect(target, CHECKPOINT_MS, killAtMirror)).ok).toBe(false);
    expect(await running(pair.primary.qmp)).toBe(true);
    await rebuild(pair, "primary", "secondary");
    await pollUntil("the primary running in COLO", async () => (await running(pair.primary.qmp)) || null, 30_000);
  }, 240_000);

  it("refuses to export the disk of a QEMU that is not an -incoming secondary", async () => {
    const pair = await startColoPair(CHECKPOINT_MS);
    pairs.push(pair);
    const out = await runPrepareSecondary(ctx(pair.primary.qmp, pair.colo("primary")));
    expect(out).toMatchObject({ ok: false, step: "check" });
  }, 120_000);
});
