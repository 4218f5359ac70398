/**
 * npm run bench: measures, on this machine and in one run, (1) heartbeat handling against
 * `wrangler dev` over real HTTP beside a floor of one bare Durable Object round trip, (2) failover
 * latency over many trials with real agents against fake QEMUs, and (3) storage writes, requests
 * and cost per pair. Prints a table and writes bench/results.json. Not a test: nothing asserts.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import type { HeartbeatBody, HeartbeatReplyBody } from "../api/schemas.js";
import { Agent } from "../agent/agent.js";
import { ArbiterClient } from "../agent/arbiter-client.js";
import { systemClock } from "../agent/clock.js";
import { fileKeptStore } from "../agent/kept-state.js";
import { silentLogger } from "../agent/log.js";
import type { QemuProcess } from "../agent/qemu/process.js";
import { QmpClient } from "../agent/qmp/client.js";
import { runPrepareSecondary, runReprotect } from "../agent/reprotect.js";
import { DEFAULT_IDS, runFailover } from "../agent/runbooks.js";
import { DEFAULT_CONFIG, leaseMargin } from "../protocol/timing.js";
import { type DevServer, startDev } from "../demo/dev-server.js";
import { startColoPair } from "../demo/colo-pair.js";
import { FakeQemu } from "../demo/fake-qemu.js";

const TRIALS = Number(process.env.BENCH_TRIALS ?? 50);
const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 8);
const STEADY_SECONDS = Number(process.env.BENCH_STEADY_SECONDS ?? 30);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string) => process.stderr.write(`${s}\n`);
let dev: DevServer;

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${dev.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${dev.adminToken}`, "content-type": "application/json" },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return (await res.json()) as T;
}

async function createPair(pairId: string, config: Record<string, unknown> = {}) {
  const r = await api<{ agentTokens: Record<string, string> }>("PUT", `/v1/pairs/${pairId}`, {
    nodes: [{ id: "a", role: "primary" }, { id: "b", role: "secondary" }],
    requireWatchdog: false,
    ...config,
  });
  return r.agentTokens;
}

function beatBody(node: string, seq: number, boot: string): HeartbeatBody {
  return {
    nodeId: node,
    bootId: boot,
    seq,
    epoch: 0,
    configVersion: 1,
    qmp: { ok: true, lastOkMsAgo: 0 },
    colo: { mode: node === "a" ? "primary" : "secondary" },
    vm: { running: true, status: "running" },
    qemu: { pid: node === "a" ? 100 : 200, startedAt: 1 },
    peer: { replicating: true, lastCheckpointMsAgo: 100 },
    watchdog: { armed: false },
  };
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};

// ---- 1. heartbeat handling vs the floor ------------------------------------------

interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function load(requests: () => { path: string; method: "GET" | "POST"; headers: Record<string, string>; body?: string }): Promise<LoadResult> {
  const r = await autocannon({
    url: dev.url,
    connections: 8,
    duration: LOAD_SECONDS,
    requests: [{ setupRequest: (req) => ({ ...req, ...requests() }) }],
  });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx };
}

async function heartbeatLoad(pairs: number) {
  const tokens: { pairId: string; tokens: Record<string, string> }[] = [];
  for (let i = 0; i < pairs; i++) {
    const pairId = `load${pairs}-${i}`;
    tokens.push({ pairId, tokens: await createPair(pairId) });
  }
  let seq = 0;
  let i = 0;
  const beats = await load(() => {
    const p = tokens[i++ % tokens.length]!;
    const node = i % 2 === 0 ? "a" : "b";
    return {
      path: `/v1/pairs/${p.pairId}/heartbeat`,
      method: "POST",
      headers: { authorization: `Bearer ${p.tokens[node]}`, "content-type": "application/json" },
      body: JSON.stringify(beatBody(node, ++seq, "bench")),
    };
  });
  let j = 0;
  const floor = await load(() => ({ path: `/bench/floor/${tokens[j++ % tokens.length]!.pairId}`, method: "GET", headers: {} }));
  return { pairs, heartbeat: beats, floor, latencyRatioP50: beats.p50 / Math.max(floor.p50, 0.001), throughputRatio: floor.rps / beats.rps };
}

// ---- 2. failover latency ------------------------------------------------------------

interface Trial {
  orderMs: number;
  runbookMs: number;
}

/** An in-process agent on a fake QEMU, its beats watched: when it sent its last one, when an order reached it. */
function watchedAgent(pairId: string, node: string, token: string, qemu: () => FakeQemu | null, dir: string) {
  const tokenFile = join(dir, `${node}.token`);
  writeFileSync(tokenFile, token);
  const seen = { lastSent: 0, orderAt: 0 };
  const fetchImpl = (async (url: string, init: RequestInit) => {
    seen.lastSent = Date.now();
    const res = await fetch(url, init);
    const text = await res.text();
    try {
      if ((JSON.parse(text) as HeartbeatReplyBody).order?.action === "failover" && !seen.orderAt) seen.orderAt = Date.now();
    } catch {
      // not a reply
    }
    return new Response(text, { status: res.status, headers: res.headers });
  }) as typeof fetch;
  const process: QemuProcess = {
    read: () => (qemu() ? { kind: "running", instance: { pid: node === "a" ? 1001 : 1002, startedAt: 1 } } : { kind: "gone" }),
    kill: async () => {
      await qemu()?.stop();
      return true;
    },
  };
  const sock = join(dir, `${node}.qmp`);
  const agent = new Agent({
    nodeId: node,
    clock: systemClock,
    qmp: new QmpClient({ kind: "unix", path: sock }, { timeoutMs: 2000, backoff: { minMs: 20, maxMs: 100 } }),
    process,
    arbiter: new ArbiterClient(dev.url, pairId, tokenFile, fetchImpl),
    kept: fileKeptStore(join(dir, `${node}.kept.json`), "bench"),
    watchdog: null,
    log: silentLogger,
    ids: DEFAULT_IDS,
  });
  return { agent, seen, sock };
}

