import { describe, expect, it } from "vitest";
import { createPair } from "../../src/protocol/arbiter/state.js";
import { outgoing } from "../../src/service/notify/messages.js";
import { attempt } from "../../src/service/notify/deliver.js";
import { type Sink, insecureSinksAllowed, resolveSinks } from "../../src/service/notify/sinks.js";
import { RETRY_FOR_MS, classify, nextAttemptAt, parseRetryAfter } from "../../src/service/notify/retry.js";
import { alarmToSet } from "../../src/service/schedule.js";

describe("delivery retries", () => {
  it("delivers on 2xx, retries 408, 429 and 5xx, gives up on other 4xx", () => {
    expect(classify(202, null, 0).kind).toBe("delivered");
    for (const s of [408, 429, 500, 503]) expect(classify(s, null, 0).kind).toBe("retry");
    for (const s of [400, 401, 404]) expect(classify(s, null, 0).kind).toBe("permanent");
  });

  it("reads Retry-After as seconds or as an HTTP date", () => {
    expect(parseRetryAfter("30", 0)).toBe(30_000);
    expect(parseRetryAfter("Thu, 01 Jan 1970 00:01:00 GMT", 0)).toBe(60_000);
    expect(parseRetryAfter("soon", 0)).toBeNull();
  });

  it("backs off exponentially with jitter up to an hour, never sooner than Retry-After, and stops after 24 h", () => {
    const mid = () => 0.5;
    expect(nextAttemptAt(0, 1, 1000, undefined, mid)).toBe(1000 + 5000);
    expect(nextAttemptAt(0, 3, 1000, undefined, mid)).toBe(1000 + 20_000);
    expect(nextAttemptAt(0, 30, 1000, undefined, mid)).toBe(1000 + 3_600_000);
    expect(nextAttemptAt(0, 1, 1000, 120_000, mid)).toBe(121_000);
    expect(nextAttemptAt(0, 1, 1000, undefined, () => 0)).toBe(1000 + 2500);
    expect(nextAttemptAt(0, 40, RETRY_FOR_MS, undefined, mid)).toBeNull();
  });
});

describe("the one alarm", () => {
  it("is set at the earliest deadline, only when that is earlier than the alarm already set", () => {
    expect(alarmToSet([5000, 3000], null)).toBe(3000);
    expect(alarmToSet([5000, null], 4000)).toBeNull();
    expect(alarmToSet([5000, 2000], 4000)).toBe(2000);
    expect(alarmToSet([null, null], null)).toBeNull();
  });
});

describe("what Slack is sent", () => {
  const d = createPair({ pairId: "web1", primary: "a", secondary: "b" }, 0).durable;
  const slack: Sink = { id: "s1", type: "slack", url: "https://hooks.slack.test/x" };
  const text = (message: string) => {
    const ev = { type: "failover_failed" as const, at: 0, epoch: 1, actor: "agent:a", message };
    const [o] = outgoing([ev], d, [slack], () => "e1", undefined);
    return (JSON.parse(o!.body) as { text: string }).text;
  };

  it("escapes what agents and operators wrote: no mentions, no disguised links", () => {
    const t = text("failed at <!channel> see <https://evil.test|the runbook> & more");
    expect(t).not.toMatch(/<!channel>|<https:\/\/evil/);
    expect(t).toContain("&lt;!channel&gt; see &lt;https://evil.test|the runbook&gt; &amp; more");
  });

  it("caps agent text", () => {
    expect(text("x".repeat(2000)).length).toBeLessThan(700);
  });
});

describe("webhook secrets", () => {
  const spec = (secret: string) => [{ type: "webhook" as const, url: "https://hooks.test/x", secret }];

  it("are refused at PUT unless they decode to at least 24 bytes", () => {
    expect(resolveSinks(spec("whsec_AAAAA"), [], false)).toMatchObject({ field: "sinks.0.secret" });
    expect(resolveSinks(spec(`whsec_${btoa("short")}`), [], false)).toMatchObject({ field: "sinks.0.secret" });
    expect(resolveSinks(spec(`whsec_${btoa("x".repeat(24))}`), [], false)).toEqual([{ id: "webhook-0", type: "webhook", url: "https://hooks.test/x", secret: `whsec_${btoa("x".repeat(24))}` }]);
  });

  it("one stored before the check fails its delivery for good, with the reason recorded, instead of blocking the sink", async () => {
    const sink: Sink = { id: "w", type: "webhook", url: "https://hooks.test/x", secret: "whsec_AAAAA" };
    const out = await attempt(sink, { id: 1, sinkId: "w", eventId: "e1", body: "{}", attempts: 0, nextAt: 0, createdAt: 0, lastError: null } as never, 0);
    expect(out.result).toMatchObject({ kind: "permanent" });
    expect(out.status).toBe("bad_secret");
  });
});

describe("sink addresses", () => {
  const slack = (url: string) => [{ type: "slack" as const, url }];

  it("refuse loopback, private, link-local and metadata hosts, and anything but http(s), unless insecure mode is on", () => {
    for (const url of [
      "https://127.0.0.1/x",
      "https://localhost/x",
      "https://10.1.2.3/x",
      "https://172.20.0.1/x",
      "https://192.168.1.1/x",
      "https://169.254.169.254/latest/meta-data",
      "https://[::1]/x",
      "https://[fd00::1]/x",
      "https://[fe80::1]/x",
      "https://0.0.0.0/x",
    ]) expect(resolveSinks(slack(url), [], false), url).toMatchObject({ field: "sinks.0.url" });
    expect(resolveSinks(slack("ftp://hooks.test/x"), [], true)).toMatchObject({ field: "sinks.0.url" });
    expect(resolveSinks(slack("http://127.0.0.1:9/x"), [], true)).toEqual([{ id: "slack-0", type: "slack", url: "http://127.0.0.1:9/x" }]);
    expect(resolveSinks(slack("https://hooks.slack.com/services/T/B/X"), [], false)).toHaveLength(1);
  });

  it("insecure mode is on only for 1 or true", () => {
    expect(insecureSinksAllowed("1")).toBe(true);
    expect(insecureSinksAllowed("true")).toBe(true);
    for (const v of [undefined, "", "0", "false", "no"]) expect(insecureSinksAllowed(v)).toBe(false);
  });

  it("a redirect is not followed: it fails the delivery for good", () => {
    expect(classify(302, null, 0).kind).toBe("permanent");
  });
});
