/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
/**
 * The HTML status pages: `/` (pairs) and `/pairs/:pairId` (nodes, lease ages, replication, the
 * latest events, the open incident), and `/api` (the API reference, from the OpenAPI document).
 * Without a login `/` shows only the login form; the form takes the admin or the status token and
 * keeps it in an HttpOnly, Secure, SameSite=Strict cookie.
 */
import { REFRESH_SCRIPT } from "./refresh-script.js";
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { describeResync } from "../../api/present.js";
import type { EventBody, PairStatusBody } from "../../api/schemas.js";
import type { PairStateName } from "../../protocol/types.js";
import { severityOf } from "../notify/messages.js";
import type { Env } from "../env.js";
import { pairStub } from "../http.js";
import { allPairs, statusesOf } from "../fleet.js";
import { configuredSecretMatches } from "../tokens.js";
import { Page, State } from "./layout.js";
import { SESSION_MS, type SessionScope, issueSession, validSession } from "./session.js";

const COOKIE = "colo_arbiter_session";
const REFRESH_S = 5;

type PagesEnv = { Bindings: Env };

/** Which token a login presented: the admin or the status one. */
async function scopeOf(env: Env, token: string): Promise<SessionScope | null> {
  if (await configuredSecretMatches(token, env.ARBITER_ADMIN_TOKEN)) return "admin";
  if (await configuredSecretMatches(token, env.STATUS_TOKEN)) return "status";
  return null;
}

/** The cookie is a read-only session, never a token: a stolen one reads the pages for 12 h at most. */
const loggedIn = (env: Env, cookie: string | undefined) => validSession(env.ARBITER_ADMIN_TOKEN, cookie, Date.now());

function Login(props: { error?: string }) {
  return (
    <Page title="Log in">
      <form class="login" method="post" action="/login">
        <h2>Log in</h2>
        <p class="note">The admin token or the read-only status token.</p>
        {props.error ? <p class="error">{props.error}</p> : null}
        <input type="password" name="token" autocomplete="current-password" placeholder="token" required />
        <button type="submit">Log in</button>
      </form>
    </Page>
  );
}

/** Sort order on the pairs list: critical, then error, then the rest, protected last. */
function rank(state: PairStateName): number {
  if (state === "protected") return 3;
  return { critical: 0, error: 1, warning: 2 }[severityOf(state)];
}

const duration = (ms: number) => (ms < 60_000 ? `${Math.round(ms / 1000)} s` : ms < 3_600_000 ? `${Math.round(ms / 60_000)} min` : `${(ms / 3_600_000).toFixed(1)} h`);

const seconds = (ms: number) => `${ms < 10_000 ? (ms / 1000).toFixed(1) : Math.round(ms / 1000)} s`;
/** The newest beat of a pair's nodes, and which nodes are stale. */
function lastBeats(nodes: PairStatusBody["nodes"]): string {
  const heard = nodes.flatMap((n) => (n.lastSeenMsAgo === null ? [] : [n.lastSeenMsAgo]));
  const stale = nodes.filter((n) => n.stale).map((n) => n.id);
  const newest = heard.length > 0 ? ago(Math.min(...heard)) : "never";
  return stale.length > 0 ? `${newest} · ${stale.join(", ")} stale` : newest;
}

const ago = (ms: number | null) => (ms === null ? "–" : `${(ms / 1000).toFixed(1)} s ago`);
const at = (t: number) => new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");

