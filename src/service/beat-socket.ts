/**
 * The push channel's wire rules, apart from the object that holds the sockets: a beat message is
 * exactly the HTTP beat's body, checked with the same limits and schema, and answered with the
 * same reply or error envelope (plus the beat's seq where it could be read, so the agent can match
 * an error to its beat).
 */
import { Heartbeat, type HeartbeatBody } from "../api/schemas.js";
import { type Result, apiError, invalidAt, ok } from "./errors.js";
import { BEAT_BODY_LIMIT } from "./routes/common.js";

/** What a socket remembers across hibernation: whose it is and which token hash opened it. */
export interface SocketTag {
  nodeId: string;
  tokenHash: string;
  /** When this socket last carried an accepted beat: the status shows it after the object wakes. */
  lastBeatAt?: number;
}

export function isSocketTag(v: unknown): v is SocketTag {
  return typeof v === "object" && v !== null && typeof (v as SocketTag).nodeId === "string" && typeof (v as SocketTag).tokenHash === "string";
}

export type SocketBeat = { seq: number | null } & Result<HeartbeatBody>;

export function parseBeatMessage(message: string | ArrayBuffer): SocketBeat {
  if (typeof message !== "string") return { seq: null, ok: false, error: apiError("unsupported_media_type", "send beats as text frames of JSON") };
  if (new TextEncoder().encode(message).byteLength > BEAT_BODY_LIMIT) return { seq: null, ok: false, error: apiError("body_too_large", `the body is over ${BEAT_BODY_LIMIT} bytes`) };
  let raw: unknown;
  try {
    raw = JSON.parse(message);
  } catch {
    return { seq: null, ok: false, error: apiError("malformed_json", "the body is not valid JSON") };
  }
  const seq = typeof raw === "object" && raw !== null && Number.isSafeInteger((raw as { seq?: unknown }).seq) ? ((raw as { seq: number }).seq) : null;
  const parsed = Heartbeat.safeParse(raw);
  if (!parsed.success) return { seq, ok: false, error: invalidAt("invalid_body", parsed.error.issues) };
  return { seq, ...ok(parsed.data) };
}

/**
 * A close code a server may send back: the runtime reports 1005/1006/1015 for closes that carried
 * none or broke, and those may not be sent.
 */
export function echoableCloseCode(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) || (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ? code : 1000;
}
