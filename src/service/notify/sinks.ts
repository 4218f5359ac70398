/** Pager sinks as stored: with their secrets, which only ever leave redacted. */
import { webhookKey } from "./sign.js";
import type { SinkSpecBody } from "../../api/schemas.js";

export const PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue";

export type Sink =
  | { id: string; type: "pagerduty"; url: string; routingKey: string }
  | { id: string; type: "slack"; url: string }
  | { id: string; type: "webhook"; url: string; secret: string };

export type SinkError = { field: string; message: string };

const REDACTED = "[redacted]";

/**
 * A PUT's list replaces the stored one; a sink given without its secret keeps the stored one of the
 * same type and URL. Plain http is refused unless insecure sinks are allowed (npm run dev).
 */
export function resolveSinks(specs: SinkSpecBody[], stored: Sink[], allowInsecure: boolean): Sink[] | SinkError {
  const out: Sink[] = [];
  for (const [i, s] of specs.entries()) {
    const url = s.type === "pagerduty" ? (s.url ?? PAGERDUTY_EVENTS_URL) : s.url;
    const refused = refusedUrl(url, allowInsecure);
    if (refused) return { field: `sinks.${i}.url`, message: refused };
    const same = stored.find((x) => x.type === s.type && x.url === url);
    const id = `${s.type}-${i}`;
    if (s.type === "pagerduty") {
      const routingKey = s.routingKey ?? (same?.type === "pagerduty" ? same.routingKey : undefined);
      if (!routingKey) return { field: `sinks.${i}.routingKey`, message: "a new pagerduty sink needs its routingKey" };
      out.push({ id, type: "pagerduty", url, routingKey });
    } else if (s.type === "slack") {
      out.push({ id, type: "slack", url });
    } else {
      const secret = s.secret ?? (same?.type === "webhook" ? same.secret : undefined);
      if (!secret) return { field: `sinks.${i}.secret`, message: "a new webhook sink needs its secret (whsec_<base64>)" };
      if (!webhookKey(secret)) return { field: `sinks.${i}.secret`, message: "the secret must be whsec_ and base64 of at least 24 bytes (Standard Webhooks)" };
      out.push({ id, type: "webhook", url, secret });
    }
  }
  return out;
}

/** What GET and logs may show of a sink. */
export function redact(s: Sink): { id: string; type: string; url: string } {
  return { id: s.id, type: s.type, url: s.type === "slack" ? REDACTED : s.url };
}

/** Insecure sinks (plain http, local hosts) only for local development: ALLOW_INSECURE_SINKS 1 or true. */
export function insecureSinksAllowed(v: string | undefined): boolean {
  return v === "1" || v === "true";
}

/**
 * A sink must be https to a public host: loopback, private, link-local and metadata addresses are
 * refused (the arbiter must not be made to call into its own network). Insecure mode allows http
 * and any host, never another scheme.
 */
function refusedUrl(url: string, allowInsecure: boolean): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "not a URL";
  }
  if (u.protocol !== "https:" && !(allowInsecure && u.protocol === "http:")) return allowInsecure ? "sinks use http or https" : "sinks must use https (ALLOW_INSECURE_SINKS is unset)";
  if (!allowInsecure && localHost(u.hostname)) return `${u.hostname} is a loopback, private, link-local or metadata address`;
  return null;
}

function localHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost") || h === "0.0.0.0") return true;
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(h);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 127 || a === 10 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
  }
  if (h.includes(":")) return h === "::1" || h === "::" || /^f[cd]/.test(h) || /^fe[89ab]/.test(h) || h.startsWith("::ffff:");
  return false;
}