async function trial(n: number, failsafe: boolean): Promise<Trial | null> {
  const pairId = `fo-${failsafe ? "on" : "off"}-${n}-${Date.now().toString(36)}`;
  const tokens = await createPair(pairId, { failsafe });
  const dir = mkdtempSync(join(tmpdir(), "bench-fo-"));
  const fakes: { a: FakeQemu | null; b: FakeQemu | null } = { a: null, b: null };
  const a = watchedAgent(pairId, "a", tokens.a!, () => fakes.a, dir);
  const b = watchedAgent(pairId, "b", tokens.b!, () => fakes.b, dir);
  try {
    // Agents first: a VM must not run before its agent holds a lease.
    void a.agent.start();
    void b.agent.start();
    await sleep(1500);
    const fb = new FakeQemu("secondary");
    Object.defineProperty(fb, "path", { value: b.sock });
    await fb.listen();
    await fb.serveLink(join(dir, "link.sock"));
    fakes.b = fb;
    const fa = new FakeQemu("primary");
    Object.defineProperty(fa, "path", { value: a.sock });
    await fa.listen();
    await fa.connectLink(join(dir, "link.sock"), 500);
    fakes.a = fa;
    const end = Date.now() + 30_000;
    while ((await api<{ state: string }>("GET", `/v1/pairs/${pairId}`)).state !== "protected") {
      if (Date.now() > end) return null;
      await sleep(100);
    }
    await sleep(1000 + Math.random() * 1000);
    // The primary's host dies: its agent beats no more, its QEMU is gone (the COLO stream drops).
    a.agent.stop();
    const died = a.seen.lastSent;
    await fa.stop();
    fakes.a = null;
    const until = Date.now() + 60_000;
    let doneAt = 0;
    while (Date.now() < until) {
      const s = fb.state;
      if (s.mode === "none" && s.lastMode === "secondary" && s.reason === "request" && s.running) {
        doneAt = Date.now();
        break;
      }
      await sleep(5);
    }
    if (!doneAt || !b.seen.orderAt) return null;
    return { orderMs: b.seen.orderAt - died, runbookMs: doneAt - died };
  } finally {
    a.agent.stop();
    b.agent.stop();
    await fakes.a?.stop();
    await fakes.b?.stop();
  }
}

