import { type OpenAPIHono, createRoute } from "@hono/zod-openapi";
import { EventsPage, EventsQuery } from "../../api/schemas.js";
import { type AppEnv, guard, pairStub, reply } from "../http.js";
import { PairParams, errors, json, pairErrors } from "./common.js";

const route = createRoute({
  method: "get",
  path: "/v1/pairs/{pairId}/events",
  operationId: "listEvents",
  summary: "The pair's event log, newest first: decisions, orders, acknowledgements, state changes, operator actions",
  ...guard("reader"),
  request: { params: PairParams, query: EventsQuery },
  responses: { 200: json(EventsPage, "a page of events; `next` is the `before` of the next page"), ...errors, ...pairErrors },
});

export function eventRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(route, async (c) => {
    const q = c.req.valid("query");
    return reply(c, await pairStub(c, c.req.valid("param").pairId).events(c.get("principal"), q.limit, q.before, q.after)) as never;
  });
}
