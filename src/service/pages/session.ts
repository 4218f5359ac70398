/**
 * The status pages' session: a short-lived, read-only cookie that is no API credential. It is
 * `v1.<scope>.<expiry>.<mac>`, an HMAC-SHA256 over scope and expiry keyed by a key derived from
 * the admin token, so changing that token ends every session. Pure but for Web Crypto.
 */
import { isConfigured, toHex } from "../tokens.js";

export const SESSION_MS = 12 * 3600 * 1000;
export type SessionScope = "admin" | "status";

async function key(adminToken: string): Promise<CryptoKey> {
  const raw = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`colo-arbiter page session\0${adminToken}`)));
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

async function mac(adminToken: string, payload: string): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.sign("HMAC", await key(adminToken), new TextEncoder().encode(payload))));
}

/** A session for who logged in with which token; null when no admin token is configured to key it. */
export async function issueSession(adminToken: string | undefined, scope: SessionScope, now: number): Promise<string | null> {
  if (!isConfigured(adminToken)) return null;
  const payload = `v1.${scope}.${now + SESSION_MS}`;
  return `${payload}.${await mac(adminToken!, payload)}`;
}

/** Whether a cookie is a session this arbiter issued and that has not expired. */
export async function validSession(adminToken: string | undefined, cookie: string | undefined, now: number): Promise<boolean> {
  if (!cookie || !isConfigured(adminToken)) return false;
  const m = /^(v1\.(admin|status)\.(\d{1,16}))\.([0-9a-f]{64})$/.exec(cookie);
  if (!m || Number(m[3]) < now) return false;
  const expected = await mac(adminToken!, m[1]!);
  // Constant-time comparison of equal-length hex strings.
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ m[4]!.charCodeAt(i);
  return diff === 0;
}
