import type { PairObject } from "./pair-object.js";
import type { RegistryObject } from "./registry-object.js";

export interface Env {
  PAIRS: DurableObjectNamespace<PairObject>;
  REGISTRY: DurableObjectNamespace<RegistryObject>;
  /** Secret (wrangler secret put): admin routes fail closed while it is unset or short. */
  ARBITER_ADMIN_TOKEN?: string;
  /** Read-only token for GET /v1/pairs/:pairId/health (fails closed while unset or short). */
  STATUS_TOKEN?: string;
  /** Read-only token for GET /metrics (fails closed while unset or short). */
  METRICS_TOKEN?: string;
  /**
   * Secret: agent tokens issued while it is set carry a tag (an HMAC over pair, node and nonce)
   * that the Worker can check without waking the pair's object.
   */
  AGENT_TOKEN_KEY?: string;
  /** "required": the Worker refuses an agent token whose tag does not verify (set it once every token is tagged). */
  AGENT_TOKEN_CHECK?: string;
  /** Any non-empty value lets sinks use plain http (npm run dev sets it; a deploy never should). */
  ALLOW_INSECURE_SINKS?: string;
  /** The base of the links in pager messages, e.g. https://arbiter.example.com. */
  PUBLIC_BASE_URL?: string;
  /** Where new pair objects are placed (a Durable Object location hint such as "weur"). */
  LOCATION_HINT?: string;
  /** Only for `npm run bench`: enables GET /bench/floor/:pairId, one bare Durable Object round trip. */
  BENCH_FLOOR?: string;
  /** "off" only for `npm run bench`, which hammers one node's beats on purpose. */
  BEAT_RATE_LIMIT?: string;
  /** How long one delivery attempt may take (default 10 s). */
  SINK_TIMEOUT_MS?: string;
  /** Only in tests: lets a test move the Durable Object's clock. */
  TEST_CLOCK?: string;
}
