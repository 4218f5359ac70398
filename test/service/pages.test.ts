/** The status pages' login, inside workerd: a session cookie that is no API credential. */
import { describe, expect, it } from "vitest";
import { ADMIN, beat, beatBody, call, createPair, fetchWorker } from "./helpers.js";

async function login(token: string) {
  return fetchWorker(new Request("http://arbiter/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `token=${encodeURIComponent(token)}` }));
}

const cookieOf = (res: Response) => /colo_arbiter_session=([^;]+)/.exec(res.headers.get("set-cookie") ?? "")?.[1];
const page = (cookie: string) => fetchWorker(new Request("http://arbiter/", { headers: { cookie: `colo_arbiter_session=${cookie}` } }));

describe("the status pages' session", () => {
  it("is not the admin token, opens the pages, and is no API credential", async () => {
    const res = await login(ADMIN);
    expect(res.status).toBe(303);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const session = decodeURIComponent(cookieOf(res)!);
    expect(session).not.toContain(ADMIN);
    const listed = await page(session);
    expect(await listed.text()).toContain("<h1>Pairs</h1>");
    expect(listed.headers.get("cache-control")).toBe("no-store");
    expect(listed.headers.get("x-frame-options")).toBe("DENY");
    expect(listed.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect((await call("GET", "/v1/pairs", { token: session })).status).toBe(401);
  });

  it("refuses a forged or altered session, and a token as a cookie", async () => {
    const session = decodeURIComponent(cookieOf(await login(ADMIN))!);
    const altered = session.replace(/\.(\d+)\./, (_m, at: string) => `.${Number(at) + 3_600_000}.`);
    for (const cookie of [altered, ADMIN, "v1.admin.99999999999999.00"]) expect(await (await page(cookie)).text()).toContain('form class="login"');
    expect((await login("not-a-token-0123456789abcdefghijkl")).status).toBe(401);
  });

  it("refuses an oversized login body", async () => {
    expect((await login("x".repeat(100_000))).status).toBe(413);
  });
});

describe("the pairs list", () => {
  it("puts the worst first, counts each state, and says for how long", async () => {
    const waiting = await createPair("aaa-waiting");
    const prot = await createPair("zzz-protected");
    for (let i = 0; i < 2; i++) {
      await beat(prot.id, prot.tokens.n1!, beatBody("n1"));
      await beat(prot.id, prot.tokens.n2!, beatBody("n2"));
    }
    const session = decodeURIComponent(cookieOf(await login(ADMIN))!);
    const html = await (await page(session)).text();
    // Newest first would put the protected pair first; severity puts the waiting one first.
    expect(html.indexOf(waiting.id)).toBeLessThan(html.indexOf(prot.id));
    expect(html).toMatch(/class="counts"/);
    expect(html).toMatch(/<td>\d+ s<\/td>/);
  });
});

describe("a pair's page", () => {
  it("shows the timings and failsafe setting, each node's checkpoint age, QMP and fence, and each pager's health", async () => {
    const p = await createPair(undefined, { failsafe: false, sinks: [{ type: "pagerduty", routingKey: "R0UT1NGKEY" }] });
    for (const n of ["n1", "n2"]) await beat(p.id, p.tokens[n]!, beatBody(n, { peer: { replicating: true, lastCheckpointMsAgo: 1500 }, qmp: { ok: n === "n1" } }));
    const session = decodeURIComponent(cookieOf(await login(ADMIN))!);
    const html = await (await fetchWorker(new Request(`http://arbiter/pairs/${p.id}`, { headers: { cookie: `colo_arbiter_session=${session}` } }))).text();
    expect(html).toContain("Beat 1.0 s · lease 3.0 s · stall 5.0 s · failsafe off · watchdog required (1.0 s)");
    expect(html).toContain("yes · checkpoint 1.5 s ago");
    expect(html).toContain("not answering");
    expect(html).toMatch(/<h2>Pagers<\/h2>.*pagerduty.*0 given up/s);
    // The refresh script, and the banner it fills when a refresh fails.
    expect(html).toContain('<script src="/refresh.js" defer');
    expect(html).toContain('id="refresh-error"');
    expect(html).toMatch(/As of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, refreshed every 5 s\./);
    // The pairs list says when each pair was last heard from.
    const list = await (await page(session)).text();
    expect(list).toContain("<th>Last beat</th>");
    expect(list).toMatch(new RegExp(`${p.id}</a>.*?\\d+\\.\\d s ago`, "s"));
  });
});
