/** An arbiter under `wrangler dev` for one test file: started before its tests, stopped after them. */
import { afterAll, beforeAll } from "vitest";
import { type DevServer, startDev } from "../../src/demo/dev-server.js";

export interface TestArbiter {
  readonly url: string;
  readonly adminToken: string;
  /** Stops the arbiter's process as an outage would, keeping its storage; resume() starts it again. */
  halt(): Promise<void>;
  resume(): Promise<void>;
  /** A JSON request with a bearer token (the admin's unless given). */
  request<T>(method: string, path: string, opts?: { body?: unknown; token?: string }): Promise<{ status: number; body: T }>;
}

export function useDevServer(when = true, vars: Record<string, string> = {}): TestArbiter {
  let server: DevServer | null = null;
  beforeAll(async () => {
    if (when) server = await startDev(vars);
  }, 90_000);
  afterAll(async () => {
    await server?.stop();
  });
  const running = () => {
    if (!server) throw new Error("the dev server is not running");
    return server;
  };
  return {
    get url() {
      return running().url;
    },
    get adminToken() {
      return running().adminToken;
    },
    halt: () => running().halt(),
    resume: () => running().resume(),
    async request<T>(method: string, path: string, opts: { body?: unknown; token?: string } = {}) {
      const s = running();
      const res = await fetch(`${s.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${opts.token ?? s.adminToken}`, ...(opts.body !== undefined ? { "content-type": "application/json" } : {}) },
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
    },
  };
}
