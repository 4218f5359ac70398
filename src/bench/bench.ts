/**
 * npm run bench: measures, on this machine and in one run, (1) heartbeat handling against
 * `wrangler dev` over real HTTP beside a floor of one bare Durable Object round trip, and over the
 * WebSocket beside a floor of a bare Durable Object WebSocket echo; (2) order delivery (an
 * operator's failover call to the agent holding the order) and failover latency over many trials
 * with real agents against fake QEMUs, over HTTP beats and over the push channel; (3) requests,
 * messages, rows written, alarms and cost per pair for HTTP and WebSocket beats; (4) the guest's
 * pause in a re-protection on real QEMU; and the Worker bundle's size. Prints tables and writes
 * bench/results.json. Not a test: nothing asserts.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import type { HeartbeatBody, HeartbeatReplyBody } from "../api/schemas.js";
import { Agent } from "../agent/agent.js";
import { ArbiterClient } from "../agent/arbiter-client.js";
import { ArbiterLink, type ArbiterPort } from "../agent/arbiter-link.js";
import WebSocket from "ws";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { gzipSync } from "node:zlib";
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
const DELIVERY_TRIALS = Number(process.env.BENCH_DELIVERY_TRIALS ?? 30);
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

/** Opens a WebSocket to the arbiter (a node's channel, or the bench's echo floor). */
function openSocket(path: string, token: string | null): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${dev.url.replace(/^http/, "ws")}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {}, perMessageDeflate: false });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

/** Each socket sends a message, waits for its answer, and sends the next, for LOAD_SECONDS. */
async function lockStep(sockets: { ws: WebSocket; next: () => string }[]): Promise<LoadResult> {
  const latencies: number[] = [];
  const end = Date.now() + LOAD_SECONDS * 1000;
  await Promise.all(
    sockets.map(
      ({ ws, next }) =>
        new Promise<void>((resolve) => {
          let sentAt = 0;
          const send = () => {
            if (Date.now() >= end) return resolve();
            sentAt = performance.now();
            ws.send(next());
          };
          ws.on("message", () => {
            latencies.push(performance.now() - sentAt);
            send();
          });
          send();
        }),
    ),
  );
  for (const { ws } of sockets) ws.terminate();
  return { rps: latencies.length / LOAD_SECONDS, p50: Number(quantile(latencies, 0.5).toFixed(2)), p99: Number(quantile(latencies, 0.99).toFixed(2)), errors: 0, non2xx: 0 };
}

/** Beats over the WebSocket (both nodes of each pair, in lock-step) against the echo floor on the same objects. */
async function socketLoad(pairs: number) {
  const made: { pairId: string; tokens: Record<string, string> }[] = [];
  for (let i = 0; i < pairs; i++) {
    const pairId = `wsload${pairs}-${i}-${Date.now().toString(36)}`;
    made.push({ pairId, tokens: await createPair(pairId) });
  }
  let seq = 0;
  const beats = await lockStep(
    await Promise.all(
      made.flatMap((p) =>
        ["a", "b"].map(async (node) => ({
          ws: await openSocket(`/v1/pairs/${p.pairId}/connect`, p.tokens[node]!),
          next: () => JSON.stringify(beatBody(node, ++seq, "bench-ws")),
        })),
      ),
    ),
  );
  const echo = await lockStep(
    await Promise.all(made.flatMap((p) => ["a", "b"].map(async (node) => ({ ws: await openSocket(`/bench/echo/${p.pairId}`, null), next: () => JSON.stringify(beatBody(node, 0, "echo")) })))),
  );
  return { pairs, sockets: pairs * 2, heartbeat: beats, floor: echo, latencyRatioP50: beats.p50 / Math.max(echo.p50, 0.001), throughputRatio: echo.rps / beats.rps };
}

// ---- 2. failover latency ------------------------------------------------------------

interface Trial {
  orderMs: number;
  runbookMs: number;
}

/** What a watched agent saw: when it sent its last beat, and when each order first reached it (by reply or push). */
interface Seen {
  lastSent: number;
  orders: Map<string, { action: string; at: number }>;
}

