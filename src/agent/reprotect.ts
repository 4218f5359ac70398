/**
 * Re-protection (docs/COLO-FT.txt, "Primary/Secondary resume replication", as verified on QEMU
 * 7.2 in ../shared/qemu-colo.md): the replaced node's `-incoming` QEMU exports its disk over NBD
 * (`prepareSecondary`); the active node mirrors its disk onto it while the guest runs, then, with
 * the guest paused, attaches the replication drive and the proxy, and starts COLO (`reprotect`).
 * The guest never runs between `stop` and COLO's own restart of it: a write in that window would
 * reach the primary only. Any failure after `stop` rolls back and `cont`s, unless the runbook was
 * aborted by a fence, which wants the VM stopped.
 */
import type { ColoEndpoint } from "../protocol/types.js";
import type { QmpClient } from "./qmp/client.js";
import { type RunbookContext, type RunbookOutcome, failedOutcome, sleep, stepper } from "./runbooks.js";

/** What this node's COLO set-up is called and where it listens (agent settings; COLO-FT.txt's names by default). */
export interface ColoSettings {
  /** This node's address on the replication network, and its ports. */
  host: string;
  nbdPort: number;
  migratePort: number;
  /** The proxy's ports, used when this node becomes the primary: mirror0, compare1 and the two local pairs. */
  mirrorPort: number;
  compare1Port: number;
  compare0Port: number;
  compareOutPort: number;
  disk: string;
  exportName: string;
  replicationNode: string;
  nbdNode: string;
  netdev: string;
  /** Raised for the paused RAM copy: QEMU's 128 MiB/s default pauses a 1 GiB guest for 8 s. */
  maxBandwidth: number;
}

export const DEFAULT_COLO: Omit<ColoSettings, "host" | "nbdPort" | "migratePort" | "mirrorPort" | "compare1Port" | "compare0Port" | "compareOutPort"> = {
  disk: "colo-disk0",
  exportName: "parent0",
  replicationNode: "replication0",
  nbdNode: "colo-nbd0",
  netdev: "hn0",
  maxBandwidth: 1024 * 1024 * 1024,
};

/** The proxy objects of a COLO primary, in the order they are added (and removed in reverse). */
const PROXY_OBJECTS = ["m0", "redire0", "redire1", "iothread1", "comp0"] as const;
const MIRROR_JOB = "resync";

export type ReprotectProgress = { phase: "mirror"; percent: number } | { phase: "paused" } | { phase: "colo"; pausedMs: number };

export type ReprotectContext = Pick<RunbookContext, "qmp" | "clock" | "log" | "stepTimeoutMs" | "signal"> & {
  colo: ColoSettings;
  onProgress?: (p: ReprotectProgress) => void;
};

const inet = (host: string, port: number) => ({ type: "inet", data: { host, port: String(port) } });

/** On the new secondary: export its disk over NBD. Repeating it is harmless. */
export async function runPrepareSecondary(ctx: ReprotectContext): Promise<RunbookOutcome> {
  const { qmp, colo, stepTimeoutMs: t } = ctx;
  const step = stepper(ctx);
  try {
    const st = await qmp.execute<{ status: string }>("query-status", undefined, { timeoutMs: t });
    if (st.status !== "inmigrate") return { ok: false, step: "check", error: `QEMU is ${st.status}, not an -incoming secondary: refusing to export its disk` };
    const exports = async () => (await qmp.execute<{ id: string }[]>("query-block-exports", undefined, { timeoutMs: t })).map((e) => e.id);
    if (!(await exports()).includes(colo.exportName)) {
      await step("nbd-server-start", () =>
        qmp.execute("nbd-server-start", { addr: inet(colo.host, colo.nbdPort) }, { timeoutMs: t }).catch((e: Error) => {
          if (!/already running/.test(e.message)) throw e;
        }),
      );
      await step("nbd-server-add", () => qmp.execute("nbd-server-add", { device: colo.exportName, writable: true }, { timeoutMs: t }));
    }
    return (await exports()).includes(colo.exportName) ? { ok: true } : { ok: false, step: "verify", error: `${colo.exportName} is not exported` };
  } catch (e) {
    return failedOutcome(e);
  }
}

/**
 * On the active node: resync the new secondary at `target` from this node's disk and start COLO.
 * Safe to run again after an agent restart: a pair already in COLO passes; a node caught inside
 * the paused window is rolled back and the resync starts over.
 */
