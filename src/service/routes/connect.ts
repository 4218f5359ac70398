import type { OpenAPIHono } from "@hono/zod-openapi";
import { apiError } from "../errors.js";
import { type AppEnv, authenticate, errorResponse, pairStub } from "../http.js";

/**
 * GET /v1/pairs/:pairId/connect: a node's agent opens its push channel, a WebSocket (docs/api.md,
 * "The push channel"; OpenAPI has no words for it). The Worker checks the token's shape and pair;
 * the pair's object checks its secret before it accepts the socket.
 */
export function connectRoutes(app: OpenAPIHono<AppEnv>) {
  app.get("/v1/pairs/:pairId/connect", authenticate("agent"), async (c) => {
    const p = c.get("principal");
    if (p.kind !== "agent") return errorResponse(c, apiError("forbidden", "only a node's agent connects"));
    // Forwarded as is: the object accepts through the Hibernation API (Hono's upgrade helper would keep it awake).
    return pairStub(c, p.pairId).fetch(c.req.raw);
  });
}
