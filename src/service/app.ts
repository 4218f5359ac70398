/** The Hono app: it only authenticates, validates and routes; the pair's object does the rest. */
import { HTTPException } from "hono/http-exception";
import { apiError } from "./errors.js";
import { type Ctx, SECURITY_SCHEMES, errorResponse, newApp, pairStub, precheck } from "./http.js";
import { eventRoutes } from "./routes/events.js";
import { countRequests } from "./metrics/requests.js";
import { healthRoutes } from "./routes/health.js";
import { pageRoutes } from "./pages/pages.js";
import { metricsRoutes } from "./routes/metrics.js";
import { heartbeatRoutes } from "./routes/heartbeat.js";
import { connectRoutes } from "./routes/connect.js";
import { operatorRoutes } from "./routes/operator.js";
import { pairRoutes } from "./routes/pairs.js";

export const app = newApp();
app.use(countRequests());

app.get("/healthz", (c) => c.json({ ok: true }));

// The benchmark's floor (npm run bench): off unless BENCH_FLOOR is set, so it never wakes objects in production.
app.get("/bench/floor/:pairId", async (c) => {
  if (!c.env.BENCH_FLOOR) return errorResponse(c, apiError("route_not_found", "no route"));
  return c.json({ ok: await pairStub(c as unknown as Ctx, c.req.param("pairId")).ping() });
});
// Its WebSocket twin: a socket on the pair's object that echoes, for the push channel's floor.
app.get("/bench/echo/:pairId", async (c) => {
  if (!c.env.BENCH_FLOOR) return errorResponse(c, apiError("route_not_found", "no route"));
  return pairStub(c as unknown as Ctx, c.req.param("pairId")).fetch(c.req.raw);
});
heartbeatRoutes(app);
connectRoutes(app);
pairRoutes(app);
operatorRoutes(app);
eventRoutes(app);
healthRoutes(app);
metricsRoutes(app);

for (const [name, description] of Object.entries(SECURITY_SCHEMES)) app.openAPIRegistry.registerComponent("securitySchemes", name, { type: "http", scheme: "bearer", description });
const OPENAPI = { openapi: "3.1.0" as const, info: { title: "colo-arbiter", version: "1" }, servers: [{ url: "/", description: "this arbiter" }] };
app.doc31("/openapi.json", OPENAPI);
pageRoutes(app as never, () => app.getOpenAPI31Document(OPENAPI) as never);

app.notFound((c) => errorResponse(c, apiError("route_not_found", `no route ${c.req.method} ${c.req.path}`)));

app.onError(async (err, c) => {
  const ctx = c as unknown as Ctx;
  if (err instanceof HTTPException && (err.status === 400 || err.status === 415)) {
    const pre = await precheck(ctx);
    if (pre) return errorResponse(ctx, pre);
    return errorResponse(
      ctx,
      err.status === 400 ? apiError("malformed_json", "the body is not valid JSON") : apiError("unsupported_media_type", "send Content-Type: application/json"),
    );
  }
  console.error(JSON.stringify({ msg: "unhandled error", error: String(err), stack: err instanceof Error ? err.stack : undefined }));
  return errorResponse(ctx, apiError("internal", "internal error"));
});
