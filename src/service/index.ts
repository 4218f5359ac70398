import { Hono } from "hono";
export { PairObject } from "./pair-object.js";
const app = new Hono();
app.get("/healthz", (c) => c.json({ ok: true }));
export default app;
