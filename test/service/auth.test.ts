import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { identify } from "../../src/service/auth.js";
import { agentTokenTagValid, newAgentToken } from "../../src/service/tokens.js";
import { ADMIN, beatBody, call, createPair } from "./helpers.js";

const STATUS = "test-status-token-0123456789abcdefghij";

async function code(res: Response): Promise<[number, string | undefined]> {
  const text = await res.text();
  let c: string | undefined;
  try {
    c = (JSON.parse(text) as { error?: { code: string } }).error?.code;
  } catch {
    c = undefined;
  }
  return [res.status, c];
}

describe("the auth table", async () => {
  const a = await createPair();
  const b = await createPair();
  const forged = `${a.id}~n1~${"A".repeat(43)}`;
  const callers: [string, string | null][] = [
    ["no token", null],
    ["admin", ADMIN],
    ["own node", a.tokens.n1!],
    ["other node of the pair", a.tokens.n2!],
    ["agent of another pair", b.tokens.n1!],
    ["forged agent token", forged],
    ["garbage", "not-a-token"],
    ["status token", STATUS],
  ];
  const expected: Record<string, Record<string, [number, string?]>> = {
    beat: {
      "no token": [401, "missing_token"],
      admin: [401, "unknown_token"],
      "own node": [200],
      "other node of the pair": [403, "node_mismatch"],
      "agent of another pair": [403, "forbidden"],
      "forged agent token": [401, "unknown_token"],
      garbage: [401, "unknown_token"],
      "status token": [401, "unknown_token"],
    },
    status: {
      "no token": [401, "missing_token"],
      admin: [200],
      "own node": [200],
      "other node of the pair": [200],
      "agent of another pair": [403, "forbidden"],
      "forged agent token": [401, "unknown_token"],
      garbage: [401, "unknown_token"],
      "status token": [200],
    },
    events: {
      "no token": [401, "missing_token"],
      admin: [200],
      "own node": [200],
      "other node of the pair": [200],
      "agent of another pair": [403, "forbidden"],
      "forged agent token": [401, "unknown_token"],
      garbage: [401, "unknown_token"],
      "status token": [200],
    },
    list: {
      "no token": [401, "missing_token"],
      admin: [200],
      "own node": [403, "forbidden"],
      "other node of the pair": [403, "forbidden"],
      "agent of another pair": [403, "forbidden"],
      "forged agent token": [401, "unknown_token"],
      garbage: [401, "unknown_token"],
      "status token": [200],
    },
    failover: {
      "no token": [401, "missing_token"],
      admin: [409, "target_not_fresh"],
      "own node": [403, "forbidden"],
      "other node of the pair": [403, "forbidden"],
      "agent of another pair": [403, "forbidden"],
      "forged agent token": [401, "unknown_token"],
      garbage: [401, "unknown_token"],
      "status token": [401, "unknown_token"],
    },
  };
  const requests: Record<string, (t: string | null) => Promise<Response>> = {
    beat: (t) => call("POST", `/v1/pairs/${a.id}/heartbeat`, { token: t, body: beatBody("n1") }),
    status: (t) => call("GET", `/v1/pairs/${a.id}`, { token: t }),
    events: (t) => call("GET", `/v1/pairs/${a.id}/events`, { token: t }),
    list: (t) => call("GET", "/v1/pairs", { token: t }),
    failover: (t) => call("POST", `/v1/pairs/${a.id}/failover`, { token: t, body: { target: "n2" } }),
  };
  for (const [route, send] of Object.entries(requests)) {
    for (const [who, token] of callers) {
      it(`${route} as ${who}`, async () => {
        const [status, c] = await code(await send(token));
        const [wantStatus, wantCode] = expected[route]![who]!;
        expect(status).toBe(wantStatus);
        if (wantCode) expect(c).toBe(wantCode);
      });
    }
  }

  it("no one but the admin sees the pair's sinks", async () => {
    const withSinks = await createPair(undefined, { sinks: [{ type: "webhook", url: "https://hooks.test/secret-path", secret: `whsec_${btoa("x".repeat(24))}` }] });
    const as = async (t: string) => (await (await call("GET", `/v1/pairs/${withSinks.id}`, { token: t })).json()) as { sinks?: unknown };
    expect((await as(ADMIN)).sinks).toHaveLength(1);
    expect((await as(withSinks.tokens.n1!)).sinks).toBeUndefined();
    expect((await as(STATUS)).sinks).toBeUndefined();
  });

  it("an agent token never learns whether another pair exists", async () => {
    const real = await code(await call("GET", `/v1/pairs/${b.id}`, { token: a.tokens.n1! }));
    const missing = await code(await call("GET", "/v1/pairs/no-such-pair", { token: a.tokens.n1! }));
    expect(real).toEqual(missing);
    expect(await code(await call("GET", "/v1/pairs/no-such-pair"))).toEqual([404, "pair_not_found"]);
  });
});

