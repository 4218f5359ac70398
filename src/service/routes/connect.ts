import { createRoute } from "@hono/zod-openapi";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { apiError } from "../errors.js";
import { type AppEnv, authenticate, errorResponse, pairStub } from "../http.js";
import { PairParams, errors } from "./common.js";

const route = createRoute({
  method: "get",
  path: "/v1/pairs/{pairId}/connect",
  summary:
    "A node's agent opens its push channel: beats as text messages (the heartbeat's body, answered with its reply), and the node's view pushed the moment a decision changes it",
  middleware: [authenticate("agent")] as const,
  request: { params: PairParams },
  responses: { 101: { description: "switching to a WebSocket" }, 426: { description: "not a WebSocket upgrade" }, ...errors },
});

/** The Worker checks the token's shape and pair; the pair's object checks its secret before it accepts the socket. */
export function connectRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(route, async (c) => {
    const p = c.get("principal");
    if (p.kind !== "agent") return errorResponse(c, apiError("forbidden", "only a node's agent connects")) as never;
    // Forwarded as is: the object accepts through the Hibernation API (Hono's upgrade helper would keep it awake).
    return pairStub(c, p.pairId).fetch(c.req.raw) as never;
  });
}
