/** Small helpers for tests inside workerd: requests with tokens, a pair, beats with defaults. */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env as anyEnv } from "cloudflare:workers";
import type { Env } from "../../src/service/env.js";
import worker from "../../src/service/index.js";
import { expect } from "vitest";
import type { HeartbeatBody } from "../../src/api/schemas.js";

/** The Worker's bindings, typed as the Worker declares them. */
export const env = anyEnv as unknown as Env;

export const ADMIN = "test-admin-token-0123456789abcdefghij";

let pairSeq = 0;
/** Storage is per test file, not per test: every test gets its own pair id. */
export function pairId(prefix = "p"): string {
  return `${prefix}-${Date.now().toString(36)}-${++pairSeq}`;
}

export function call(method: string, path: string, opts: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? ADMIN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers["content-type"] ??= "application/json";
  return fetchWorker(new Request(`http://arbiter${path}`, { method, headers, ...(body !== undefined ? { body } : {}) }));
}

/**
 * The Worker's own fetch handler, inside workerd with its real bindings. (The plugin's SELF.fetch
 * slows down with every request it has served, which thousands of requests cannot afford.)
 */
export async function fetchWorker(req: Request): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(req, env, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

export async function createPair(id = pairId(), extra: Record<string, unknown> = {}) {
  const res = await call("PUT", `/v1/pairs/${id}`, {
    body: { nodes: [{ id: "n1", role: "primary" }, { id: "n2", role: "secondary" }], ...extra },
  });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { agentTokens: Record<string, string>; epoch: number };
  return { id, tokens: body.agentTokens, body };
}

const seqs = new Map<string, number>();

export function beatBody(node: string, over: Partial<HeartbeatBody> & { mode?: "primary" | "secondary" | "none"; replicating?: boolean } = {}): HeartbeatBody {
  const { mode = node === "n1" ? "primary" : "secondary", replicating = true, ...rest } = over;
  const key = `${node}`;
  const seq = (seqs.get(key) ?? 0) + 1;
  seqs.set(key, seq);
  return {
    nodeId: node,
    bootId: `boot-${node}`,
    seq: Date.now() * 1000 + seq,
    epoch: 0,
    configVersion: 1,
    qmp: { ok: true, lastOkMsAgo: 0 },
    colo: { mode },
    vm: { running: true, status: "running" },
    qemu: { pid: node === "n1" ? 100 : 200, startedAt: 1 },
    peer: { replicating, lastCheckpointMsAgo: 50 },
    watchdog: { armed: true, timeoutMs: 1000 },
    ...rest,
  };
}

export async function beat(pair: string, token: string, body: HeartbeatBody) {
  return call("POST", `/v1/pairs/${pair}/heartbeat`, { token, body });
}
