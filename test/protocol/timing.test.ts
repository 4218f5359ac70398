import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, checkTimings, effectiveStall, leaseMargin } from "../../src/protocol/timing.js";

describe("timing rule", () => {
  it("accepts the defaults", () => {
    expect(checkTimings(DEFAULT_CONFIG)).toEqual([]);
    // 2·rho·L + (W·(1+rho)/(1-rho) - F/2): a dead agent's watchdog is pinged once as its device closes.
    expect(leaseMargin(DEFAULT_CONFIG)).toBe(60 + 771);
  });

  it.each([
    [{ leaseMs: 2000 }, "lease_covers_watchdog"],
    [{ replicationStallMs: 1500 }, "stall_covers_heartbeats"],
    [{ heartbeatIntervalMs: 50 }, "heartbeat_interval_min"],
    [{ watchdogMs: 1500 }, "watchdog_whole_seconds"],
  ] as const)("refuses %j, naming %s", (change, rule) => {
    expect(checkTimings({ ...DEFAULT_CONFIG, ...change }).map((v) => v.rule)).toContain(rule);
  });

  it("stretches S to the primary's checkpoint delay plus 3 s", () => {
    expect(effectiveStall(5000, null)).toBe(5000);
    expect(effectiveStall(5000, 4000)).toBe(7000);
    expect(effectiveStall(5000, 1000)).toBe(5000);
  });
});
