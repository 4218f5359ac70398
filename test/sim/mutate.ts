/**
 * npm run mutate -- [--seed S]
 *
 * Plants one bug per safety mechanism (test/sim/plants.ts), with the mechanisms that would mask it
 * switched off, runs each on the schedules aimed at it, and prints how many of them caught it
 * (two nodes serving). Fails if a plant is not caught within its budget, or if a family of
 * schedules does not hold without the plant.
 */
import { parseArgs } from "node:util";
import { PLANTS, runPlant } from "./plants.js";
import { runSafety } from "./run.js";
import { TARGETED } from "./targeted.js";

const { values } = parseArgs({ options: { seed: { type: "string", default: "1" } } });
const seed = Number(values.seed);
const started = Date.now();
let failed = 0;
console.log("| mechanism | plant | also switched off | schedules | caught | first caught at |");
console.log("|---|---|---|---|---:|---:|");
for (const p of PLANTS) {
  const r = runPlant(p, p.budget, seed);
  const family = p.family === "random" ? "random adversarial" : `"${p.family}"`;
  console.log(`| ${p.mechanism} | ${p.plant} | ${p.unmasked} | ${family} | ${r.caught} of ${r.runs} | ${r.firstAt ?? "never"} |`);
  if (r.firstAt === null) failed += 1;
  if (p.family !== "random") {
    const t = TARGETED.find((x) => x.name === p.family)!;
    for (let i = 0; i < p.budget; i++) {
      const base = runSafety(t.schedule(seed + i));
      if (base.violation) {
        console.error(`\nwithout the plant, "${t.name}" seed ${seed + i} fails: ${base.violation}`);
        failed += 1;
        break;
      }
    }
  }
}
console.log(`\n${PLANTS.length} plants, ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(failed === 0 ? "every plant caught, every family holds without it" : `${failed} failure(s)`);
process.exit(failed === 0 ? 0 : 1);
