#!/usr/bin/env node
/**
 * colo-arbiter: the operator's command line for the arbiter's HTTP API.
 * Exit codes: 0 done; 1 the arbiter refused (its error code is shown); 2 usage; 3 unreachable or failing.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { describeResync } from "../api/present.js";
import { version } from "../agent/version.js";
import type { EventBody, PairStatusBody } from "../api/schemas.js";

const USAGE = `usage: colo-arbiter [--url URL] [--token-file PATH | --token TOKEN] [--json] <command>

  pair create <pair> --primary NODE --secondary NODE [--heartbeat-ms N] [--lease-ms N] [--stall-ms N]
                     [--fence-ms N] [--watchdog-ms N] [--hold-down-ms N] [--failsafe on|off] [--require-watchdog on|off]
                     [--update]   refuses an existing pair unless --update (then changes its timings)
  pair set <pair> [the timing flags] [--sink TYPE=...]... [--yes]   shows the change and asks
                     --sink pagerduty=ROUTING_KEY | slack=URL | webhook=URL [--webhook-secret-file PATH]
  pair show <pair>            pair list            pair delete <pair> [--force]
  token rotate <pair> <node> [--revoke]
  failover <pair> <node> [--reason TEXT] [--yes] [--no-wait]
                              asks first (--yes skips), then waits for the outcome
  maintenance <pair> on|off [--reason TEXT]
  resolve <pair> --serving NODE|none --reason TEXT
  reprotect <pair>            rebuild the replaced node (running an -incoming QEMU) as the new secondary
  events <pair> [--limit N] [--follow] [--type T[,T]] [--node NODE] [--since 15m|ISO]
  status <pair> [--watch]     --watch and --follow ride out an unreachable arbiter; --json --watch is NDJSON

URL and token also from COLO_ARBITER_URL and COLO_ARBITER_TOKEN; --token-file PATH (or
COLO_ARBITER_TOKEN_FILE) keeps the token out of ps and shell history.
Exit codes: 0 done, 1 refused by the arbiter, 2 usage, 3 arbiter unreachable or failing.`;

class Exit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const OPTIONS = {
  url: { type: "string" },
  token: { type: "string" },
  "token-file": { type: "string" },
  json: { type: "boolean", default: false },
  primary: { type: "string" },
  secondary: { type: "string" },
  "heartbeat-ms": { type: "string" },
  "lease-ms": { type: "string" },
  "stall-ms": { type: "string" },
  "fence-ms": { type: "string" },
  "watchdog-ms": { type: "string" },
  "hold-down-ms": { type: "string" },
  failsafe: { type: "string" },
  "require-watchdog": { type: "string" },
  sink: { type: "string", multiple: true },
  "webhook-secret-file": { type: "string" },
  force: { type: "boolean", default: false },
  revoke: { type: "boolean", default: false },
  yes: { type: "boolean", short: "y", default: false },
  update: { type: "boolean", default: false },
  "no-wait": { type: "boolean", default: false },
  reason: { type: "string" },
  serving: { type: "string" },
  limit: { type: "string" },
  follow: { type: "boolean", default: false },
  type: { type: "string" },
  node: { type: "string" },
  since: { type: "string" },
  watch: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
  version: { type: "boolean", default: false },
} as const;

type Flags = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K] extends { multiple: true } ? string[] : (typeof OPTIONS)[K]["type"] extends "boolean" ? boolean : string };

const GLOBAL_FLAGS = ["url", "token", "token-file", "json", "help", "version"];
const CONFIG_FLAGS = ["heartbeat-ms", "lease-ms", "stall-ms", "fence-ms", "watchdog-ms", "hold-down-ms", "failsafe", "require-watchdog", "sink", "webhook-secret-file"];
/** Each command's own flags: any other is a usage error, not silently ignored. */
const COMMAND_FLAGS: Record<string, string[]> = {
  "pair create": ["primary", "secondary", "update", ...CONFIG_FLAGS],
  "pair set": ["yes", ...CONFIG_FLAGS],
  "pair show": [],
  "pair list": [],
  "pair delete": ["force"],
  "token rotate": ["revoke"],
  failover: ["reason", "yes", "no-wait"],
  maintenance: ["reason"],
  resolve: ["serving", "reason"],
  reprotect: [],
  events: ["limit", "follow", "type", "node", "since"],
  status: ["watch"],
};

