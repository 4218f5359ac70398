import fc from "fast-check";
import { Cluster } from "./cluster.js";
import { safetyScheduleArb } from "./run.js";
const samples = fc.sample(safetyScheduleArb, { numRuns: 300, seed: 42 });
samples.forEach((s, i) => {
  const c = new Cluster(s);
  const t0 = Date.now();
  let n = 0;
  c.world.sched.run(s.durationMs, () => { if (++n > 300000) { console.log("runaway", i, c.world.now); console.log(c.world.trace.text().split("\n").slice(-15).join("\n")); process.exit(1); } });
  if (Date.now() - t0 > 500) console.log(i, Date.now() - t0, n);
});
