import type { PairObject } from "./pair-object.js";
import type { RegistryObject } from "./registry-object.js";

export interface Env {
  PAIRS: DurableObjectNamespace<PairObject>;
  REGISTRY: DurableObjectNamespace<RegistryObject>;
  /** Secret (wrangler secret put): admin routes fail closed while it is unset or short. */
  ARBITER_ADMIN_TOKEN?: string;
  /** Only in tests: lets a test move the Durable Object's clock. */
  TEST_CLOCK?: string;
}
