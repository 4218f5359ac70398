/** The colo-arbiter CLI against `wrangler dev` over real HTTP: tables, --json, errors with their code, exit codes. */
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { useDevServer } from "./dev.js";

const dev = useDevServer();

function cli(args: string[], env: Record<string, string> = {}) {
  // The built binary, as users run it (npm ci builds dist).
  const r = spawnSync(process.execPath, ["dist/cli/colo-arbiter.js", ...args], {
    encoding: "utf8",
    env: { ...process.env, COLO_ARBITER_URL: dev.url, COLO_ARBITER_TOKEN: dev.adminToken, ...env },
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A stand-in for what may sit at the arbiter's URL: a proxy's HTML page, or a paged pairs list. */
async function fakeArbiter(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.url?.startsWith("/v1/pairs?")) {
      const second = req.url.includes("cursor=page2");
      const pairs = Array.from({ length: second ? 3 : 500 }, (_, i) => ({ pairId: `${second ? "q" : "p"}${i}`, state: "protected", epoch: 0, activeNode: "a", createdAt: 0 }));
      res.setHeader("content-type", "application/json");
      return res.end(JSON.stringify({ pairs, next: second ? null : "page2" }));
    }
    res.setHeader("content-type", "text/html");
    res.end("<html><body>Sign in to continue</body></html>");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

const spawnCli = (args: string[], env: Record<string, string>) =>
  spawn(process.execPath, ["dist/cli/colo-arbiter.js", ...args], { env: { ...process.env, COLO_ARBITER_TOKEN: dev.adminToken, ...env }, stdio: ["ignore", "pipe", "pipe"] });

describe("colo-arbiter CLI conventions", () => {
  it("shows each node's agent release, checkpoint age and set-up errors in the status", async () => {
    const created = cli(["--json", "pair", "create", "cli12", "--primary", "a", "--secondary", "b"]);
    const tokens = (JSON.parse(created.out) as { agentTokens: Record<string, string> }).agentTokens;
    const r = await dev.request("POST", "/v1/pairs/cli12/heartbeat", {
      token: tokens.a!,
      body: {
        nodeId: "a", bootId: "cli", seq: 1, epoch: 0, configVersion: 1, qmp: { ok: true }, colo: { mode: "primary" }, vm: { running: true, status: "running" },
        qemu: { pid: 1, startedAt: 1 }, peer: { replicating: true, lastCheckpointMsAgo: 2500 }, watchdog: { armed: false },
        agent: { version: "9.8.7", setupErrors: ["no watchdog: this node is unguarded (a hung host is not reset)"] },
      },
    });
    expect(r.status).toBe(200);
    const out = cli(["status", "cli12"]).out;
    expect(out).toMatch(/^NODE\s+ROLE.*CHECKPOINT\s+WATCHDOG\s+FENCED\s+AGENT$/m);
    expect(out).toMatch(/^a\s+primary\s.*\s2\.5s ago\s.*\s9\.8\.7$/m);
    expect(out).toContain("a: set-up: no watchdog: this node is unguarded");
  });

  it("accepts only a command's own flags, and changes a pair with pair set: shows the change, asks, applies with --yes", () => {
    const wrong = cli(["status", "cli13", "--force"]);
    expect(wrong.code).toBe(2);
    expect(wrong.err).toMatch(/--force is not a flag of status/);
    expect(cli(["pair", "create", "cli13", "--primary", "a", "--secondary", "b", "--sink", "pagerduty=R0UT1NGKEY"]).code).toBe(0);
    const shown = JSON.parse(cli(["--json", "pair", "show", "cli13"]).out) as { sinks: { type: string }[]; config: { leaseMs: number } };
    expect(shown.sinks.map((k) => k.type)).toEqual(["pagerduty"]);
    // No terminal to ask on: the change is shown, refused without --yes, and nothing changes.
    const asked = cli(["pair", "set", "cli13", "--lease-ms", "4000"]);
    expect(asked.code).toBe(2);
    expect(asked.err).toContain("leaseMs: 3000 -> 4000");
    expect((JSON.parse(cli(["--json", "pair", "show", "cli13"]).out) as { config: { leaseMs: number } }).config.leaseMs).toBe(3000);
    const applied = cli(["--json", "pair", "set", "cli13", "--lease-ms", "4000", "--yes"]);
    expect(applied.code).toBe(0);
    expect(JSON.parse(applied.out)).toMatchObject({ config: { leaseMs: 4000 } });
    expect(cli(["pair", "set", "cli13", "--lease-ms", "4000"]).out).toMatch(/nothing to change/);
    expect(cli(["pair", "set", "cli13", "--sink", "carrier-pigeon=coo"]).code).toBe(2);
  });

  it("refuses to change an existing pair unless --update", () => {
    expect(cli(["pair", "create", "cli10", "--primary", "a", "--secondary", "b"]).code).toBe(0);
    const again = cli(["pair", "create", "cli10", "--primary", "a", "--secondary", "b", "--lease-ms", "4000"]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/error 412 pair_exists/);
    const updated = cli(["--json", "pair", "create", "cli10", "--primary", "a", "--secondary", "b", "--lease-ms", "4000", "--update"]);
    expect(updated.code).toBe(0);
    expect(JSON.parse(updated.out)).toMatchObject({ config: { leaseMs: 4000 } });
  });

  it("says in one line when the URL has no scheme or something else than the arbiter answers, and lists every page", async () => {
    const noScheme = cli(["pair", "list"], { COLO_ARBITER_URL: dev.url.replace(/^http:\/\//, "") });
    expect(noScheme.code).toBe(2);
    expect(noScheme.err).toMatch(/needs its scheme: https:\/\/127\.0\.0\.1/);
    const fake = await fakeArbiter();
    try {
      const html = await new Promise<{ code: number | null; err: string }>((resolve) => {
        const c = spawnCli(["pair", "show", "x"], { COLO_ARBITER_URL: fake.url });
        let err = "";
        c.stderr!.on("data", (d) => (err += d));
        c.on("close", (code) => resolve({ code, err }));
      });
      expect(html.code).toBe(3);
      expect(html.err.trim().split("\n")).toHaveLength(1);
      expect(html.err).toMatch(/not the arbiter's API at .*HTTP 200, text\/html/);
      const listed = await new Promise<string>((resolve) => {
        const c = spawnCli(["--json", "pair", "list"], { COLO_ARBITER_URL: fake.url });
        let out = "";
        c.stdout!.on("data", (d) => (out += d));
        c.on("close", () => resolve(out));
      });
      expect((JSON.parse(listed) as { pairs: unknown[] }).pairs).toHaveLength(503);
    } finally {
      await fake.close();
    }
  });

  it("keeps watching through an unreachable arbiter, with a banner, and NDJSON with --json", async () => {
    const closed = `http://127.0.0.1:${await new Promise<number>((r) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const port = (s.address() as AddressInfo).port;
        s.close(() => r(port));
      });
    })}`;
    const c = spawnCli(["status", "any", "--watch"], { COLO_ARBITER_URL: closed });
    let out = "";
    c.stdout!.on("data", (d) => (out += d));
    const end = Date.now() + 60_000;
    while ((out.match(/retrying/g) ?? []).length < 2 && Date.now() < end && c.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    c.kill();
    expect(out).toMatch(/as of .*: arbiter unreachable at .*; retrying/);
    expect((out.match(/retrying/g) ?? []).length).toBeGreaterThanOrEqual(2);

    cli(["pair", "create", "cli11", "--primary", "a", "--secondary", "b"]);
    const j = spawnCli(["--json", "status", "cli11", "--watch"], { COLO_ARBITER_URL: dev.url });
    let lines = "";
    j.stdout!.on("data", (d) => (lines += d));
    const until = Date.now() + 60_000;
    while (lines.split("\n").filter(Boolean).length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    j.kill();
    const docs = lines.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { pairId: string; asOf: string });
    expect(docs.length).toBeGreaterThanOrEqual(2);
    expect(docs[0]).toMatchObject({ pairId: "cli11" });
    expect(Date.parse(docs[0]!.asOf)).not.toBeNaN();
  }, 120_000);
});

describe("colo-arbiter CLI", () => {
  it("creates, lists, shows and deletes a pair", () => {
    const created = cli(["pair", "create", "cli1", "--primary", "a", "--secondary", "b", "--failsafe", "off"]);
    expect(created.code).toBe(0);
    expect(created.out).toMatch(/pair cli1: awaiting_protection/);
    expect(created.out).toMatch(/agent tokens \(shown once\):\n {2}a: cli1~a~/);
    const list = cli(["pair", "list"]);
    expect(list.out).toMatch(/^PAIR\s+STATE\s+EPOCH/m);
    expect(list.out).toMatch(/^cli1\s+awaiting_protection\s+0/m);
    const show = cli(["--json", "pair", "show", "cli1"]);
    expect(JSON.parse(show.out)).toMatchObject({ pairId: "cli1", config: { failsafe: false } });
    expect(cli(["pair", "delete", "cli1"]).code).toBe(0);
  });

  it("reads the token from a file, so it is not in ps, and rotates an agent token with --revoke", () => {
    const file = join(mkdtempSync(join(tmpdir(), "cli-")), "token");
    writeFileSync(file, `${dev.adminToken}\n`, { mode: 0o600 });
    const created = cli(["pair", "create", "cli9", "--primary", "a", "--secondary", "b"], { COLO_ARBITER_TOKEN: "", COLO_ARBITER_TOKEN_FILE: file });
    expect(created.code).toBe(0);
    const rotated = cli(["--token-file", file, "token", "rotate", "cli9", "a", "--revoke"], { COLO_ARBITER_TOKEN: "" });
    expect(rotated.out).toMatch(/the old one is revoked/);
    expect(cli(["--token-file", "/nonexistent/token", "pair", "list"], { COLO_ARBITER_TOKEN: "" }).code).toBe(2);
  });

  it("shows an API error with its code and exits 1", () => {
    cli(["pair", "create", "cli2", "--primary", "a", "--secondary", "b"]);
    // No terminal to ask on: refused without --yes, nothing done.
    const unasked = cli(["failover", "cli2", "b"]);
    expect(unasked.code).toBe(2);
    expect(unasked.err).toMatch(/without --yes/);
    const r = cli(["failover", "cli2", "b", "--yes"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/error 409 target_not_fresh/);
    expect(cli(["status", "nope"]).err).toMatch(/error 404 pair_not_found/);
  });

  it("enters maintenance, and the event log shows it, as a table and as JSON lines", () => {
    cli(["pair", "create", "cli3", "--primary", "a", "--secondary", "b"]);
    expect(cli(["maintenance", "cli3", "on", "--reason", "kernel"]).out).toMatch(/pair cli3: maintenance/);
    expect(cli(["events", "cli3"]).out).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z\s+#\d+\s+maintenance_entered\s+-\s+admin\s+maintenance on: kernel$/m);
    // Filters: by type, and by time (nothing is newer than a moment from now).
    const only = cli(["events", "cli3", "--type", "pair_created"]).out.trim().split("\n");
    expect(only).toHaveLength(1);
    expect(only[0]).toMatch(/pair_created/);
    expect(cli(["events", "cli3", "--since", new Date(Date.now() + 60_000).toISOString()]).out.trim()).toBe("");
    expect(cli(["events", "cli3", "--since", "1h", "--type", "maintenance_entered,pair_created"]).out.trim().split("\n")).toHaveLength(2);
    expect(cli(["events", "cli3", "--since", "yesterday-ish"]).code).toBe(2);
    const lines = cli(["--json", "events", "cli3"]).out.trim().split("\n").map((l) => JSON.parse(l) as { type: string });
    expect(lines.map((e) => e.type)).toContain("maintenance_entered");
    expect(cli(["status", "cli3"]).out).toMatch(/^NODE\s+ROLE\s+SERVES\s+LAST BEAT/m);
  });

  it("rotates a node's token and prints the new one once", () => {
    cli(["pair", "create", "cli4", "--primary", "a", "--secondary", "b"]);
    const r = cli(["token", "rotate", "cli4", "a"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/new agent token for a .*\n {2}cli4~a~[A-Za-z0-9_-]{43}/s);
    expect(cli(["token", "rotate", "cli4", "zz"]).err).toMatch(/error 422 unknown_node/);
  });

  it("exits 2 on a usage error and 3 when the arbiter is unreachable", () => {
    expect(cli(["frobnicate"]).code).toBe(2);
    expect(cli(["pair", "list"], { COLO_ARBITER_URL: "http://127.0.0.1:1" }).code).toBe(3);
    expect(cli(["pair", "list"], { COLO_ARBITER_TOKEN: "wrong-token-wrong-token-wrong-token" }).err).toMatch(/error 401 unknown_token/);
  });

  it("answers --help, -h and --version on stdout with exit 0, per command too, on both binaries", () => {
    const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
    for (const flag of ["--help", "-h"]) {
      const r = cli([flag]);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^usage: colo-arbiter/);
    }
    const one = cli(["failover", "--help"]);
    expect(one.code).toBe(0);
    expect(one.out).toMatch(/failover <pair> <node>/);
    expect(one.out).not.toMatch(/maintenance/);
    expect(cli(["--version"]).out.trim()).toBe(version);
    const agent = (args: string[]) => spawnSync(process.execPath, ["dist/agent/cli.js", ...args], { encoding: "utf8", timeout: 60_000 });
    expect(agent(["--version"]).stdout.trim()).toBe(version);
    const help = agent(["-h"]);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: colo-arbiter-agent/);
  });
});