/** The agent's port to the arbiter, watched. */
function watchedPort(port: ArbiterPort, seen: Seen): ArbiterPort {
  const note = (o: HeartbeatReplyBody["order"]) => {
    if (o && !seen.orders.has(o.id)) seen.orders.set(o.id, { action: o.action, at: Date.now() });
  };
  return {
    pairId: port.pairId,
    async beat(body, timeoutMs, fallbackAfterMs) {
      seen.lastSent = Date.now();
      const r = await port.beat(body, timeoutMs, fallbackAfterMs);
      if (r.ok) note(r.reply.order);
      return r;
    },
    onPush: (fn) =>
      port.onPush?.((v) => {
        note(v.order);
        fn(v);
      }),
    open: () => port.open?.(),
    close: () => port.close?.(),
  };
}

/** An in-process agent on a fake QEMU, its beats and orders watched; over the push channel when `push`. */
function watchedAgent(pairId: string, node: string, token: string, qemu: () => FakeQemu | null, dir: string, push: boolean) {
  const tokenFile = join(dir, `${node}.token`);
  writeFileSync(tokenFile, token);
  const seen: Seen = { lastSent: 0, orders: new Map() };
  const http = new ArbiterClient(dev.url, pairId, tokenFile);
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
    arbiter: watchedPort(push ? new ArbiterLink(http, silentLogger) : http, seen),
    kept: fileKeptStore(join(dir, `${node}.kept.json`), "bench"),
    watchdog: null,
    log: silentLogger,
    ids: DEFAULT_IDS,
  });
  return { agent, seen, sock };
}

/** The checkpoint interval of the fake pair: COLO's x-checkpoint-delay, 2 s as the goal states. */
const CHECKPOINT_MS = 2000;

interface Setting {
  failsafe: boolean;
  push: boolean;
}

