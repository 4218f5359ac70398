/**
 * Bearer tokens. Agent tokens name their pair and node in clear ("<pairId>~<nodeId>~<secret>", with
 * "~" because ids may contain dots) and carry 32 random bytes; the pair's object keeps only a hash.
 */
import { ID_PATTERN } from "../api/schemas.js";

/** An admin or status token shorter than this counts as unset: fail closed. */
export const MIN_SECRET_LENGTH = 32;

export interface AgentToken {
  pairId: string;
  nodeId: string;
  secret: string;
}

export function parseAgentToken(token: string): AgentToken | null {
  const parts = token.split("~");
  if (parts.length !== 3) return null;
  const [pairId, nodeId, secret] = parts as [string, string, string];
  if (!ID_PATTERN.test(pairId) || !ID_PATTERN.test(nodeId) || !/^[A-Za-z0-9_-]{43}$/.test(secret)) return null;
  return { pairId, nodeId, secret };
}

/**
 * A new agent token: 32 bytes. With a tag key they are 16 random bytes and the first 16 of an
 * HMAC-SHA256 over pair, node and those bytes, so the Worker can refuse a forged token before it
 * wakes any object; without one, 32 random bytes (the tag check then cannot be required).
 */
export async function newAgentToken(pairId: string, nodeId: string, tagKey?: string): Promise<AgentToken & { token: string }> {
  const nonce = crypto.getRandomValues(new Uint8Array(isConfigured(tagKey) ? 16 : 32));
  const bytes = isConfigured(tagKey) ? concat(nonce, await tagOf(tagKey!, pairId, nodeId, nonce)) : nonce;
  const secret = base64url(bytes);
  return { pairId, nodeId, secret, token: `${pairId}~${nodeId}~${secret}` };
}

/** Whether a token's tag verifies under the key (constant time); false for an untagged or altered token. */
export async function agentTokenTagValid(t: AgentToken, tagKey: string): Promise<boolean> {
  const bytes = fromBase64url(t.secret);
  if (!bytes || bytes.length !== 32) return false;
  const expected = await tagOf(tagKey, t.pairId, t.nodeId, bytes.slice(0, 16));
  return crypto.subtle.timingSafeEqual(expected, bytes.slice(16));
}

async function tagOf(key: string, pairId: string, nodeId: string, nonce: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey("raw", new TextEncoder().encode(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const msg = concat(new TextEncoder().encode(`colo-arbiter agent token v1\n${pairId}\n${nodeId}\n`), nonce);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, msg)).slice(0, 16);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function fromBase64url(s: string): Uint8Array | null {
  try {
    const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Compares a presented secret with a stored hash in constant time (hashing first equalises lengths). */
export async function secretMatches(secret: string, storedHex: string | null): Promise<boolean> {
  if (!storedHex) return false;
  const presented = await sha256(secret);
  const stored = fromHex(storedHex);
  return stored.length === presented.length && crypto.subtle.timingSafeEqual(presented, stored);
}

/** A configured secret (admin, status, metrics): unset or short never matches anything. */
export async function configuredSecretMatches(presented: string, configured: string | undefined): Promise<boolean> {
  if (!configured || configured.length < MIN_SECRET_LENGTH) return false;
  const [a, b] = await Promise.all([sha256(presented), sha256(configured)]);
  return crypto.subtle.timingSafeEqual(a, b);
}

export function isConfigured(secret: string | undefined): boolean {
  return !!secret && secret.length >= MIN_SECRET_LENGTH;
}

function base64url(b: Uint8Array): string {
  return btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromHex(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}
