/** Errors are values with a status and a stable snake_case code (docs/api.md lists them). */
export const ERROR_CODES = {
  missing_token: 401,
  unknown_token: 401,
  forbidden: 403,
  node_mismatch: 403,
  pair_not_found: 404,
  route_not_found: 404,
  nodes_immutable: 409,
  lease_held: 409,
  order_unresolved: 409,
  needs_operator: 409,
  target_not_fresh: 409,
  target_sick: 409,
  already_serving: 409,
  unguarded_silent_node: 409,
  not_needed: 409,
  maintenance: 409,
  nothing_to_reprotect: 409,
  no_incoming_secondary: 409,
  pair_exists: 412,
  rate_limited: 429,
  body_too_large: 413,
  upgrade_required: 426,
  unsupported_media_type: 415,
  malformed_json: 400,
  invalid_body: 422,
  invalid_query: 422,
  unknown_node: 422,
  timing_rule: 422,
  admin_token_unset: 503,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ApiError {
  status: (typeof ERROR_CODES)[ErrorCode];
  code: ErrorCode;
  message: string;
  path?: (string | number)[];
}

export function apiError(code: ErrorCode, message: string, path?: (string | number)[]): ApiError {
  return { status: ERROR_CODES[code], code, message, ...(path ? { path } : {}) };
}

/** The envelope every error is sent in, over HTTP and on a WebSocket. */
export function errorBody(e: ApiError) {
  return { error: { code: e.code, message: e.message, ...(e.path ? { path: e.path } : {}) } };
}

/** A schema's first complaint as the API states it: the field path and the message. */
export function invalidAt(code: "invalid_body" | "invalid_query", issues: readonly { path: readonly PropertyKey[]; message: string }[]): ApiError {
  const issue = issues[0];
  const path = issue?.path.map((x) => (typeof x === "symbol" ? String(x) : x)) ?? [];
  return apiError(code, `${path.join(".") || "(body)"}: ${issue?.message ?? "invalid"}`, path as (string | number)[]);
}

/** What a Durable Object method answers: a value, or an error to send as is. */
export type Result<T> = { ok: true; value: T } | { ok: false; error: ApiError };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = (code: ErrorCode, message: string): Result<never> => ({ ok: false, error: apiError(code, message) });
