/** The Worker's "zod" (wrangler.toml [alias]): zod's index, over ./external.ts. */
import * as z from "./external.js";

export * from "./external.js";
export { z, z as default };
