import { type OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { PairCreated, PairSpec, PairStatus, PairsPage, PairsQuery } from "../../api/schemas.js";
import { apiError } from "../errors.js";
import { type AppEnv, guard, errorResponse, limitBody, pairStub, reply } from "../http.js";
import { BODY_LIMIT, PairParams, body, bodyErrors, errors, json, pairErrors } from "./common.js";

const put = createRoute({
  method: "put",
  path: "/v1/pairs/{pairId}",
  operationId: "putPair",
  summary: "Create a pair (201, with its agent tokens, shown once) or update its configuration (200)",
  ...guard("admin", limitBody(BODY_LIMIT)),
  request: {
    params: PairParams,
    headers: z.object({ "if-none-match": z.literal("*").optional() }),
    body: body(PairSpec),
  },
  responses: {
    200: json(PairCreated, "updated"),
    201: json(PairCreated, "created, with agentTokens"),
    412: json(PairCreated, "If-None-Match: * and the pair exists"),
    ...errors,
    ...bodyErrors,
    ...pairErrors,
  },
});

const get = createRoute({
  method: "get",
  path: "/v1/pairs/{pairId}",
  operationId: "getPair",
  summary: "The pair's state, nodes, order, last decision and incident (admin, an agent of the pair, or STATUS_TOKEN)",
  ...guard("reader"),
  request: { params: PairParams },
  responses: { 200: json(PairStatus, "the pair"), ...errors, ...pairErrors },
});

const del = createRoute({
  method: "delete",
  path: "/v1/pairs/{pairId}",
  operationId: "deletePair",
  summary: "Delete a pair; its epoch is kept, so a re-created pair continues from it",
  ...guard("admin"),
  request: { params: PairParams, query: z.object({ force: z.enum(["true", "false"]).optional() }) },
  responses: { 204: { description: "deleted" }, ...errors, ...pairErrors },
});

const list = createRoute({
  method: "get",
  path: "/v1/pairs",
  operationId: "listPairs",
  summary: "Pairs, newest first (admin or STATUS_TOKEN)",
  ...guard("admin-or-status"),
  request: { query: PairsQuery },
  responses: { 200: json(PairsPage, "a page of pairs"), ...errors },
});

export function pairRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(put, async (c) => {
    const { pairId } = c.req.valid("param");
    const createOnly = c.req.valid("header")["if-none-match"] === "*";
    const r = await pairStub(c, pairId).put(pairId, c.req.valid("json"), createOnly);
    if (!r.ok) return errorResponse(c, r.error) as never;
    const { created, status, agentTokens } = r.value;
    return c.json({ ...status, ...(agentTokens ? { agentTokens } : {}) }, created ? 201 : 200) as never;
  });

  app.openapi(get, async (c) => reply(c, await pairStub(c, c.req.valid("param").pairId).status(c.get("principal"))) as never);

  app.openapi(del, async (c) => {
    const r = await pairStub(c, c.req.valid("param").pairId).remove(c.req.valid("query").force === "true");
    return (r.ok ? c.body(null, 204) : errorResponse(c, r.error)) as never;
  });

  app.openapi(list, async (c) => {
    const q = c.req.valid("query");
    const page = await c.env.REGISTRY.get(c.env.REGISTRY.idFromName("registry")).list(q.limit, q.cursor);
    return (page ? c.json(page, 200) : errorResponse(c, apiError("invalid_query", "cursor: not a cursor this service gave", ["cursor"]))) as never;
  });
}