export async function runReprotect(target: ColoEndpoint, checkpointDelayMs: number, ctx: ReprotectContext): Promise<RunbookOutcome> {
  const { qmp, colo, stepTimeoutMs: t } = ctx;
  const step = stepper(ctx);
  const q = <T>(cmd: string, args?: Record<string, unknown>) => qmp.execute<T>(cmd, args, { timeoutMs: t });
  let paused = false;
  try {
    if ((await q<{ status?: string }>("query-migrate")).status === "colo") return { ok: true };
    if (await hasNode(qmp, colo.replicationNode, t)) {
      // A previous run stopped inside the window: undo it and start over.
      await step("rollback", () => rollback(qmp, colo, t));
    }
    const status = await q<{ running: boolean; status: string }>("query-status");
    if (!status.running) await step("cont", () => q("cont"));
    await step("promote", () => promote(qmp, colo, t));

    const jobs = await q<{ device: string }[]>("query-block-jobs");
    if (!jobs.some((j) => j.device === MIRROR_JOB)) {
      await step("drive-mirror", () =>
        q("drive-mirror", { device: colo.disk, "job-id": MIRROR_JOB, target: `nbd://${target.host}:${target.nbdPort}/${colo.exportName}`, mode: "existing", format: "raw", sync: "full" }),
      );
    }
    await step("await-mirror-ready", async () => {
      for (;;) {
        const job = (await q<{ device: string; ready: boolean; offset: number; len: number; status: string }[]>("query-block-jobs")).find((j) => j.device === MIRROR_JOB);
        if (!job) throw new Error("the mirror job ended before it was ready (the target went away?)");
        ctx.onProgress?.({ phase: "mirror", percent: job.len > 0 ? Math.floor((100 * job.offset) / job.len) : 0 });
        if (job.ready) return;
        if (ctx.signal.aborted) throw new Error("aborted: the node is being fenced");
        await sleep(100, ctx.signal);
      }
    });

    // The window: from here until COLO runs, the guest must not run.
    const stoppedAt = ctx.clock.now();
    await step("stop", () => q("stop"));
    paused = true;
    ctx.onProgress?.({ phase: "paused" });
    await step("block-job-cancel", () => q("block-job-cancel", { device: MIRROR_JOB }));
    await step("await-mirror-completed", async () => {
      // A cancel after READY completes the copy and ends the job.
      const end = ctx.clock.now() + t;
      while ((await q<{ device: string }[]>("query-block-jobs")).some((j) => j.device === MIRROR_JOB)) {
        if (ctx.clock.now() > end) throw new Error("the mirror job did not complete after its cancel");
        await sleep(20);
      }
    });
    await step("drive_add", () =>
      qmp.hmp(
        `drive_add -n buddy driver=replication,mode=primary,file.driver=nbd,file.host=${target.host},file.port=${target.nbdPort},file.export=${colo.exportName},file.node-name=${colo.nbdNode},node-name=${colo.replicationNode}`,
        t,
      ),
    );
    await step("x-blockdev-change", () => q("x-blockdev-change", { parent: colo.disk, node: colo.replicationNode }));
    await step("proxy", () => addProxy(qmp, colo, t));
    await step("x-colo", () => q("migrate-set-capabilities", { capabilities: [{ capability: "x-colo", state: true }] }));
    await step("migrate-set-parameters", () => q("migrate-set-parameters", { "x-checkpoint-delay": checkpointDelayMs, "max-bandwidth": colo.maxBandwidth }));
    await step("migrate", () => q("migrate", { uri: `tcp:${target.host}:${target.migratePort}` }));
    await step("await-colo", async () => {
      for (;;) {
        const m = await q<{ status?: string }>("query-migrate");
        if (m.status === "colo") return;
        if (m.status === "failed" || m.status === "cancelled") throw new Error(`migration ${m.status}`);
        if (ctx.signal.aborted) throw new Error("aborted: the node is being fenced");
        await sleep(20, ctx.signal);
      }
    });
    // COLO restarted the guest itself (its RESUME); never `cont` here.
    paused = false;
    ctx.onProgress?.({ phase: "colo", pausedMs: ctx.clock.now() - stoppedAt });
    return { ok: true };
  } catch (e) {
    const out = failedOutcome(e);
    if (paused && !ctx.signal.aborted) {
      try {
        await rollback(qmp, colo, t);
        await q("cont");
        ctx.log.warn("re-protection rolled back; the VM runs standalone again", { step: out.ok ? null : out.step });
      } catch (r) {
        return { ok: false, step: "rollback", error: `${out.ok ? "" : `${out.step}: ${out.error}`}; rollback failed: ${r instanceof Error ? r.message : String(r)}` };
      }
    } else if (!paused) {
      await q("block-job-cancel", { device: MIRROR_JOB, force: true }).catch(() => {});
    }
    return out;
  }
}