/** A protected pair of in-process agents on fake QEMUs (agents first, as the start rule asks), or null if it never got protected. */
async function fakePair(name: string, s: Setting) {
  const pairId = `${name}-${s.failsafe ? "on" : "off"}-${s.push ? "ws" : "http"}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  const tokens = await createPair(pairId, { failsafe: s.failsafe });
  const dir = mkdtempSync(join(tmpdir(), "bench-fo-"));
  const fakes: { a: FakeQemu | null; b: FakeQemu | null } = { a: null, b: null };
  const a = watchedAgent(pairId, "a", tokens.a!, () => fakes.a, dir, s.push);
  const b = watchedAgent(pairId, "b", tokens.b!, () => fakes.b, dir, s.push);
  const stop = async () => {
    a.agent.stop();
    b.agent.stop();
    await fakes.a?.stop();
    await fakes.b?.stop();
  };
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
  await fa.connectLink(join(dir, "link.sock"), CHECKPOINT_MS);
  fakes.a = fa;
  const end = Date.now() + 30_000;
  while ((await api<{ state: string }>("GET", `/v1/pairs/${pairId}`)).state !== "protected") {
    if (Date.now() > end) {
      await stop();
      return null;
    }
    await sleep(100);
  }
  return { pairId, a, b, fa, fb, fakes, stop };
}

async function trial(n: number, s: Setting): Promise<Trial | null> {
  const p = await fakePair(`fo${n}`, s);
  if (!p) return null;
  try {
    await sleep(1000 + Math.random() * 1000);
    // The primary's host dies: its agent beats no more, its QEMU is gone (the COLO stream drops).
    p.a.agent.stop();
    const died = p.a.seen.lastSent;
    await p.fa.stop();
    p.fakes.a = null;
    const until = Date.now() + 60_000;
    let doneAt = 0;
    while (Date.now() < until) {
      const st = p.fb.state;
      if (st.mode === "none" && st.lastMode === "secondary" && st.reason === "request" && st.running) {
        doneAt = Date.now();
        break;
      }
      await sleep(5);
    }
    const orderAt = [...p.b.seen.orders.values()].find((o) => o.action === "failover")?.at;
    if (!doneAt || !orderAt) return null;
    return { orderMs: orderAt - died, runbookMs: doneAt - died };
  } finally {
    await p.stop();
  }
}

const stats = (xs: number[]) => ({ p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), max: Math.max(...xs) });

/** Trials ten at a time, for a setting; failed trials (never protected, never done) are counted. */
async function trials<T>(label: string, count: number, run: (n: number) => Promise<T | null>): Promise<{ done: T[]; failed: number }> {
  const done: T[] = [];
  let failed = 0;
  for (let batch = 0; done.length + failed < count; batch++) {
    const size = Math.min(10, count - done.length - failed);
    const out = await Promise.all(Array.from({ length: size }, (_, i) => run(batch * 10 + i)));
    for (const t of out) t ? done.push(t) : failed++;
    log(`  ${label}: ${done.length + failed}/${count}`);
  }
  return { done, failed };
}

async function failoverTrials(s: Setting) {
  const { done, failed } = await trials(`failover, failsafe ${s.failsafe ? "on" : "off"}, ${s.push ? "WebSocket" : "HTTP"}`, TRIALS, (n) => trial(n, s));
  const t = DEFAULT_CONFIG;
  const goalMs = t.leaseMs + leaseMargin(t) + t.heartbeatIntervalMs + 250;
  return {
    ...s,
    checkpointDelayMs: CHECKPOINT_MS,
    trials: done.length,
    failed,
    order: stats(done.map((x) => x.orderMs)),
    runbookDone: stats(done.map((x) => x.runbookMs)),
    goalOrderP99Ms: s.failsafe ? null : goalMs,
  };
}

/** An operator's failover call to the moment the agent it orders holds the order (the first order: the old primary's fence). */
async function deliveryTrial(n: number, push: boolean): Promise<number | null> {
  const p = await fakePair(`dl${n}`, { failsafe: false, push });
  if (!p) return null;
  try {
    await sleep(500 + Math.random() * 1000);
    const asked = Date.now();
    const r = await api<{ issued?: { id: string; node: string }[] }>("POST", `/v1/pairs/${p.pairId}/failover`, { target: "b", reason: "bench" });
    const first = r.issued?.[0];
    if (!first) return null;
    const who = first.node === "a" ? p.a : p.b;
    const until = Date.now() + 10_000;
    while (!who.seen.orders.has(first.id) && Date.now() < until) await sleep(1);
    const at = who.seen.orders.get(first.id)?.at;
    return at ? at - asked : null;
  } finally {
    await p.stop();
  }
}

async function deliveryTrials(push: boolean) {
  const { done, failed } = await trials(`order delivery, ${push ? "WebSocket" : "HTTP"}`, DELIVERY_TRIALS, (n) => deliveryTrial(n, push));
  return { push, trials: done.length, failed, ms: stats(done) };
}

// ---- 3. storage and cost ----------------------------------------------------------------

/** Cloudflare's published prices (developers.cloudflare.com, Workers and Durable Objects pricing pages, read 2026-12-01). */
const PRICES = {
  date: "2026-12-01",
  workersRequestsPerMillion: 0.3,
  doRequestsPerMillion: 0.15,
  doDurationPerMillionGbS: 12.5,
  sqliteRowsWrittenPerMillion: 1.0,
};

/** A steady pair for STEADY_SECONDS: both nodes beat every HB over HTTP or their WebSockets; what it cost. */
async function steadyState(heartbeatIntervalMs: number, via: "http" | "ws") {
  const config = heartbeatIntervalMs === 1000 ? {} : { heartbeatIntervalMs, leaseMs: 7000, replicationStallMs: 10_000 };
  const pairId = `steady-${via}-${heartbeatIntervalMs}-${Date.now().toString(36)}`;
  const tokens = await createPair(pairId, config);
  let seq = 0;
  const sockets = via === "ws" ? { a: await openSocket(`/v1/pairs/${pairId}/connect`, tokens.a!), b: await openSocket(`/v1/pairs/${pairId}/connect`, tokens.b!) } : null;
  const beat = (node: "a" | "b"): Promise<unknown> => {
    const body = JSON.stringify(beatBody(node, ++seq, "steady"));
    if (!sockets) {
      return fetch(`${dev.url}/v1/pairs/${pairId}/heartbeat`, {
        method: "POST",
        headers: { authorization: `Bearer ${tokens[node]}`, "content-type": "application/json" },
        body,
      }).then((r) => r.text());
    }
    const ws = sockets[node];
    return new Promise((resolve) => {
      ws.once("message", resolve);
      ws.send(body);
    });
  };
  // Reach protection and let the window after the object's start pass before counting.
  for (let i = 0; i < 5; i++) {
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
  if (sockets) for (const ws of Object.values(sockets)) ws.close(1000, "done");
  const writes = s1.storage.writes - s0.storage.writes;
  const alarms = s1.storage.alarms - s0.storage.alarms;
  const perHour = { beats: beats / elapsedH, writes: writes / elapsedH, alarms: alarms / elapsedH };
  const hoursPerMonth = 730;
  // HTTP: every beat is a Worker request and a Durable Object request. WebSocket: a beat is an
  // incoming message, billed 20:1 against Durable Object requests, and no Worker request (the
  // upgrade is one, per (re)connect). Duration: only while a handler runs (an object that may
  // hibernate bills none between beats), taken as the measured p50 per beat or alarm.
  const workerRequests = via === "http" ? perHour.beats : 0;
  const doRequests = (via === "http" ? perHour.beats : perHour.beats / 20) + perHour.alarms;
  const cost = (msPerEvent: number) => {
    const requests = (workerRequests * PRICES.workersRequestsPerMillion + doRequests * PRICES.doRequestsPerMillion) / 1e6;
    const duration = (((perHour.beats + perHour.alarms) * msPerEvent) / 1000) * 0.128 * (PRICES.doDurationPerMillionGbS / 1e6);
    const rows = (perHour.writes * PRICES.sqliteRowsWrittenPerMillion) / 1e6;
    return (requests + duration + rows) * hoursPerMonth;
  };
  return {
    via,
    heartbeatIntervalMs,
    measuredSeconds: STEADY_SECONDS,
    beats,
    writes,
    perPairHour: {
      workerRequests: Math.round(workerRequests),
      doRequests: Math.round(doRequests),
      messages: via === "ws" ? Math.round(perHour.beats) : 0,
      rowsWritten: Math.round(perHour.writes),
      alarms: Math.round(perHour.alarms),
    },
    cost,
  };
}

/** The deployed Worker as `wrangler deploy` would upload it. */
function bundleSize() {
  const out = mkdtempSync(join(tmpdir(), "bench-bundle-"));
  try {
    execFileSync(process.execPath, ["node_modules/wrangler/bin/wrangler.js", "deploy", "--dry-run", "--outdir", out], { env: { ...process.env, WRANGLER_SEND_METRICS: "false" }, stdio: "pipe" });
    const js = readFileSync(join(out, "index.js"));
    return { kib: Math.round(js.length / 1024), gzipKib: Math.round(gzipSync(js).length / 1024) };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
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
  log("1/5 heartbeat handling vs the floor");
  const load1 = await heartbeatLoad(1);
  const load100 = await heartbeatLoad(100);
  const ws1 = await socketLoad(1);
  const ws8 = await socketLoad(8);
  log("2/5 order delivery and failover latency");
  const delivery = [await deliveryTrials(false), await deliveryTrials(true)];
  const failover = [];
  for (const push of [false, true]) for (const failsafe of [false, true]) failover.push(await failoverTrials({ failsafe, push }));
  log("3/5 requests, writes and cost");
  const steady = [];
  for (const hb of [1000, 5000]) for (const via of ["http", "ws"] as const) steady.push(await steadyState(hb, via));
  log("4/5 re-protection on real QEMU");
  const reprotect: NonNullable<Awaited<ReturnType<typeof reprotectPause>>>[] = [];
  for (const mib of [64, 512, 2048]) {
    const r = await reprotectPause(mib);
    if (r) reprotect.push(r);
  }
  log("5/5 the Worker bundle");
  const bundle = bundleSize();
  const storage = steady.map(({ cost, ...rest }) => ({
    ...rest,
    costPerPairMonthUsd: Number(cost(rest.via === "http" ? load1.heartbeat.p50 : ws1.heartbeat.p50).toFixed(4)),
  }));
  const results = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "?", node: process.version },
    heartbeat: { http: [load1, load100], websocket: [ws1, ws8] },
    delivery,
    failover,
    storage,
    reprotect,
    bundle,
    prices: PRICES,
  };
  mkdirSync("bench", { recursive: true });
  writeFileSync("bench/results.json", `${JSON.stringify(results, null, 2)}\n`);
  const f = (x: number) => x.toFixed(0);
  console.log(`machine: ${results.machine.cpus} x ${results.machine.model}, Node ${results.machine.node}\n`);
  console.log("| heartbeat vs floor | msgs or req/s | p50 ms | p99 ms | floor /s | floor p50 ms | floor p99 ms | latency ratio (p50) | throughput ratio |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const l of [load1, load100]) {
    console.log(`| HTTP, ${l.pairs} pair${l.pairs > 1 ? "s" : ""} (8 connections; floor: a bare DO call) | ${f(l.heartbeat.rps)} | ${l.heartbeat.p50} | ${l.heartbeat.p99} | ${f(l.floor.rps)} | ${l.floor.p50} | ${l.floor.p99} | ${l.latencyRatioP50.toFixed(2)}x | ${l.throughputRatio.toFixed(2)}x |`);
  }
  for (const l of [ws1, ws8]) {
    console.log(`| WebSocket, ${l.pairs} pair${l.pairs > 1 ? "s" : ""} (${l.sockets} sockets; floor: a bare DO socket echo) | ${f(l.heartbeat.rps)} | ${l.heartbeat.p50} | ${l.heartbeat.p99} | ${f(l.floor.rps)} | ${l.floor.p50} | ${l.floor.p99} | ${l.latencyRatioP50.toFixed(2)}x | ${l.throughputRatio.toFixed(2)}x |`);
  }
  console.log("\n| order delivery (failover call to the agent holding the order) | trials | p50 ms | p99 ms | max ms |");
  console.log("|---|---:|---:|---:|---:|");
  for (const d of delivery) console.log(`| ${d.push ? "WebSocket (pushed)" : "HTTP (next beat's reply)"} | ${d.trials} | ${f(d.ms.p50)} | ${f(d.ms.p99)} | ${f(d.ms.max)} |`);
  console.log(`\n| failover, checkpoint ${CHECKPOINT_MS / 1000} s (ms after the primary's last beat) | trials | order p50 | order p99 | order max | serving p50 | serving p99 | serving max | goal (order p99) |`);
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const o of failover) {
    console.log(`| ${o.push ? "WebSocket" : "HTTP"}, failsafe ${o.failsafe ? "on" : "off"} | ${o.trials} | ${f(o.order.p50)} | ${f(o.order.p99)} | ${f(o.order.max)} | ${f(o.runbookDone.p50)} | ${f(o.runbookDone.p99)} | ${f(o.runbookDone.max)} | ${o.goalOrderP99Ms ?? "docs/protocol.md bound"} |`);
  }
  console.log("\n| per pair-hour | Worker requests | DO requests (billed) | WebSocket messages | rows written | alarms | $ / pair-month |");
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const s of storage) {
    const p = s.perPairHour;
    console.log(`| ${s.via === "ws" ? "WebSocket" : "HTTP"} beats every ${s.heartbeatIntervalMs / 1000} s | ${p.workerRequests} | ${p.doRequests} | ${p.messages} | ${p.rowsWritten} | ${p.alarms} | ${s.costPerPairMonthUsd} |`);
  }
  console.log("\n| re-protection (real QEMU, -machine none, untouched RAM) | guest paused ms | whole resync ms |");
  console.log("|---|---:|---:|");
  for (const r of reprotect) console.log(`| ${r.memoryMiB} MiB RAM | ${r.pausedMs} | ${r.totalMs} |`);
  console.log(`\nWorker bundle: ${bundle.kib} KiB, ${bundle.gzipKib} KiB gzipped.`);
  console.log(`prices (${PRICES.date}): Workers $${PRICES.workersRequestsPerMillion}/M requests; Durable Objects $${PRICES.doRequestsPerMillion}/M requests (incoming WebSocket messages 20:1), $${PRICES.doDurationPerMillionGbS}/M GB-s (none while an object may hibernate), SQLite $${PRICES.sqliteRowsWrittenPerMillion}/M rows written (setAlarm counts as one); included allowances not subtracted.`);
  console.log("results: bench/results.json");
} finally {
  await dev.stop();
}
process.exit(0);