describe("the check order: 401, 403, 404, 413, 400, 422", async () => {
  const a = await createPair();
  const big = JSON.stringify({ pad: "x".repeat(17 * 1024) });
  it("a wrong secret wins over a body too large, malformed or invalid", async () => {
    const forged = `${a.id}~n1~${"B".repeat(43)}`;
    for (const raw of [big, "{not json", JSON.stringify({ nodeId: 3 })]) {
      expect(await code(await call("POST", `/v1/pairs/${a.id}/heartbeat`, { token: forged, raw }))).toEqual([401, "unknown_token"]);
    }
  });
  it("a missing pair wins for the admin", async () => {
    expect(await code(await call("POST", "/v1/pairs/nope/failover", { raw: "{not json" }))).toEqual([404, "pair_not_found"]);
  });
  it("then 413, 400 and 422", async () => {
    const t = a.tokens.n1!;
    expect(await code(await call("POST", `/v1/pairs/${a.id}/heartbeat`, { token: t, raw: big }))).toEqual([413, "body_too_large"]);
    expect(await code(await call("POST", `/v1/pairs/${a.id}/heartbeat`, { token: t, raw: "{not json" }))).toEqual([400, "malformed_json"]);
    expect(await code(await call("POST", `/v1/pairs/${a.id}/heartbeat`, { token: t, raw: "{}" }))).toEqual([422, "invalid_body"]);
  });
});

describe("bad input", async () => {
  const a = await createPair();
  it("2,000 random malformed bodies: no 5xx, no state change", async () => {
    const before = await (await call("GET", `/v1/pairs/${a.id}`)).text();
    const eventsBefore = await (await call("GET", `/v1/pairs/${a.id}/events`)).text();
    const valid = beatBody("n1");
    // Mutations of a valid beat (one field replaced by anything), plus arbitrary JSON and text.
    const mutated = fc
      .tuple(fc.constantFrom(...Object.keys(valid)), fc.jsonValue())
      .map(([k, v]) => JSON.stringify({ ...valid, nodeId: "n1", [k]: v, seq: -1 }));
    const body = fc.oneof(mutated, fc.json(), fc.string());
    const routes = [`/v1/pairs/${a.id}/heartbeat`, `/v1/pairs/${a.id}/failover`, `/v1/pairs/${a.id}/resolve`, `/v1/pairs/${a.id}/maintenance`];
    // fc.sample, not fc.assert: shrinking through thousands of HTTP calls would outlast any timeout.
    const cases = fc.sample(fc.tuple(body, fc.constantFrom(...routes)), { numRuns: 2000, seed: 7 });
    const answers = new Map<number, number>();
    const send = async ([raw, path]: [string, string]) => {
      const token = path.endsWith("heartbeat") ? a.tokens.n1! : ADMIN;
      const res = await call("POST", path, { token, raw });
      await res.arrayBuffer();
      answers.set(res.status, (answers.get(res.status) ?? 0) + 1);
      if (res.status >= 500 || res.status < 400) throw new Error(`${path} answered ${res.status} to ${raw.slice(0, 300)}`);
    };
    for (const c of cases) await send(c);
    expect([...answers.keys()].every((s) => s >= 400 && s < 500)).toBe(true);
    // seq -1 is invalid, so no beat got through: the pair is as it was (timestamps aside).
    const strip = (s: string) => s.replace(/"lastSeenMsAgo":[^,]+/g, "");
    expect(strip(await (await call("GET", `/v1/pairs/${a.id}`)).text())).toBe(strip(before));
    expect(await (await call("GET", `/v1/pairs/${a.id}/events`)).text()).toBe(eventsBefore);
  }, 120_000);
});

