import { createRoute } from "@hono/zod-openapi";
import { Heartbeat, HeartbeatReply } from "../../api/schemas.js";
import { apiError } from "../errors.js";
import { type AppEnv, guard, errorResponse, limitBody, pairStub, precheck, reply } from "../http.js";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { BEAT_BODY_LIMIT, PairParams, body, bodyErrors, errors, json } from "./common.js";

const route = createRoute({
  method: "post",
  path: "/v1/pairs/{pairId}/heartbeat",
  operationId: "heartbeat",
  summary: "A node's agent reports what QEMU says; the answer carries its lease and any order",
  ...guard("agent", limitBody(BEAT_BODY_LIMIT)),
  request: { params: PairParams, body: body(Heartbeat) },
  responses: { 200: json(HeartbeatReply, "the lease, the effective config and the order, if any"), ...errors, ...bodyErrors },
});

export function heartbeatRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(route, async (c) => {
    const p = c.get("principal");
    const beat = c.req.valid("json");
    if (p.kind !== "agent") return errorResponse(c, apiError("forbidden", "only a node's agent beats")) as never;
    if (beat.nodeId !== p.nodeId) {
      return errorResponse(c, (await precheck(c)) ?? apiError("node_mismatch", `the token is for node ${p.nodeId}, the beat for ${beat.nodeId}`)) as never;
    }
    return reply(c, await pairStub(c, p.pairId).heartbeat(p.secret, beat)) as never;
  });
}