/** Pages are never cached (they carry a session), framed, sniffed, or leak where they link from. */
const PAGE_HEADERS: Record<string, string> = {
  "cache-control": "no-store",
  "content-security-policy": "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

export function pageRoutes(app: Hono<PagesEnv>, openapi: () => { paths: Record<string, Record<string, { summary?: string }>> }) {
  app.get("/refresh.js", (c) => c.body(REFRESH_SCRIPT, 200, { "content-type": "text/javascript; charset=utf-8", "x-content-type-options": "nosniff", "cache-control": "no-cache" }));
  for (const path of ["/", "/login", "/logout", "/pairs/*", "/api"]) {
    app.use(path, async (c, next) => {
      await next();
      for (const [k, v] of Object.entries(PAGE_HEADERS)) c.res.headers.set(k, v);
    });
  }
  app.get("/", async (c) => {
    if (!(await loggedIn(c.env, getCookie(c, COOKIE)))) return c.html(<Login />);
    // Every page of the registry (a fleet over 500 pairs is listed whole), and each pair's last beats.
    const all = await allPairs(c as never);
    const heard = new Map((await statusesOf(c as never, all)).map((s) => [s.pairId, s.nodes]));
    // The worst first: what needs a person, then what lost protection, then the rest.
    const pairs = [...all].sort((a, b) => rank(a.state) - rank(b.state) || (a.stateSince ?? 0) - (b.stateSince ?? 0));
    const counts = new Map<string, number>();
    for (const p of pairs) counts.set(p.state, (counts.get(p.state) ?? 0) + 1);
    const now = Date.now();
    return c.html(
      <Page title="Pairs" refresh={REFRESH_S} loggedIn>
        <h1>Pairs</h1>
        <p class="counts">
          {[...counts.entries()].map(([state, n]) => (
            <span>
              <State state={state as never} /> {n}{" "}
            </span>
          ))}
        </p>
        <table>
          <thead>
            <tr>
              <th>Pair</th>
              <th>State</th>
              <th>For</th>
              <th>Active</th>
              <th>Last beat</th>
              <th class="wide">Epoch</th>
            </tr>
          </thead>
          <tbody>
            {pairs.map((p) => (
              <tr>
                <td>
                  <a href={`/pairs/${encodeURIComponent(p.pairId)}`}>{p.pairId}</a>
                </td>
                <td>
                  <State state={p.state} />
                </td>
                <td>{p.stateSince === null ? "–" : duration(now - p.stateSince)}</td>
                <td>{p.activeNode ?? "–"}</td>
                <td>{lastBeats(heard.get(p.pairId) ?? [])}</td>
                <td class="wide">{p.epoch}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {all.length === 0 ? <p class="note">No pairs yet.</p> : null}
      </Page>,
    );
  });

  // A login form is a token and nothing else.
  app.post("/login", bodyLimit({ maxSize: 4096, onError: (c) => c.html(<Login error="That request is too large." />, 413) }), async (c) => {
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const token = typeof form.token === "string" ? form.token : "";
    const scope = await scopeOf(c.env, token);
    const session = scope ? await issueSession(c.env.ARBITER_ADMIN_TOKEN, scope, Date.now()) : null;
    if (!session) return c.html(<Login error="That token is not accepted." />, 401);
    setCookie(c, COOKIE, session, { httpOnly: true, secure: true, sameSite: "Strict", path: "/", maxAge: SESSION_MS / 1000 });
    return c.redirect("/", 303);
  });

  app.post("/logout", (c) => {
    deleteCookie(c, COOKIE, { path: "/", secure: true });
    return c.redirect("/", 303);
  });

  app.get("/pairs/:pairId", async (c) => {
    if (!(await loggedIn(c.env, getCookie(c, COOKIE)))) return c.redirect("/", 303);
    const stub = pairStub(c as never, c.req.param("pairId"));
    const r = await stub.status({ kind: "admin" });
    if (!r.ok) return c.html(<Page title="No such pair" loggedIn><p>No pair {c.req.param("pairId")}.</p></Page>, 404);
    const s = (r as unknown as { value: PairStatusBody }).value;
    const ev = await stub.events({ kind: "admin" }, 15);
    const events: EventBody[] = ev.ok ? (ev as unknown as { value: { events: EventBody[] } }).value.events : [];
    return c.html(
      <Page title={s.pairId} refresh={REFRESH_S} loggedIn>
        <h1>
          {s.pairId} <State state={s.state} />
        </h1>
        <p>
          Active node <b>{s.activeNode ?? "none"}</b> · epoch {s.epoch} · failovers {s.failovers} · can fail over:{" "}
          <b>{s.canFailOver ? "yes" : "no"}</b>
        </p>
        <p class="note">
          Beat {seconds(s.config.heartbeatIntervalMs)} · lease {seconds(s.config.leaseMs)} · stall {seconds(s.config.replicationStallMs)} · failsafe{" "}
          {s.config.failsafe ? "on" : "off"} · watchdog {s.config.requireWatchdog ? "required" : "optional"} ({seconds(s.config.watchdogMs)})
        </p>
        {s.needsOperator ? <p class="error">Needs an operator: {s.needsOperator.reason}</p> : null}
        {s.nextCommand ? <p class="error">Next: <code>{s.nextCommand}</code></p> : null}
        {s.state !== "protected" ? <p class="error">{s.problem}</p> : null}
        {s.incident ? <p class="note">Incident open since {at(s.incident.openedAt)}</p> : null}
        {s.order ? (
          <p>
            Order: {s.order.action} {s.order.id} to {s.order.node} ({s.order.state}) — {s.order.reason}
          </p>
        ) : null}
        {s.takeover ? <p>Takeover to {s.takeover.target} waits for {s.takeover.waitsFor}</p> : null}
        {s.nodes.flatMap((n) => (n.resync ? [<p class="resync">{n.id}: {describeResync(n.resync)}</p>] : n.incoming ? [<p>{n.id}: an -incoming QEMU, ready to be rebuilt as the new secondary</p>] : []))}
        <table>
          <thead>
            <tr>
              <th>Node</th>
              <th>Role</th>
              <th>Last beat</th>
              <th>COLO</th>
              <th>Replicating</th>
              <th class="wide">QMP</th>
              <th class="wide">Lease left</th>
              <th class="wide">Watchdog</th>
            </tr>
          </thead>
          <tbody>
            {s.nodes.map((n) => (
              <tr class={n.stale ? "stale" : undefined}>
                <td>{n.id}</td>
                <td>
                  {n.role} ({n.standing})
                  {n.serves ? " · serves" : ""}
                </td>
                <td>{n.stale ? `stale, as of ${ago(n.lastSeenMsAgo)}` : ago(n.lastSeenMsAgo)}</td>
                <td>
                  {n.colo?.mode ?? "–"}
                  {n.vm ? ` · ${n.vm.status}` : ""}
                </td>
                <td>
                  {n.peer ? (n.peer.replicating ? "yes" : "no") : "–"}
                  {n.peer?.lastCheckpointMsAgo !== undefined ? ` · checkpoint ${seconds(n.peer.lastCheckpointMsAgo)} ago` : ""}
                </td>
                <td class="wide">
                  {n.qmp ? (n.qmp.ok ? "ok" : "not answering") : "–"}
                  {n.fenced ? " · fenced" : ""}
                </td>
                <td class="wide">{n.lease ? `${(n.lease.msLeft / 1000).toFixed(1)} s` : "–"}</td>
                <td class="wide">{n.guarded ? "armed" : "none"}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {s.nodes.flatMap((n) => (n.agent?.setupErrors ?? []).map((e) => <p class="error">{n.id}: set-up: {e}</p>))}
        <p class="note">Agents: {s.nodes.map((n) => `${n.id} ${n.agent?.version ?? "unknown"}`).join(" · ")}</p>
        {s.lastDecision ? <p class="note">Last decision {at(s.lastDecision.at)}: {s.lastDecision.summary}</p> : null}
        {s.sinks && s.sinks.length > 0 ? (
          <>
            <h2>Pagers</h2>
            <table>
              <tbody>
                {s.sinks.map((k) => (
                  <tr class={k.deadLettered > 0 || k.lastError ? "failing" : undefined}>
                    <td>{k.type}</td>
                    <td>{k.pending} pending</td>
                    <td>{k.deadLettered} given up</td>
                    <td class="wide">{k.lastError ?? "delivering"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        ) : null}
        <h2>Latest events</h2>
        <table>
          <tbody>
            {events.map((e) => (
              <tr>
                <td class="wide">{at(e.at)}</td>
                <td>{e.type.replace(/_/g, " ")}</td>
                <td>{e.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Page>,
    );
  });

  app.get("/api", (c) => {
    const doc = openapi();
    return c.html(
      <Page title="API reference">
        <h1>API reference</h1>
        <p>
          The machine-readable document is <a href="/openapi.json">/openapi.json</a>; errors and authentication are in docs/api.md.
        </p>
        <table>
          <tbody>
            {Object.entries(doc.paths).flatMap(([path, ops]) =>
              Object.entries(ops).map(([method, op]) => (
                <tr>
                  <td>
                    <code>{method.toUpperCase()}</code>
                  </td>
                  <td>
                    <code>{path}</code>
                  </td>
                  <td>{op.summary ?? ""}</td>
                </tr>
              )),
            )}
          </tbody>
        </table>
      </Page>,
    );
  });
}