describe("every route, fuzzed", async () => {
  const control = await createPair();
  const other = await createPair();
  it("1,000 random requests (methods, paths, queries, tokens, bodies): no 5xx, and a control pair comes out unchanged", async () => {
    const snapshot = async () => {
      const status = (await (await call("GET", `/v1/pairs/${control.id}`)).text()).replace(/"lastSeenMsAgo":[^,]+/g, "");
      const events = await (await call("GET", `/v1/pairs/${control.id}/events?limit=500`)).text();
      return `${status}\n${events}`;
    };
    const before = await snapshot();
    const id = fc.oneof(fc.constant(control.id), fc.constant(other.id), fc.string({ maxLength: 20 }), fc.constant("no-such-pair"));
    const node = fc.oneof(fc.constantFrom("n1", "n2"), fc.string({ maxLength: 10 }));
    const routes = fc.tuple(id, node, fc.string({ maxLength: 20 })).chain(([p, n, q]) => {
      const pp = encodeURIComponent(p);
      return fc.constantFrom(
        ["PUT", `/v1/pairs/${pp}`],
        ["GET", `/v1/pairs/${pp}?${q}`],
        ["DELETE", `/v1/pairs/${pp}?force=${encodeURIComponent(q)}`],
        ["POST", `/v1/pairs/${pp}/heartbeat`],
        ["POST", `/v1/pairs/${pp}/failover`],
        ["POST", `/v1/pairs/${pp}/maintenance`],
        ["POST", `/v1/pairs/${pp}/resolve`],
        ["POST", `/v1/pairs/${pp}/reprotect`],
        ["POST", `/v1/pairs/${pp}/nodes/${encodeURIComponent(n)}/token?revoke=${encodeURIComponent(q)}`],
        ["GET", `/v1/pairs/${pp}/events?limit=${encodeURIComponent(q)}&before=${encodeURIComponent(n)}`],
        ["GET", `/v1/pairs/${pp}/health`],
        ["GET", `/v1/pairs?limit=${encodeURIComponent(q)}&cursor=${encodeURIComponent(n)}`],
        ["GET", "/metrics"],
      );
    });
    const token = fc.constantFrom<string | null>(null, "garbage", `${control.id}~n1~${"C".repeat(43)}`, other.tokens.n1!, "test-status-token-0123456789abcdefghij", ADMIN);
    const body = fc.oneof(fc.json(), fc.string({ maxLength: 200 }), fc.constant(""));
    const cases = fc.sample(fc.tuple(routes, token, body), { numRuns: 1000, seed: 11 });
    let sent = 0;
    for (const [[method, path], t, raw] of cases) {
      // The admin may change any pair but the control one; everyone else is fuzzed against it too.
      if (t === ADMIN && path.startsWith(`/v1/pairs/${encodeURIComponent(control.id)}`) && method !== "GET") continue;
      const res = await call(method!, path!, { token: t, ...(method === "GET" || method === "DELETE" ? {} : { raw }) });
      await res.arrayBuffer();
      sent++;
      // 503 is health's answer for a pair that is not protected.
      const healthAnswer = res.status === 503 && path!.endsWith("/health");
      if (res.status >= 500 && !healthAnswer) throw new Error(`${method} ${path} answered ${res.status}`);
    }
    expect(sent).toBeGreaterThan(700);
    expect(await snapshot()).toBe(before);
  }, 180_000);
});

describe("tagged agent tokens", () => {
  const KEY = "agent-token-key-0123456789abcdefghijklmnop";
  const secrets = (required: boolean, keyed = true) => ({ admin: ADMIN, status: undefined, metrics: undefined, agentTagKey: keyed ? KEY : undefined, agentTagRequired: required });

  it("carry a tag the Worker verifies without any object; a forged or altered one is refused there", async () => {
    const t = await newAgentToken("p1", "n1", KEY);
    expect(t.token).toMatch(/^p1~n1~[A-Za-z0-9_-]{43}$/);
    expect(await agentTokenTagValid(t, KEY)).toBe(true);
    expect(await agentTokenTagValid({ ...t, nodeId: "n2" }, KEY)).toBe(false);
    expect(await agentTokenTagValid(t, `${KEY}x`)).toBe(false);
    const altered = { ...t, secret: `${t.secret.slice(0, 10)}${t.secret[10] === "A" ? "B" : "A"}${t.secret.slice(11)}` };
    expect(await agentTokenTagValid(altered, KEY)).toBe(false);
    expect(await agentTokenTagValid(await newAgentToken("p1", "n1"), KEY)).toBe(false);

    const forged = `Bearer p1~n1~${"A".repeat(43)}`;
    expect(await identify(forged, "agent", secrets(true))).toMatchObject({ code: "unknown_token" });
    expect(await identify(`Bearer ${t.token}`, "agent", secrets(true))).toMatchObject({ kind: "agent", pairId: "p1", nodeId: "n1" });
    // Not required yet (tokens issued before the key are untagged): the pair's object decides.
    expect(await identify(forged, "agent", secrets(false))).toMatchObject({ kind: "agent" });
    // Required with no key would refuse every agent and stop the pairs: not enforced.
    expect(await identify(forged, "agent", secrets(true, false))).toMatchObject({ kind: "agent" });
  });
});