async function failoverTrials(failsafe: boolean) {
  const trials: Trial[] = [];
  let failed = 0;
  for (let batch = 0; trials.length + failed < TRIALS; batch++) {
    const size = Math.min(10, TRIALS - trials.length - failed);
    const out = await Promise.all(Array.from({ length: size }, (_, i) => trial(batch * 10 + i, failsafe)));
    for (const t of out) t ? trials.push(t) : failed++;
    log(`  failover, failsafe ${failsafe ? "on" : "off"}: ${trials.length + failed}/${TRIALS}`);
  }
  const t = DEFAULT_CONFIG;
  const goalMs = t.leaseMs + leaseMargin(t) + t.heartbeatIntervalMs + 250;
  const order = trials.map((x) => x.orderMs);
  const runbook = trials.map((x) => x.runbookMs);
  return {
    failsafe,
    trials: trials.length,
    failed,
    order: { p50: quantile(order, 0.5), p99: quantile(order, 0.99), max: Math.max(...order) },
    runbookDone: { p50: quantile(runbook, 0.5), p99: quantile(runbook, 0.99), max: Math.max(...runbook) },
    goalOrderP99Ms: failsafe ? null : goalMs,
  };
}

// ---- 3. storage and cost ----------------------------------------------------------------

/** Cloudflare's published prices (developers.cloudflare.com, Workers and Durable Objects pricing pages, read 2026-11-27). */
const PRICES = {
  date: "2026-11-27",
  workersRequestsPerMillion: 0.3,
  doRequestsPerMillion: 0.15,
  doDurationPerMillionGbS: 12.5,
  sqliteRowsWrittenPerMillion: 1.0,
};

async function steadyState(heartbeatIntervalMs: number) {
  const config = heartbeatIntervalMs === 1000 ? {} : { heartbeatIntervalMs, leaseMs: 7000, replicationStallMs: 10_000 };
  const pairId = `steady-${heartbeatIntervalMs}-${Date.now().toString(36)}`;
  const tokens = await createPair(pairId, config);
  let seq = 0;
  const beat = (node: string) =>
    fetch(`${dev.url}/v1/pairs/${pairId}/heartbeat`, {
      method: "POST",
      headers: { authorization: `Bearer ${tokens[node]}`, "content-type": "application/json" },
      body: JSON.stringify(beatBody(node, ++seq, "steady")),
    }).then((r) => r.text());
  // Reach protection and let the restart grace pass before counting.
  for (let i = 0; i < 4; i++) {
    await Promise.all([beat("a"), beat("b")]);
    await sleep(heartbeatIntervalMs);
  }
  type Storage = { storage: { writes: number; alarms: number; alarmWrites: number } };
  const s0 = await api<Storage>("GET", `/v1/pairs/${pairId}`);
  const started = Date.now();
  let beats = 0;
  while (Date.now() - started < STEADY_SECONDS * 1000) {
    await Promise.all([beat("a"), beat("b")]);
    beats += 2;
    await sleep(heartbeatIntervalMs);
  }
  const elapsedH = (Date.now() - started) / 3_600_000;
  const s1 = await api<Storage>("GET", `/v1/pairs/${pairId}`);
  const writes = s1.storage.writes - s0.storage.writes;
  const alarms = s1.storage.alarms - s0.storage.alarms;
  // What the beats themselves wrote: everything but the alarms' re-arming.
  const beatWrites = writes - (s1.storage.alarmWrites - s0.storage.alarmWrites);
  const perHour = { beats: beats / elapsedH, writes: writes / elapsedH, alarms: alarms / elapsedH };
  const hoursPerMonth = 730;
  const doRequests = (perHour.beats + perHour.alarms) * hoursPerMonth;
  // Duration: each request keeps the 128 MB object busy for about its handling time (measured p50 below).
  const cost = (writesPerHour: number, msPerRequest: number) => {
    const requests = (perHour.beats * PRICES.workersRequestsPerMillion + (perHour.beats + perHour.alarms) * PRICES.doRequestsPerMillion) / 1e6;
    const duration = (((perHour.beats + perHour.alarms) * msPerRequest) / 1000) * 0.128 * (PRICES.doDurationPerMillionGbS / 1e6);
    const writesCost = (writesPerHour * PRICES.sqliteRowsWrittenPerMillion) / 1e6;
    return (requests + duration + writesCost) * hoursPerMonth;
  };
  return {
    heartbeatIntervalMs,
    measuredSeconds: STEADY_SECONDS,
    beats,
    writes,
    writesPerSteadyBeat: beatWrites / beats,
    alarmRearmsPerPairHour: Math.round((writes - beatWrites) / elapsedH),
    perPairHour: { doRequests: Math.round(perHour.beats + perHour.alarms), storageWrites: Math.round(perHour.writes), alarms: Math.round(perHour.alarms) },
    naivePerPairHour: { storageWrites: Math.round(2 * perHour.beats) },
    doRequestsPerMonth: Math.round(doRequests),
    cost,
  };
}

