/**
 * The agent's settings: from flags, or a JSON file (--config) with the same settings plus the
 * runbook ids; flags override the file. Errors name the field (and the file).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { z } from "zod";
import { Id } from "../api/schemas.js";
import { type QmpAddress, parseQmpAddress } from "./qmp/client.js";
import { type ColoSettings, DEFAULT_COLO } from "./reprotect.js";
import { DEFAULT_IDS, type RunbookIds } from "./runbooks.js";

const Port = z.number().int().min(1).max(65_535);

const Settings = z
  .object({
    arbiter: z.url(),
    pair: Id,
    node: Id,
    tokenFile: z.string().min(1),
    qmp: z.string().refine((s) => parseQmpAddress(s) !== null, "unix:/path or tcp:host:port"),
    pidfile: z.string().min(1),
    watchdog: z.string().min(1).optional(),
    watchdogKeeper: z.string().min(1).optional(),
    allowInsecureArbiter: z.boolean().optional(),
    /** Beat over HTTP only, with no push channel (a proxy that does not pass WebSockets). */
    httpOnly: z.boolean().optional(),
    nbdNode: z.string().min(1).optional(),
    stateDir: z.string().min(1).default("/run/colo-arbiter"),
    colo: z
      .object({
        host: z.string().regex(/^[A-Za-z0-9.:_-]{1,253}$/, "a host name or IP address"),
        nbdPort: Port,
        migratePort: Port,
        mirrorPort: Port,
        compare1Port: Port,
        compare0Port: Port,
        compareOutPort: Port,
        disk: z.string().min(1).optional(),
        exportName: z.string().min(1).optional(),
        replicationNode: z.string().min(1).optional(),
        nbdNode: z.string().min(1).optional(),
        netdev: z.string().min(1).optional(),
        maxBandwidth: z.number().int().min(1).optional(),
      })
      .strict()
      .optional(),
    ids: z
      .object({
        quorumParent: z.string().min(1),
        replicationChild: z.string().min(1),
        replicationNode: z.string().min(1),
        objects: z.array(z.string().min(1)),
      })
      .partial()
      .strict()
      .optional(),
  })
  .strict()
  .refine((s) => !(s.watchdog && s.watchdogKeeper), { message: "watchdog and watchdogKeeper exclude each other: a device has one owner", path: ["watchdogKeeper"] })
  .refine((s) => s.allowInsecureArbiter === true || secureOrLoopback(s.arbiter), {
    message: "an http:// arbiter is refused unless it is on loopback (--allow-insecure-arbiter to insist): anyone on the path could forge its leases",
    path: ["arbiter"],
  });

/** https, or http to this host only (a local arbiter under `npm run dev`). */
function secureOrLoopback(url: string): boolean {
  try {
    const u = new URL(url);
    if (u.protocol === "https:") return true;
    const host = u.hostname.replace(/^\[|\]$/g, "");
    return u.protocol === "http:" && (host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host));
  } catch {
    return false;
  }
}

export interface AgentSettings {
  arbiter: string;
  pair: string;
  node: string;
  tokenFile: string;
  qmp: QmpAddress;
  pidfile: string;
  watchdog: string | null;
  /** A host's shared watchdog keeper's socket (colo-arbiter-watchdog), instead of a device. */
  watchdogKeeper: string | null;
  stateDir: string;
  /** No push channel: beats over HTTP only. */
  httpOnly: boolean;
  ids: RunbookIds;
  /** Re-protection's endpoint and names (settings file only); null: resync orders are refused. */
  colo: ColoSettings | null;
}

export type SettingsResult = { ok: true; settings: AgentSettings } | { ok: false; error: string };

const FLAGS = {
  config: { type: "string" },
  arbiter: { type: "string" },
  pair: { type: "string" },
  node: { type: "string" },
  "token-file": { type: "string" },
  qmp: { type: "string" },
  pidfile: { type: "string" },
  watchdog: { type: "string" },
  "watchdog-keeper": { type: "string" },
  "allow-insecure-arbiter": { type: "boolean" },
  "http-only": { type: "boolean" },
  "nbd-node": { type: "string" },
  "state-dir": { type: "string" },
} as const;

export const USAGE =
  "usage: colo-arbiter-agent --arbiter URL --pair ID --node ID --token-file PATH --qmp unix:/path|tcp:host:port --pidfile PATH [--watchdog /dev/watchdog | --watchdog-keeper /run/colo-arbiter/watchdog.sock] [--nbd-node NAME] [--state-dir /run/colo-arbiter] [--allow-insecure-arbiter] [--http-only] [--config FILE]";

export function loadSettings(argv: string[]): SettingsResult {
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: argv, options: FLAGS, strict: true }).values as Record<string, string | boolean | undefined>;
  } catch (e) {
    return { ok: false, error: `${e instanceof Error ? e.message : String(e)}\n${USAGE}` };
  }
  let file: Record<string, unknown> = {};
  const from = typeof flags.config === "string" ? flags.config : undefined;
  if (from) {
    try {
      file = JSON.parse(readFileSync(from, "utf8")) as Record<string, unknown>;
    } catch (e) {
      return { ok: false, error: `${from}: ${e instanceof Error ? e.message : String(e)}` };
    }
  }
  const fromFlags = Object.fromEntries(
    Object.entries({
      arbiter: flags.arbiter,
      pair: flags.pair,
      node: flags.node,
      tokenFile: flags["token-file"],
      qmp: flags.qmp,
      pidfile: flags.pidfile,
      watchdog: flags.watchdog,
      watchdogKeeper: flags["watchdog-keeper"],
      allowInsecureArbiter: flags["allow-insecure-arbiter"],
      httpOnly: flags["http-only"],
      nbdNode: flags["nbd-node"],
      stateDir: flags["state-dir"],
    }).filter(([, v]) => v !== undefined),
  );
  const parsed = Settings.safeParse({ ...file, ...fromFlags });
  if (!parsed.success) {
    const where = from ? ` (flags and ${from})` : "";
    const lines = parsed.error.issues.map((i) => `${i.path.join(".") || "(settings)"}: ${i.message}${where}`);
    return { ok: false, error: `${lines.join("\n")}\n${USAGE}` };
  }
  const s = parsed.data;
  return {
    ok: true,
    settings: {
      arbiter: s.arbiter,
      pair: s.pair,
      node: s.node,
      tokenFile: s.tokenFile,
      qmp: parseQmpAddress(s.qmp)!,
      pidfile: s.pidfile,
      watchdog: s.watchdog ?? null,
      watchdogKeeper: s.watchdogKeeper ?? null,
      stateDir: s.stateDir,
      httpOnly: s.httpOnly === true,
      ids: { ...DEFAULT_IDS, ...s.ids, nbdNode: s.nbdNode ?? DEFAULT_IDS.nbdNode },
      colo: s.colo ? { ...DEFAULT_COLO, ...s.colo } : null,
    },
  };
}