/** The whole usage, or a command's own lines of it (`colo-arbiter failover --help`). */
function helpFor(command: string | undefined): string {
  if (!command) return USAGE;
  const lines = USAGE.split("\n").filter((l) => l.trimStart().startsWith(`${command} `) || l.trim() === command);
  return lines.length > 0 ? `usage: colo-arbiter [--url URL] [--token-file PATH] [--json]\n${lines.join("\n")}` : USAGE;
}


/**
 * One read of a watch or a follow: an unreachable or failing arbiter prints a banner (on stderr
 * with --json, so NDJSON stays clean) and is tried again at the next round, never ends the watch.
 */
async function retrying<T>(read: () => Promise<T>, banner: boolean): Promise<T | null> {
  try {
    return await read();
  } catch (e) {
    if (!(e instanceof Exit) || e.code !== 3) throw e;
    const line = `as of ${time(Date.now())}: ${e.message}; retrying`;
    if (banner) console.log(line);
    else process.stderr.write(`${line}\n`);
    return null;
  }
}

function usage(msg: string): never {
  throw new Exit(2, `${msg}\n\n${USAGE}`);
}

class Api {
  constructor(
    readonly url: string,
    readonly token: string,
  ) {}

  async call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.url.replace(/\/$/, "")}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (e) {
      throw new Exit(3, `arbiter unreachable at ${this.url}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? (JSON.parse(text) as unknown) : null;
    } catch {
      // A proxy's or a login page's HTML: say what answered, in one line.
      throw new Exit(3, `not the arbiter's API at ${this.url}: HTTP ${res.status}, ${res.headers.get("content-type") ?? "no content type"}, "${text.slice(0, 60).replace(/\s+/g, " ")}"`);
    }
    if (res.ok) return json as T;
    const err = (json as { error?: { code: string; message: string } } | null)?.error;
    throw new Exit(res.status >= 500 && res.status !== 503 ? 3 : 1, `error ${res.status} ${err?.code ?? "unknown"}: ${err?.message ?? text.slice(0, 200)}`);
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

const ago = (ms: number | null) => (ms === null ? "-" : `${(ms / 1000).toFixed(1)}s ago`);
const time = (at: number) => new Date(at).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");

function showStatus(s: PairStatusBody): string {
  const head = `pair ${s.pairId}: ${s.state}  epoch ${s.epoch}  active ${s.activeNode ?? "-"}  failovers ${s.failovers}  can fail over: ${s.canFailOver ? "yes" : "NO"}`;
  const nodes = table([
    ["NODE", "ROLE", "SERVES", "LAST BEAT", "LEASE", "COLO", "VM", "QMP", "REPLICATING", "CHECKPOINT", "WATCHDOG", "FENCED", "AGENT"],
    ...s.nodes.map((n) => [
      n.id,
      `${n.role} (${n.standing})`,
      n.serves ? "yes" : "no",
      // A stale node's columns are its last report, not its state.
      n.stale ? `STALE, as of ${ago(n.lastSeenMsAgo)}` : ago(n.lastSeenMsAgo),
      n.lease ? `${(n.lease.msLeft / 1000).toFixed(1)}s` : "-",
      n.colo?.mode ?? "-",
      n.vm ? n.vm.status : "-",
      n.qmp ? (n.qmp.ok ? "ok" : "NOT ANSWERING") : "-",
      n.peer ? (n.peer.replicating ? "yes" : "NO") : "-",
      n.peer?.lastCheckpointMsAgo !== undefined ? ago(n.peer.lastCheckpointMsAgo) : "-",
      n.guarded ? "armed" : "NONE",
      n.fenced ? `pid ${n.fenced.instance?.pid ?? "gone"}` : "-",
      n.agent?.version ?? "-",
    ]),
  ]);
  const lines = [head, nodes];
  if (s.state !== "protected") lines.push(`problem: ${s.problem}`);
  if (s.order) lines.push(`order: ${s.order.action} ${s.order.id} to ${s.order.node} (${s.order.state}): ${s.order.reason}`);
  for (const n of s.nodes) {
    for (const e of n.agent?.setupErrors ?? []) lines.push(`${n.id}: set-up: ${e}`);
    if (n.incoming && !n.resync) lines.push(`${n.id}: -incoming QEMU ready to be rebuilt (NBD ${n.incoming.host}:${n.incoming.nbdPort})`);
    if (n.resync) lines.push(`${n.id}: ${describeResync(n.resync)}`);
  }
  for (const k of s.sinks ?? []) {
    if (k.deadLettered > 0 || k.lastError) lines.push(`pager ${k.type} ${k.id}: ${k.pending} pending, ${k.deadLettered} given up${k.lastError ? `, last error: ${k.lastError}` : ""}`);
  }
  if (s.takeover) lines.push(`takeover to ${s.takeover.target} waits for ${s.takeover.waitsFor}`);
  if (s.needsOperator) lines.push(`NEEDS OPERATOR: ${s.needsOperator.reason}`);
  if (s.nextCommand) lines.push(`next: ${s.nextCommand}`);
  if (s.maintenance) lines.push(`maintenance since ${time(s.maintenance.since)}${s.maintenance.reason ? `: ${s.maintenance.reason}` : ""}`);
  if (s.incident) lines.push(`incident ${s.incident.id} open since ${time(s.incident.openedAt)}`);
  if (s.lastDecision) lines.push(`last decision ${time(s.lastDecision.at)}: ${s.lastDecision.summary}`);
  return lines.join("\n");
}

/** One event per line, aligned, with milliseconds (failovers are told apart in them). */
const eventLine = (e: EventBody) =>
  `${new Date(e.at).toISOString().replace("T", " ")}  ${`#${e.id}`.padStart(7)}  ${e.type.padEnd(26)} ${(e.node ?? "-").padEnd(10)} ${e.actor.padEnd(14)} ${e.message}`;

/** --since: a duration back from now (90s, 15m, 2h, 1d) or an ISO time. */
function sinceOf(v: string | undefined): number | null {
  if (v === undefined) return null;
  const d = v.match(/^(\d+)(s|m|h|d)$/);
  if (d) return Date.now() - Number(d[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[d[2] as "s"];
  const t = Date.parse(v);
  if (Number.isNaN(t)) usage(`--since ${v}: a duration (90s, 15m, 2h, 1d) or an ISO time`);
  return t;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Asks on the terminal; with no terminal to ask on, the answer is no. */
async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const { createInterface } = await import("node:readline/promises");
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

function num(flags: Flags, name: keyof Flags): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) usage(`--${name} needs a whole number of milliseconds`);
  return n;
}

/**
 * The configuration a command's flags ask for: timings, and pagers (`--sink pagerduty=KEY`,
 * `slack=URL`, `webhook=URL`; a webhook's secret from `--webhook-secret-file`, never the command line).
 */
function configFields(f: Flags): Record<string, unknown> {
  const secret = f["webhook-secret-file"] ? readSecret(f["webhook-secret-file"]) : undefined;
  const sinks = f.sink?.map((s) => {
    const eq = s.indexOf("=");
    const [type, value] = eq < 0 ? [s, ""] : [s.slice(0, eq), s.slice(eq + 1)];
    if (type === "pagerduty" && value) return { type, routingKey: value };
    if (type === "slack" && value) return { type, url: value };
    if (type === "webhook" && value) return { type, url: value, ...(secret ? { secret } : {}) };
    return usage(`--sink ${s}: pagerduty=ROUTING_KEY, slack=URL or webhook=URL`);
  });
  return Object.fromEntries(
    Object.entries({
      heartbeatIntervalMs: num(f, "heartbeat-ms"),
      leaseMs: num(f, "lease-ms"),
      replicationStallMs: num(f, "stall-ms"),
      fenceLatencyMs: num(f, "fence-ms"),
      watchdogMs: num(f, "watchdog-ms"),
      holdDownMs: num(f, "hold-down-ms"),
      failsafe: onOff(f, "failsafe"),
      requireWatchdog: onOff(f, "require-watchdog"),
      sinks,
    }).filter(([, v]) => v !== undefined),
  );
}

function readSecret(file: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch (e) {
    return usage(`${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function onOff(flags: Flags, name: "failsafe" | "require-watchdog"): boolean | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (v !== "on" && v !== "off") usage(`--${name} is on or off`);
  return v === "on";
}

async function run(argv: string[]): Promise<void> {
  let parsed: { values: Flags; positionals: string[]; tokens: { kind: string; name?: string }[] };
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true, tokens: true }) as typeof parsed;
  } catch (e) {
    usage(e instanceof Error ? e.message : String(e));
  }
  const { values: f, positionals: p } = parsed;
  const command = p[0] === "pair" || p[0] === "token" ? `${p[0]} ${p[1] ?? ""}`.trim() : (p[0] ?? "");
  const own = COMMAND_FLAGS[command];
  if (own) {
    for (const t of parsed.tokens) {
      if (t.kind === "option" && t.name && !GLOBAL_FLAGS.includes(t.name) && !own.includes(t.name)) usage(`--${t.name} is not a flag of ${command}`);
    }
  }
  if (f.version) return void console.log(version());
  if (f.help) return void console.log(helpFor(p[0]));
  if (p.length === 0) usage("");
  const url = f.url ?? process.env.COLO_ARBITER_URL;
  const tokenFile = f["token-file"] ?? process.env.COLO_ARBITER_TOKEN_FILE;
  let token = f.token ?? process.env.COLO_ARBITER_TOKEN;
  if (!token && tokenFile) {
    try {
      token = readFileSync(tokenFile, "utf8").trim();
    } catch (e) {
      usage(`${tokenFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  }
  if (!url || !token) usage("the arbiter's URL and a token are needed (--url, and --token-file or --token; or COLO_ARBITER_URL, COLO_ARBITER_TOKEN_FILE or COLO_ARBITER_TOKEN)");
  if (!/^https?:\/\/[^/]/.test(url)) usage(`the arbiter's URL needs its scheme: https://${url.replace(/^[a-z]+:\/*/i, "")}`);
  const api = new Api(url, token);
  const out = (human: string, data: unknown) => console.log(f.json ? JSON.stringify(data, null, 2) : human);
  const [cmd, sub, a, b] = p;
  const pairPath = (pair: string | undefined) => {
    if (!pair) usage("which pair?");
    return `/v1/pairs/${encodeURIComponent(pair)}`;
  };

  switch (`${cmd} ${cmd === "pair" || cmd === "token" ? sub : ""}`.trim()) {
    case "pair create": {
      if (!f.primary || !f.secondary) usage("pair create needs --primary and --secondary");
      const body = { nodes: [{ id: f.primary, role: "primary" }, { id: f.secondary, role: "secondary" }], ...configFields(f) };
      // Create-only unless --update: a typo in a pair id must not reconfigure another pair.
      const r = await api.call<PairStatusBody & { agentTokens?: Record<string, string> }>("PUT", pairPath(a), body, f.update ? {} : { "if-none-match": "*" });
      const tokens = Object.entries(r.agentTokens ?? {}).map(([n, t]) => `  ${n}: ${t}`);
      return out(`${showStatus(r)}${tokens.length ? `\nagent tokens (shown once):\n${tokens.join("\n")}` : ""}`, r);
    }
    case "pair set": {
      // Like `patronictl edit-config`: show what changes, ask, then apply.
      const current = await api.call<PairStatusBody>("GET", pairPath(a));
      const wanted = configFields(f);
      if (Object.keys(wanted).length === 0) usage("pair set needs a change: a timing flag or --sink");
      const now = (k: string): unknown =>
        k === "sinks" ? (current.sinks ?? []).map((s) => `${s.type}`) : (current.config as unknown as Record<string, unknown>)[k];
      const shown = (k: string, v: unknown) => (k === "sinks" ? (v as { type: string }[]).map((s) => s.type) : v);
      const diff = Object.entries(wanted).filter(([k, v]) => k === "sinks" || JSON.stringify(now(k)) !== JSON.stringify(v));
      if (diff.length === 0) return out(`pair ${a}: nothing to change`, current);
      const lines = diff.map(([k, v]) => `  ${k}: ${JSON.stringify(now(k))} -> ${JSON.stringify(shown(k, v))}`);
      process.stderr.write(`pair ${a}:\n${lines.join("\n")}\n`);
      if (!f.yes && !(await confirm("Apply? [y/N] "))) {
        throw new Exit(2, process.stdin.isTTY ? "not confirmed: nothing changed" : "refusing to change the pair without --yes: stdin is not a terminal to ask on");
      }
      const nodes = [{ id: current.roles.primary, role: "primary" }, { id: current.roles.secondary, role: "secondary" }];
      const r = await api.call<PairStatusBody>("PUT", pairPath(a), { nodes, ...Object.fromEntries(diff) });
      return out(showStatus(r), r);
    }
    case "pair show":
      return out(showStatus(await api.call<PairStatusBody>("GET", pairPath(a))), await api.call("GET", pairPath(a)));
    case "pair list": {
      type Page = { pairs: { pairId: string; state: string; epoch: number; activeNode: string | null; createdAt: number }[]; next: string | null };
      // Every page: a fleet over 500 pairs is listed whole.
      const pairs: Page["pairs"] = [];
      for (let cursor: string | null = null, first = true; first || cursor; first = false) {
        const r: Page = await api.call<Page>("GET", `/v1/pairs?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
        pairs.push(...r.pairs);
        cursor = r.next;
      }
      return out(table([["PAIR", "STATE", "EPOCH", "ACTIVE", "CREATED"], ...pairs.map((x) => [x.pairId, x.state, String(x.epoch), x.activeNode ?? "-", time(x.createdAt)])]), { pairs, next: null });
    }
    case "pair delete":
      await api.call("DELETE", `${pairPath(a)}${f.force ? "?force=true" : ""}`);
      return out(`pair ${a} deleted`, { deleted: a });
    case "token rotate": {
      if (!b) usage("token rotate <pair> <node> [--revoke]");
      const r = await api.call<{ token: string; previousValidUntil: number | null }>("POST", `${pairPath(a)}/nodes/${encodeURIComponent(b)}/token${f.revoke ? "?revoke=true" : ""}`);
      const old = r.previousValidUntil === null ? "the old one is revoked" : `the old one works until the agent first uses this one, at most until ${time(r.previousValidUntil)}`;
      return out(`new agent token for ${b} (shown once; ${old}):\n  ${r.token}`, r);
    }
    case "failover": {
      if (!a) usage("failover <pair> <node> [--yes] [--no-wait]");
      if (!f.yes && !(await confirm(`Fail pair ${sub} over to ${a}? The other node is fenced first and must then be rebuilt as the new secondary. [y/N] `))) {
        throw new Exit(2, process.stdin.isTTY ? "not confirmed: nothing done" : "refusing to fail over without --yes: stdin is not a terminal to ask on");
      }
      const r = await api.call<{ issued: { action: string; id: string; node: string }[]; status: PairStatusBody }>("POST", `${pairPath(sub)}/failover`, { target: a, ...(f.reason ? { reason: f.reason } : {}) });
      const lines = r.issued.map((o) => `issued ${o.action} ${o.id} to ${o.node}`);
      const w = r.status.takeover;
      if (w) lines.push(`${a} takes over on ${w.waitsFor}`);
      if (f["no-wait"] || f.json) return out(lines.join("\n"), r);
      console.log(lines.join("\n"));
      // Like patronictl switchover: wait for the outcome and show where the pair ends up.
      const end = Date.now() + 120_000;
      let s = r.status;
      while ((s.takeover || s.orders.some((o) => o.action === "failover" || o.action === "fence")) && Date.now() < end) {
        await sleep(1000);
        s = await api.call<PairStatusBody>("GET", pairPath(sub));
      }
      console.log(showStatus(s));
      const old = s.nodes.find((n) => n.id !== a)?.id;
      if (s.activeNode === a && old) console.log(`next: ${old} is fenced; rebuild it as the new secondary (an -incoming QEMU beside its agent; docs/agent.md, "Re-protection")`);
      if (s.activeNode !== a) throw new Exit(1, `the failover did not complete within 120 s: ${s.state}`);
      return;
    }
    case "maintenance": {
      if (a !== "on" && a !== "off") usage("maintenance <pair> on|off");
      const r = await api.call<{ status: PairStatusBody }>("POST", `${pairPath(sub)}/maintenance`, { enabled: a === "on", ...(f.reason ? { reason: f.reason } : {}) });
      return out(`pair ${sub}: ${r.status.state}`, r);
    }
    case "resolve": {
      if (!f.serving || !f.reason) usage("resolve <pair> --serving NODE|none --reason TEXT");
      const r = await api.call<{ status: PairStatusBody }>("POST", `${pairPath(sub)}/resolve`, { servingNode: f.serving === "none" ? null : f.serving, reason: f.reason });
      return out(`pair ${sub}: ${r.status.state}`, r);
    }
    case "reprotect": {
      const r = await api.call<{ issued: { action: string; id: string; node: string }[]; status: PairStatusBody }>("POST", `${pairPath(sub)}/reprotect`);
      return out(r.issued.map((o) => `issued ${o.action} ${o.id} to ${o.node}`).join("\n") || `pair ${sub}: ${r.status.state}`, r);
    }
    case "events": {
      const limit = num(f, "limit") ?? 50;
      const since = sinceOf(f.since);
      const types = f.type ? new Set(f.type.split(",")) : null;
      const wanted = (e: EventBody) => (!types || types.has(e.type)) && (!f.node || e.node === f.node) && (since === null || e.at >= since);
      // Newest first, page by page, until `limit` events pass the filters or the log (or --since) ends.
      const picked: EventBody[] = [];
      type Page = { events: EventBody[]; next: number | null };
      for (let before: number | null = null, first = true; (first || before !== null) && picked.length < limit; first = false) {
        const page: Page = await api.call<Page>("GET", `${pairPath(sub)}/events?limit=500${before !== null ? `&before=${before}` : ""}`);
        picked.push(...page.events.filter(wanted));
        const oldest = page.events.at(-1);
        before = since !== null && oldest && oldest.at < since ? null : page.next;
      }
      const shown = picked.slice(0, limit).reverse();
      const show = (e: EventBody) => console.log(f.json ? JSON.stringify(e) : eventLine(e));
      for (const e of shown) show(e);
      let after = shown.at(-1)?.id ?? 0;
      while (f.follow) {
        await sleep(1000);
        const next = await retrying(() => api.call<{ events: EventBody[] }>("GET", `${pairPath(sub)}/events?limit=500&after=${after}`), !f.json);
        if (!next) continue;
        for (const e of [...next.events].reverse()) if (wanted(e)) show(e);
        after = Math.max(after, ...next.events.map((e) => e.id));
      }
      return;
    }
    case "status": {
      if (!f.watch) return out(showStatus(await api.call<PairStatusBody>("GET", pairPath(sub))), await api.call("GET", pairPath(sub)));
      // Watching rides out an unreachable arbiter (a banner, retried), and says when each view was read.
      for (;;) {
        const s = await retrying(() => api.call<PairStatusBody>("GET", pairPath(sub)), !f.json);
        if (s) {
          if (f.json) console.log(JSON.stringify({ asOf: new Date().toISOString(), ...s }));
          else process.stdout.write(`\x1b[2J\x1b[Has of ${time(Date.now())}\n${showStatus(s)}\n`);
        }
        await sleep(2000);
      }
    }
    default:
      usage(`unknown command: ${p.join(" ")}`);
  }
}

try {
  await run(process.argv.slice(2));
} catch (e) {
  if (e instanceof Exit) {
    process.stderr.write(`${e.message}\n`);
    process.exit(e.code);
  }
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(3);
}
