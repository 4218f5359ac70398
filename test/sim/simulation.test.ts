import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatTable, timingTable } from "./report.js";
import { livenessCaseArb, runLiveness, runSafety, safetyScheduleArb } from "./run.js";

const SAFETY_RUNS = Number(process.env.SIM_RUNS ?? 3000);
const LIVENESS_RUNS = Number(process.env.SIM_LIVENESS_RUNS ?? 1000);

describe("simulation of both agents, both QEMUs and the arbiter", () => {
  it(`never lets two nodes serve at once (${SAFETY_RUNS} adversarial schedules)`, () => {
    fc.assert(
      fc.property(safetyScheduleArb, (s) => {
        const r = runSafety(s);
        if (r.violation) throw new Error(`${r.violation}\n--- last events ---\n${r.trace}`);
      }),
      { numRuns: SAFETY_RUNS, seed: Number(process.env.SIM_SEED ?? 20261127) },
    );
  }, 300_000);

  it(`brings the survivor to serve within the derived bound (${LIVENESS_RUNS} single failures)`, () => {
    const results: Parameters<typeof timingTable>[0] = [];
    fc.assert(
      fc.property(livenessCaseArb, (lc) => {
        const r = runLiveness(lc);
        if (r.violation) throw new Error(`${r.violation}\n--- last events ---\n${r.trace}`);
        results.push({ lc, r });
      }),
      { numRuns: LIVENESS_RUNS, seed: Number(process.env.SIM_SEED ?? 20261127) },
    );
    const rows = timingTable(results);
    console.log(`failover time (ms), from the failure to the survivor serving standalone:\n${formatTable(rows)}`);
    // Every combination of setting and victim was exercised and measured.
    expect(rows.map((r) => r.setting)).toHaveLength(4);
    for (const row of rows) expect(row.worstOfBound).toBeLessThanOrEqual(1);
  }, 300_000);
});
