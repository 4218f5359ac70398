import { describe, expect, it } from "vitest";
import { PLANTS, runPlant } from "./plants.js";

// The fast subset of `npm run mutate`: each plant must be caught within its budget (stopping at
// the first catch); the families hold without their plant in targeted.test.ts.
describe("planted bugs, one per safety mechanism, are caught", () => {
  for (const p of PLANTS) {
    it(`${p.plant} (${p.mechanism})`, () => {
      const r = runPlant(p, p.budget, 1, 1);
      expect(r.firstAt, `not caught in ${r.runs} schedules`).not.toBeNull();
    }, 120_000);
  }
});
