import { describe, expect, it } from "vitest";
import { runHarmless, runRecovers, runSafety } from "./run.js";
import { TARGETED } from "./targeted.js";

const SEEDS = Number(process.env.SIM_TARGETED_SEEDS ?? 100);

describe("targeted schedules: faults timed against the protocol's deadlines", () => {
  for (const t of TARGETED) {
    const check = { safety: runSafety, harmless: runHarmless, recovers: runRecovers }[t.property];
    const says = { safety: "never two serving", harmless: "costs nothing", recovers: "serves again" }[t.property];
    it(`${t.name}: ${says} (${SEEDS} seeds)`, () => {
      const failures: string[] = [];
      for (let seed = 1; seed <= SEEDS; seed++) {
        const r = check(t.schedule(seed), undefined, t.fromMs);
        if (r.violation) failures.push(`seed ${seed}: ${r.violation}\n${r.trace}`);
      }
      expect(failures.length, failures[0]).toBe(0);
    }, 120_000);
  }
});