/**
 * The guest's pause during re-protection on a real COLO pair (QEMU 7.2, `-machine none`), against
 * the VM's RAM size: the secondary is lost, the primary goes standalone, a new -incoming
 * secondary is resynced. Untouched RAM migrates as zero pages, so this is the pause's floor per
 * size; a guest's dirty RAM adds its copy at `max-bandwidth` (../shared/qemu-colo.md: 0.2-0.3 s
 * for 128 MiB, 2-5 s for 1 GiB raised).
 */
async function reprotectPause(memoryMiB: number): Promise<{ memoryMiB: number; pausedMs: number; totalMs: number } | null> {
  const pair = await startColoPair(1000, undefined, undefined, memoryMiB);
  try {
    process.kill(pair.secondary.child.pid!, "SIGKILL");
    const quiet = { clock: systemClock, log: silentLogger, stepTimeoutMs: 60_000, signal: new AbortController().signal };
    const failover = await runFailover("primary", { ...quiet, qmp: pair.primary.qmp, ids: DEFAULT_IDS, notBefore: () => 0, beforeServing: async () => {} });
    if (!failover.ok) throw new Error(`failover: ${failover.error}`);
    const incoming = await pair.startIncoming("secondary");
    const prepared = await runPrepareSecondary({ ...quiet, qmp: incoming.qmp, colo: pair.colo("secondary") });
    if (!prepared.ok) throw new Error(`prepare: ${prepared.error}`);
    const c = pair.colo("secondary");
    let pausedMs: number | null = null;
    const started = Date.now();
    const out = await runReprotect({ host: c.host, nbdPort: c.nbdPort, migratePort: c.migratePort }, 1000, {
      ...quiet,
      qmp: pair.primary.qmp,
      colo: pair.colo("primary"),
      onProgress: (p) => {
        if (p.phase === "colo") pausedMs = p.pausedMs;
      },
    });
    if (!out.ok || pausedMs === null) throw new Error(`reprotect: ${out.ok ? "no pause reported" : out.error}`);
    return { memoryMiB, pausedMs, totalMs: Date.now() - started };
  } catch (e) {
    log(`re-protection with ${memoryMiB} MiB: ${e instanceof Error ? e.message : String(e)}`);
    return null;
  } finally {
    pair.stop();
  }
}

// ---- main ------------------------------------------------------------------------------------

