import { type OpenAPIHono, createRoute } from "@hono/zod-openapi";
import { HealthBody } from "../../api/schemas.js";
import { type AppEnv, guard, errorResponse, pairStub } from "../http.js";
import { PairParams, errors, json, pairErrors } from "./common.js";

const route = createRoute({
  method: "get",
  path: "/v1/pairs/{pairId}/health",
  operationId: "getHealth",
  summary: "A protection check for monitors: 200 when protected, 503 otherwise (admin or STATUS_TOKEN)",
  ...guard("admin-or-status"),
  request: { params: PairParams },
  responses: { ...errors, ...pairErrors, 200: json(HealthBody, "protected"), 503: json(HealthBody, "not protected (or a token secret unset)") },
});

export function healthRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(route, async (c) => {
    const r = await pairStub(c, c.req.valid("param").pairId).health();
    if (!r.ok) return errorResponse(c, r.error) as never;
    return c.json(r.value, r.value.protected ? 200 : 503) as never;
  });
}
