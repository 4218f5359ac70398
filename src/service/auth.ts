/**
 * Who is calling: the admin (ARBITER_ADMIN_TOKEN), or one node's agent (its token names its pair
 * and node). Check order: 401 no or unknown token, then 403 a valid token not for this route.
 */
import { type ApiError, apiError } from "./errors.js";
import { agentTokenTagValid, configuredSecretMatches, isConfigured, parseAgentToken } from "./tokens.js";

export type Principal =
  | { kind: "admin" }
  | { kind: "agent"; pairId: string; nodeId: string; secret: string }
  /** A read-only token for monitors: STATUS_TOKEN (health, status, events, the pairs list) or METRICS_TOKEN (metrics). */
  | { kind: "reader"; scope: ReaderScope };

export type ReaderScope = "status" | "metrics";

/** Who may call a route. "reader": the admin, an agent of the pair, or the read-only status token. */
export type Audience = "admin" | "agent" | "admin-or-agent" | "admin-or-status" | "admin-or-metrics" | "reader";

/** The configured secrets; each fails closed while unset or shorter than 32 characters. */
export interface Secrets {
  admin: string | undefined;
  status: string | undefined;
  metrics: string | undefined;
  /** With `agentTagRequired`, an agent token must carry a tag that verifies under this key. */
  agentTagKey?: string | undefined;
  agentTagRequired?: boolean;
}

export function bearer(header: string | undefined): string | null {
  const m = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return m?.[1] ?? null;
}

/**
 * The caller, as far as the Worker can tell without the pair's object: an agent token is checked
 * against its stored hash by that object; the admin token is checked here. An unset or short admin
 * secret fails closed: it never matches, not even an empty bearer.
 */
export async function identify(header: string | undefined, audience: Audience, secrets: Secrets): Promise<Principal | ApiError> {
  const token = bearer(header);
  if (!token) return apiError("missing_token", "an Authorization: Bearer token is required");
  const agent = parseAgentToken(token);
  if (agent) {
    // A forged token is refused here, before any pair's object is woken for it. Required without a
    // key is not enforced: refusing every agent would stop the pairs it guards (docs/security.md).
    if (secrets.agentTagRequired && isConfigured(secrets.agentTagKey) && !(await agentTokenTagValid(agent, secrets.agentTagKey!))) {
      return apiError("unknown_token", "unknown token");
    }
    return { kind: "agent", ...agent };
  }
  if (audience === "agent") return apiError("unknown_token", "unknown token");
  const scope: ReaderScope | null = audience === "admin-or-status" || audience === "reader" ? "status" : audience === "admin-or-metrics" ? "metrics" : null;
  if (scope && (await configuredSecretMatches(token, secrets[scope]))) return { kind: "reader", scope };
  if (!isConfigured(secrets.admin)) {
    if (scope && isConfigured(secrets[scope])) return apiError("unknown_token", "unknown token");
    return apiError("admin_token_unset", "ARBITER_ADMIN_TOKEN is unset or shorter than 32 characters");
  }
  if (!(await configuredSecretMatches(token, secrets.admin))) return apiError("unknown_token", "unknown token");
  return { kind: "admin" };
}

/** Whether an identified caller may use a route about `pairId` (undefined for routes about no pair). */
export function admits(p: Principal, audience: Audience, pairId: string | undefined): boolean {
  if (p.kind === "admin") return audience !== "agent";
  if (p.kind === "reader") return audience === `admin-or-${p.scope}` || (audience === "reader" && p.scope === "status");
  return (audience === "agent" || audience === "admin-or-agent" || audience === "reader") && pairId !== undefined && p.pairId === pairId;
}