dev = await startDev({ BENCH_FLOOR: "1", BEAT_RATE_LIMIT: "off" });
try {
  log("1/4 heartbeat handling vs the floor");
  const load1 = await heartbeatLoad(1);
  const load100 = await heartbeatLoad(100);
  log("2/4 failover latency");
  const off = await failoverTrials(false);
  const on = await failoverTrials(true);
  log("3/4 storage and cost");
  const s1 = await steadyState(1000);
  const s5 = await steadyState(5000);
  log("4/4 re-protection on real QEMU");
  const reprotect: NonNullable<Awaited<ReturnType<typeof reprotectPause>>>[] = [];
  for (const mib of [64, 512, 2048]) {
    const r = await reprotectPause(mib);
    if (r) reprotect.push(r);
  }
  const msPerRequest = load1.heartbeat.p50;
  const storage = [s1, s5].map(({ cost, ...rest }) => ({
    ...rest,
    marginalCostPerPairMonthUsd: Number(cost(rest.perPairHour.storageWrites, msPerRequest).toFixed(4)),
    naiveCostPerPairMonthUsd: Number(cost(rest.naivePerPairHour.storageWrites, msPerRequest).toFixed(4)),
  }));
  const results = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "?", node: process.version },
    heartbeat: [load1, load100],
    failover: [off, on],
    storage,
    reprotect,
    prices: PRICES,
  };
  mkdirSync("bench", { recursive: true });
  writeFileSync("bench/results.json", `${JSON.stringify(results, null, 2)}\n`);
  const f = (x: number) => x.toFixed(0);
  console.log(`machine: ${results.machine.cpus} x ${results.machine.model}, Node ${results.machine.node}\n`);
  console.log("| heartbeat vs floor | req/s | p50 ms | p99 ms | floor req/s | floor p50 ms | floor p99 ms | latency ratio (p50) | throughput ratio |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const l of [load1, load100]) {
    console.log(`| ${l.pairs} pair${l.pairs > 1 ? "s" : ""} | ${f(l.heartbeat.rps)} | ${l.heartbeat.p50} | ${l.heartbeat.p99} | ${f(l.floor.rps)} | ${l.floor.p50} | ${l.floor.p99} | ${l.latencyRatioP50.toFixed(2)}x | ${l.throughputRatio.toFixed(2)}x |`);
  }
  console.log("\n| failover (ms after the primary's last beat) | trials | order p50 | order p99 | order max | serving p50 | serving p99 | serving max | goal (order p99) |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const o of [off, on]) {
    console.log(`| failsafe ${o.failsafe ? "on" : "off"} | ${o.trials} | ${f(o.order.p50)} | ${f(o.order.p99)} | ${f(o.order.max)} | ${f(o.runbookDone.p50)} | ${f(o.runbookDone.p99)} | ${f(o.runbookDone.max)} | ${o.goalOrderP99Ms ?? "docs/protocol.md bound"} |`);
  }
  console.log("\n| storage per pair | beats/s | writes per steady beat | writes / pair-hour (all alarm re-arms) | naive writes / pair-hour | DO requests / pair-hour | $ / pair-month | naive $ / pair-month |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const s of storage) {
    console.log(`| beat every ${s.heartbeatIntervalMs / 1000} s | ${(2000 / s.heartbeatIntervalMs).toFixed(1)} | ${s.writesPerSteadyBeat.toFixed(3)} | ${s.perPairHour.storageWrites} | ${s.naivePerPairHour.storageWrites} | ${s.perPairHour.doRequests} | ${s.marginalCostPerPairMonthUsd} | ${s.naiveCostPerPairMonthUsd} |`);
  }
  console.log("\n| re-protection (real QEMU, -machine none, untouched RAM) | guest paused ms | whole resync ms |");
  console.log("|---|---:|---:|");
  for (const r of reprotect) console.log(`| ${r.memoryMiB} MiB RAM | ${r.pausedMs} | ${r.totalMs} |`);
  console.log(`\nprices (${PRICES.date}): Workers $${PRICES.workersRequestsPerMillion}/M requests; Durable Objects $${PRICES.doRequestsPerMillion}/M requests, $${PRICES.doDurationPerMillionGbS}/M GB-s, SQLite $${PRICES.sqliteRowsWrittenPerMillion}/M rows written; included allowances not subtracted.`);
  console.log("results: bench/results.json");
} finally {
  await dev.stop();
}
process.exit(0);
