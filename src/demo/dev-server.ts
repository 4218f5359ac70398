/** Starts `wrangler dev` (workerd, local Durable Object storage) on a free loopback port for a test. */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface DevServer {
  url: string;
  adminToken: string;
  /** Stops workerd as an outage would, keeping its storage. */
  halt(): Promise<void>;
  /** Starts it again on the same port and storage, after a halt (nothing if it runs). */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startDev(vars: Record<string, string> = {}): Promise<DevServer> {
  const port = await freePort();
  const adminToken = `e2e-admin-${Math.random().toString(36).slice(2)}-0123456789abcdef`;
  const state = mkdtempSync(join(tmpdir(), "colo-arbiter-dev-"));
  const args = ["wrangler", "dev", "--port", String(port), "--ip", "127.0.0.1", "--persist-to", state, "--var", `ARBITER_ADMIN_TOKEN:${adminToken}`];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const url = `http://127.0.0.1:${port}`;
  let child = await launch(args, url);
  let halted = false;
  return {
    url,
    adminToken,
    async halt() {
      halted = true;
      await kill(child);
    },
    async resume() {
      if (!halted) return;
      child = await launch(args, url);
      halted = false;
    },
    async stop() {
      await kill(child);
      rmSync(state, { recursive: true, force: true });
    },
  };
}

async function launch(args: string[], url: string): Promise<ChildProcess> {
  const child: ChildProcess = spawn("npx", ["--no-install", ...args], {
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stdout?.on("data", (d) => (output += d));
  child.stderr?.on("data", (d) => (output += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return child;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await kill(child);
      throw new Error(`wrangler dev did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Kills the process group this test started, and nothing else, and waits until it has exited. */
async function kill(child: ChildProcess) {
  if (!child.pid || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    return;
  }
  await exited;
  // workerd, a grandchild, leaves with its group; give its port a moment.
  await new Promise((r) => setTimeout(r, 200));
}
