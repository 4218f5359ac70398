import { describe, expect, it } from "vitest";
import { runHarmless, runSafety } from "./run.js";
import { TARGETED } from "./targeted.js";

const SEEDS = Number(process.env.SIM_TARGETED_SEEDS ?? 100);

describe("targeted schedules: faults timed against the protocol's deadlines", () => {
  for (const t of TARGETED) {
    it(`${t.name}: ${t.property === "safety" ? "never two serving" : "costs nothing"} (${SEEDS} seeds)`, () => {
      const failures: string[] = [];
      for (let seed = 1; seed <= SEEDS; seed++) {
        const r = (t.property === "safety" ? runSafety : runHarmless)(t.schedule(seed));
        if (r.violation) failures.push(`seed ${seed}: ${r.violation}\n${r.trace}`);
      }
      expect(failures.length, failures[0]).toBe(0);
    }, 120_000);
  }
});
