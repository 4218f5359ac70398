import { type OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { FailoverRequest, Id, MaintenanceRequest, Order, PairStatus, ResolveRequest } from "../../api/schemas.js";
import { type AppEnv, guard, limitBody, pairStub, reply } from "../http.js";
import { BODY_LIMIT, PairParams, body, bodyErrors, errors, json, pairErrors } from "./common.js";

const Operated = z.object({ issued: z.array(Order), status: PairStatus }).openapi("Operated");

const failover = createRoute({
  method: "post",
  path: "/v1/pairs/{pairId}/failover",
  operationId: "failOver",
  summary: "Order a node to serve (a switchover); the other node is fenced first. 409 names the rule that forbids it now",
  ...guard("admin", limitBody(BODY_LIMIT)),
  request: { params: PairParams, body: body(FailoverRequest) },
  responses: { 202: json(Operated, "the orders issued, and the pair"), ...errors, ...bodyErrors, ...pairErrors },
});

const maintenance = createRoute({
  method: "post",
  path: "/v1/pairs/{pairId}/maintenance",
  operationId: "setMaintenance",
  summary: "Freeze or unfreeze automatic decisions (leases are still granted)",
  ...guard("admin", limitBody(BODY_LIMIT)),
  request: { params: PairParams, body: body(MaintenanceRequest) },
  responses: { 200: json(Operated, "the pair"), ...errors, ...bodyErrors, ...pairErrors },
});

const resolve = createRoute({
  method: "post",
  path: "/v1/pairs/{pairId}/resolve",
  operationId: "resolve",
  summary: "Clear needs_operator once an operator has checked which node serves",
  ...guard("admin", limitBody(BODY_LIMIT)),
  request: { params: PairParams, body: body(ResolveRequest) },
  responses: { 200: json(Operated, "the pair"), ...errors, ...bodyErrors, ...pairErrors },
});

const reprotect = createRoute({
  method: "post",
  path: "/v1/pairs/{pairId}/reprotect",
  operationId: "reprotect",
  summary: "Rebuild the replaced node as the new secondary now (autoReprotect off, or after a failed resync); it must run an -incoming QEMU",
  ...guard("admin"),
  request: { params: PairParams },
  responses: { 202: json(Operated, "the orders issued, and the pair"), ...errors, ...pairErrors },
});

const rotate = createRoute({
  method: "post",
  path: "/v1/pairs/{pairId}/nodes/{nodeId}/token",
  operationId: "rotateAgentToken",
  summary: "Rotate a node's agent token; the old one works until the first beat with the new one, for at most 24 h; ?revoke=true stops it at once",
  ...guard("admin"),
  request: { params: PairParams.extend({ nodeId: Id }), query: z.object({ revoke: z.enum(["true", "false"]).optional() }) },
  responses: { 200: json(z.object({ token: z.string(), previousValidUntil: z.number().nullable() }), "the new token (shown once), and until when the old one may still work"), ...errors, ...pairErrors },
});

export function operatorRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(failover, async (c) => {
    const b = c.req.valid("json");
    const event = { type: "failover", target: b.target, reason: b.reason ?? "operator failover", actor: "admin" } as const;
    return reply(c, await pairStub(c, c.req.valid("param").pairId).operate(event), 202) as never;
  });

  app.openapi(maintenance, async (c) => {
    const b = c.req.valid("json");
    const event = { type: "maintenance", enabled: b.enabled, reason: b.reason ?? null, actor: "admin" } as const;
    return reply(c, await pairStub(c, c.req.valid("param").pairId).operate(event)) as never;
  });

  app.openapi(resolve, async (c) => {
    const b = c.req.valid("json");
    const event = { type: "resolve", servingNode: b.servingNode, reason: b.reason, actor: "admin" } as const;
    return reply(c, await pairStub(c, c.req.valid("param").pairId).operate(event)) as never;
  });

  app.openapi(reprotect, async (c) => {
    return reply(c, await pairStub(c, c.req.valid("param").pairId).operate({ type: "reprotect", actor: "admin" }), 202) as never;
  });

  app.openapi(rotate, async (c) => {
    const { pairId, nodeId } = c.req.valid("param");
    return reply(c, await pairStub(c, pairId).rotateToken(nodeId, c.req.valid("query").revoke === "true")) as never;
  });
}
