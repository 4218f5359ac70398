/**
 * The COLO failover runbooks (QEMU's docs/COLO-FT.txt, with what was learned on a real pair).
 * Every step is skipped when it already holds, so a repeated order is harmless, and success is
 * judged only by the postcondition: mode none, last-mode = the role, reason request, running.
 */
import type { ColoMode } from "../protocol/types.js";
import type { MonoClock } from "./clock.js";
import type { Logger } from "./log.js";
import { type QmpClient, QmpError } from "./qmp/client.js";

/** QMP ids the runbooks use; the defaults are COLO-FT.txt's names. */
export interface RunbookIds {
  quorumParent: string;
  replicationChild: string;
  replicationNode: string;
  objects: string[];
  /** The primary's NBD client node to yank; by default, every block node query-yank lists. */
  nbdNode: string | null;
}

export const DEFAULT_IDS: RunbookIds = {
  quorumParent: "colo-disk0",
  replicationChild: "children.1",
  replicationNode: "replication0",
  objects: ["comp0", "iothread1", "m0", "redire0", "redire1"],
  nbdNode: null,
};

export type RunbookOutcome = { ok: true } | { ok: false; step: string; error: string };

export interface RunbookContext {
  qmp: QmpClient;
  ids: RunbookIds;
  clock: MonoClock;
  log: Logger;
  stepTimeoutMs: number;
  /** The secondary's stall wait: not before this monotonic instant (asked once the stream is yanked). */
  notBefore: () => number;
  /** Stops the runbook between steps and cuts its waits short (the node is being fenced). */
  signal: AbortSignal;
  /** Called before the step that makes the VM serve: a shared watchdog keeper must hold its bound first. */
  beforeServing: () => Promise<void>;
}

type YankInstance = { type: string; "node-name"?: string };

class StepFailed extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message);
  }
}

/** Yanks what query-yank lists of the wanted kinds, out of band: a hung peer cannot block it. */
export async function yankStreams(qmp: QmpClient, wanted: (i: YankInstance) => boolean, timeoutMs: number): Promise<number> {
  const listed = await qmp.execute<YankInstance[]>("query-yank", undefined, { timeoutMs });
  const instances = listed.filter(wanted);
  if (instances.length > 0) await qmp.execute("yank", { instances }, { oob: true, timeoutMs });
  return instances.length;
}

/** Runs one named step: stops first if the runbook was aborted, logs its time, names it in a failure. */
export function stepper(ctx: Pick<RunbookContext, "clock" | "log" | "signal">) {
  return async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    if (ctx.signal.aborted) throw new StepFailed(name, "aborted: the node is being fenced");
    const started = ctx.clock.now();
    let out: T;
    try {
      out = await fn();
    } catch (e) {
      throw new StepFailed(name, e instanceof Error ? e.message : String(e));
    }
    ctx.log.info("runbook step", { step: name, ms: ctx.clock.now() - started });
    return out;
  };
}

/** A step's failure as the outcome the agent acknowledges. */
export function failedOutcome(e: unknown): RunbookOutcome {
  if (e instanceof StepFailed) return { ok: false, step: e.step, error: e.message };
  return { ok: false, step: "query", error: e instanceof Error ? e.message : String(e) };
}

