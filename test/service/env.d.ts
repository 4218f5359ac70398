import type { Env } from "../../src/service/env.js";

declare global {
  namespace Cloudflare {
    interface Env extends import("../../src/service/env.js").Env {}
  }
}
export type { Env };