async function hasNode(qmp: QmpClient, name: string, t: number): Promise<boolean> {
  const nodes = await qmp.execute<{ "node-name": string }[]>("query-named-block-nodes", undefined, { timeoutMs: t });
  return nodes.some((n) => n["node-name"] === name);
}

async function objects(qmp: QmpClient, t: number): Promise<Set<string>> {
  return new Set((await qmp.execute<{ name: string }[]>("qom-list", { path: "/objects" }, { timeoutMs: t })).map((o) => o.name));
}

/** Back to a standalone node: the replication child, the drive and the proxy objects go; the migration is cancelled. */
async function rollback(qmp: QmpClient, colo: ColoSettings, t: number) {
  await qmp.execute("migrate_cancel", undefined, { timeoutMs: t }).catch(() => {});
  if (await hasNode(qmp, colo.replicationNode, t)) {
    await qmp.execute("x-blockdev-change", { parent: colo.disk, child: await replicationChild(qmp, colo, t) }, { timeoutMs: t });
    await qmp.hmp(`drive_del ${colo.replicationNode}`, t);
  }
  const present = await objects(qmp, t);
  for (const id of [...PROXY_OBJECTS].reverse()) if (present.has(id)) await qmp.execute("object-del", { id }, { timeoutMs: t });
}

/** The quorum child that is the replication drive (quorum reuses indices: children.1 here, but ask). */
async function replicationChild(qmp: QmpClient, colo: ColoSettings, t: number): Promise<string> {
  const graph = await qmp.execute<{ nodes: { id: number; name: string }[]; edges: { parent: number; child: number; name: string }[] }>("x-debug-query-block-graph", undefined, { timeoutMs: t });
  const byName = new Map(graph.nodes.map((n) => [n.name, n.id]));
  const edge = graph.edges.find((e) => e.parent === byName.get(colo.disk) && e.child === byName.get(colo.replicationNode));
  return edge?.name ?? "children.1";
}

/**
 * A node that was a secondary becomes a primary: its redirectors and their chardevs go, and the
 * proxy's chardevs are added on its own address. A node that was a primary keeps its chardevs.
 */
async function promote(qmp: QmpClient, colo: ColoSettings, t: number) {
  const present = await objects(qmp, t);
  for (const id of ["f2", "f1"]) if (present.has(id)) await qmp.execute("object-del", { id }, { timeoutMs: t });
  const chardevs = new Set((await qmp.execute<{ label: string }[]>("query-chardev", undefined, { timeoutMs: t })).map((c) => c.label));
  for (const id of ["red1", "red0"]) if (chardevs.has(id)) await qmp.execute("chardev-remove", { id }, { timeoutMs: t });
  const socket = (port: number, server: boolean) => ({ type: "socket", data: { addr: inet(colo.host, port), server, ...(server ? { wait: false } : {}) } });
  const wanted: [string, ReturnType<typeof socket>][] = [
    ["mirror0", socket(colo.mirrorPort, true)],
    ["compare1", socket(colo.compare1Port, true)],
    ["compare0", socket(colo.compare0Port, true)],
    ["compare0-0", socket(colo.compare0Port, false)],
    ["compare_out", socket(colo.compareOutPort, true)],
    ["compare_out0", socket(colo.compareOutPort, false)],
  ];
  for (const [id, backend] of wanted) if (!chardevs.has(id)) await qmp.execute("chardev-add", { id, backend }, { timeoutMs: t });
}

/** The proxy objects, flat (`object-add` lost its "props" wrapper in QEMU 6.0), before rew0 where the node has it. */
async function addProxy(qmp: QmpClient, colo: ColoSettings, t: number) {
  const present = await objects(qmp, t);
  const before = present.has("rew0") ? { insert: "before", position: "id=rew0" } : {};
  const specs: Record<(typeof PROXY_OBJECTS)[number], Record<string, unknown>> = {
    m0: { "qom-type": "filter-mirror", netdev: colo.netdev, queue: "tx", outdev: "mirror0", ...before },
    redire0: { "qom-type": "filter-redirector", netdev: colo.netdev, queue: "rx", indev: "compare_out", ...before },
    redire1: { "qom-type": "filter-redirector", netdev: colo.netdev, queue: "rx", outdev: "compare0", ...before },
    iothread1: { "qom-type": "iothread" },
    comp0: { "qom-type": "colo-compare", primary_in: "compare0-0", secondary_in: "compare1", outdev: "compare_out0", iothread: "iothread1" },
  };
  for (const id of PROXY_OBJECTS) if (!present.has(id)) await qmp.execute("object-add", { id, ...specs[id] }, { timeoutMs: t });
}
