/** Requests this Worker isolate has answered, by route and status (each isolate counts its own). */
import type { MiddlewareHandler } from "hono";

const counts = new Map<string, number>();

export function countRequests(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const key = `${c.req.method} ${c.req.routePath}\u0000${c.res.status}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  };
}

export function requestCounts(): { route: string; status: string; count: number }[] {
  return [...counts.entries()].map(([k, count]) => {
    const [route, status] = k.split("\u0000") as [string, string];
    return { route, status, count };
  });
}
