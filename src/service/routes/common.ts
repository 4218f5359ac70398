import { z } from "@hono/zod-openapi";
import { ErrorBody, Id } from "../../api/schemas.js";

export const PairParams = z.object({ pairId: Id });

export const json = <T extends z.ZodType>(schema: T, description: string) => ({ content: { "application/json": { schema } }, description });

export const body = <T extends z.ZodType>(schema: T) => ({ content: { "application/json": { schema } }, required: true });

/** Every route may answer these; the codes are in docs/api.md. */
export const errors = {
  401: json(ErrorBody, "no token, or an unknown one"),
  403: json(ErrorBody, "a valid token that is not for this pair or node"),
  422: json(ErrorBody, "valid JSON with invalid values (the field path is given)"),
  503: json(ErrorBody, "ARBITER_ADMIN_TOKEN unset or too short"),
};

export const bodyErrors = {
  400: json(ErrorBody, "malformed JSON"),
  413: json(ErrorBody, "body too large"),
  415: json(ErrorBody, "not application/json"),
};

export const pairErrors = { 404: json(ErrorBody, "no such pair (admin only)"), 409: json(ErrorBody, "the rule that forbids it now") };

/** A beat is small; everything else may carry more (sinks, reasons). */
export const BEAT_BODY_LIMIT = 16 * 1024;
export const BODY_LIMIT = 64 * 1024;