export async function runFailover(role: ColoMode, ctx: RunbookContext): Promise<RunbookOutcome> {
  const { qmp, ids, log, stepTimeoutMs: t } = ctx;
  const step = stepper(ctx);
  try {
    if (role === "secondary") {
      await step("yank", async () => void (await yankStreams(qmp, (i) => i.type === "migration", t)));
      // A main-loop command after the yank: every event QEMU wrote before it has been read, so the
      // last checkpoint this node loaded is known when the wait is computed.
      await step("sync", () => qmp.execute("query-status", undefined, { timeoutMs: t }));
      await step("wait-stall", () => sleep(Math.max(0, ctx.notBefore() - ctx.clock.now()), ctx.signal));
      // Best effort: a stopped NBD server is what this step wants.
      await step("nbd-server-stop", () => qmp.execute("nbd-server-stop", undefined, { timeoutMs: t }).then(() => {}, tolerate("nbd-server-stop", log)));
    }
    if (role === "primary") {
      const nbd = ids.nbdNode;
      await step("yank", async () => void (await yankStreams(qmp, (i) => i.type === "migration" || (i.type === "block-node" && (nbd === null || i["node-name"] === nbd)), t)));
      const nodes = await qmp.execute<{ "node-name": string }[]>("query-named-block-nodes", undefined, { timeoutMs: t });
      if (nodes.some((n) => n["node-name"] === ids.replicationNode)) {
        await step("x-blockdev-change", () => qmp.execute("x-blockdev-change", { parent: ids.quorumParent, child: ids.replicationChild }, { timeoutMs: t }).then(() => {}));
        await step("drive_del", () => qmp.hmp(`drive_del ${ids.replicationNode}`, t));
      }
      const present = new Set((await qmp.execute<{ name: string }[]>("qom-list", { path: "/objects" }, { timeoutMs: t })).map((o) => o.name));
      for (const id of ids.objects.filter((o) => present.has(o))) await step(`object-del ${id}`, () => qmp.execute("object-del", { id }, { timeoutMs: t }).then(() => {}));
    }
    const colo = await coloStatus(qmp, t);
    if (colo.mode !== "none") {
      // "The feature 'colo' is not enabled" also comes from a QEMU that never entered COLO: judge by the postcondition.
      await step("guard", ctx.beforeServing);
      await step("x-colo-lost-heartbeat", () => qmp.execute("x-colo-lost-heartbeat", undefined, { timeoutMs: t }).then(() => {}, tolerate("x-colo-lost-heartbeat", log)));
      await step("await-failover", async () => {
        const end = ctx.clock.now() + t;
        while ((await coloStatus(qmp, t)).mode !== "none") {
          if (ctx.clock.now() > end) throw new Error("COLO mode did not become none");
          await sleep(10);
        }
      });
    }
    const st = await qmp.execute<{ running: boolean }>("query-status", undefined, { timeoutMs: t });
    if (!st.running) {
      await step("guard", ctx.beforeServing);
      await step("cont", () => qmp.execute("cont", undefined, { timeoutMs: t }).then(() => {}));
    }
    return await verify(role, ctx);
  } catch (e) {
    return failedOutcome(e);
  }
}

/** Starts again a VM this agent's own fence stopped (the core checked it is that instance). */
export async function runResume(ctx: Pick<RunbookContext, "qmp" | "stepTimeoutMs" | "beforeServing">): Promise<RunbookOutcome> {
  try {
    await ctx.beforeServing();
    await ctx.qmp.execute("cont", undefined, { timeoutMs: ctx.stepTimeoutMs });
    const st = await ctx.qmp.execute<{ running: boolean; status: string }>("query-status", undefined, { timeoutMs: ctx.stepTimeoutMs });
    return st.running ? { ok: true } : { ok: false, step: "verify", error: `status ${st.status}` };
  } catch (e) {
    return { ok: false, step: "cont", error: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * The postcondition: mode none, last-mode = the role, reason request, and running. A node that had
 * already left COLO (role none) must have left it by a requested failover: a QEMU that never
 * entered COLO also says mode none, and must not pass.
 */
export async function verify(role: ColoMode, ctx: Pick<RunbookContext, "qmp" | "stepTimeoutMs">): Promise<RunbookOutcome> {
  const colo = await coloStatus(ctx.qmp, ctx.stepTimeoutMs);
  const st = await ctx.qmp.execute<{ running: boolean; status: string }>("query-status", undefined, { timeoutMs: ctx.stepTimeoutMs });
  const lastMode = role === "none" ? colo.lastMode : role;
  const left = colo.mode === "none" && lastMode !== "none" && colo.lastMode === lastMode && colo.reason === "request";
  if (left && st.running) return { ok: true };
  return { ok: false, step: "verify", error: `colo ${JSON.stringify(colo)}, status ${st.status}` };
}

async function coloStatus(qmp: QmpClient, timeoutMs: number) {
  const c = await qmp.execute<{ mode: ColoMode; "last-mode": ColoMode; reason: string }>("query-colo-status", undefined, { timeoutMs });
  return { mode: c.mode, lastMode: c["last-mode"], reason: c.reason };
}

function tolerate(step: string, log: Logger) {
  return (e: unknown) => {
    if (!(e instanceof QmpError) || e.code !== "command_failed") throw e;
    log.info("runbook step refused, judged by the postcondition", { step, error: e.message });
  };
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
