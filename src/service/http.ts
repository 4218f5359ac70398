/**
 * The pieces every route shares: the app's type, the error envelope, authentication as middleware,
 * and the pre-check that keeps the error order (401/404 before 413/400/422).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { type Audience, type Principal, admits, identify } from "./auth.js";
import type { Env } from "./env.js";
import { type ApiError, type Result, apiError, errorBody, invalidAt } from "./errors.js";

export type AppEnv = { Bindings: Env; Variables: { principal: Principal; pairId: string | undefined } };
export type Ctx = Context<AppEnv>;

export function errorResponse(c: Context, e: ApiError) {
  return c.json(errorBody(e), e.status);
}

/** A pair's object; LOCATION_HINT (e.g. "weur") places new objects near the pairs' hosts. */
export function pairStub(c: Ctx, pairId: string) {
  const hint = c.env.LOCATION_HINT as DurableObjectLocationHint | undefined;
  return c.env.PAIRS.get(c.env.PAIRS.idFromName(pairId), hint ? { locationHint: hint } : undefined);
}

/** Answers a Durable Object's Result: its value with `status`, or its error. */
export function reply<T>(c: Ctx, r: Result<T>, status: 200 | 201 | 202 = 200) {
  return r.ok ? c.json(r.value as object, status) : errorResponse(c, r.error);
}

/**
 * The error a request would get from authentication alone, asked of the pair's object: a wrong
 * agent secret (401) or, for the admin, a missing pair (404). Used when a later check failed, so
 * that those earlier checks still win.
 */
export async function precheck(c: Ctx): Promise<ApiError | null> {
  const p = c.get("principal");
  const pairId = c.get("pairId");
  if (!p) return null;
  if (p.kind === "agent") {
    const r = await pairStub(c, p.pairId).authorize(p);
    return r.ok ? null : r.error;
  }
  if (!pairId || c.req.method === "PUT") return null;
  const r = await pairStub(c, pairId).authorize(p.kind === "reader" ? { kind: "admin" } : p);
  return r.ok ? null : r.error;
}

/** Authenticates the caller for a route's audience; an agent token on a route not its own is 403 once proven valid. */
export function authenticate(audience: Audience): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const pairId = c.req.param("pairId");
    const secrets = {
      admin: c.env.ARBITER_ADMIN_TOKEN,
      status: c.env.STATUS_TOKEN,
      metrics: c.env.METRICS_TOKEN,
      agentTagKey: c.env.AGENT_TOKEN_KEY,
      agentTagRequired: c.env.AGENT_TOKEN_CHECK === "required",
    };
    const p = await identify(c.req.header("authorization"), audience, secrets);
    if ("code" in p) return errorResponse(c, p);
    c.set("principal", p);
    c.set("pairId", pairId);
    if (!admits(p, audience, pairId)) {
      // Prove an agent token before telling it "forbidden"; never ask another pair's object about it.
      const pre = p.kind === "agent" ? await precheck(c) : null;
      return errorResponse(c, pre ?? apiError("forbidden", "this token is not for this route"));
    }
    await next();
  };
}

/** The bearer schemes of the OpenAPI document, one per kind of token (docs/api.md, "Authentication"). */
export const SECURITY_SCHEMES = {
  adminToken: "ARBITER_ADMIN_TOKEN: every route",
  agentToken: "a node's agent token, <pairId>~<nodeId>~<secret>: its own pair's beats, channel, status and events",
  statusToken: "STATUS_TOKEN: read-only, the pairs list, status, health and events",
  metricsToken: "METRICS_TOKEN: read-only, /metrics",
} as const;

type Scheme = keyof typeof SECURITY_SCHEMES;
const WHO: Record<Audience, Scheme[]> = {
  admin: ["adminToken"],
  agent: ["agentToken"],
  "admin-or-agent": ["adminToken", "agentToken"],
  "admin-or-status": ["adminToken", "statusToken"],
  "admin-or-metrics": ["adminToken", "metricsToken"],
  reader: ["adminToken", "agentToken", "statusToken"],
};

/**
 * A route's authentication as one value: the middleware that enforces it and the OpenAPI
 * `security` that declares it, from the same audience, so the document cannot drift from the code.
 */
export function guard<M extends MiddlewareHandler<AppEnv>[]>(audience: Audience, ...more: M) {
  return {
    middleware: [authenticate(audience), ...more] as [MiddlewareHandler<AppEnv>, ...M],
    security: WHO[audience].map((s) => ({ [s]: [] as string[] })),
  };
}

/** 413 over `maxBytes`, after the pre-check. */
export function limitBody(maxBytes: number): MiddlewareHandler<AppEnv> {
  return bodyLimit({
    maxSize: maxBytes,
    onError: async (c) => errorResponse(c, (await precheck(c as Ctx)) ?? apiError("body_too_large", `the body is over ${maxBytes} bytes`)),
  });
}

export function newApp() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: async (result, c) => {
      if (result.success) return;
      const ctx = c as unknown as Ctx;
      const pre = await precheck(ctx);
      if (pre) return errorResponse(ctx, pre);
      const code = result.target === "query" || result.target === "param" ? "invalid_query" : "invalid_body";
      return errorResponse(ctx, invalidAt(code, result.error.issues));
    },
  });
}
