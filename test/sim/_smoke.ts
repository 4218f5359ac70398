import fc from "fast-check";
import { runSafety, runLiveness, livenessCaseArb, safetyScheduleArb } from "./run.js";
const t0 = Date.now(); let ev = 0; let bad = 0;
const samples = fc.sample(safetyScheduleArb, { numRuns: 300, seed: 42 });
for (const s of samples) { const r = runSafety(s); ev += r.events; if (r.violation) { bad++; if (bad <= 1) { console.log(r.violation); console.log(JSON.stringify(s)); console.log(r.trace.split("\n").slice(-60).join("\n")); } } }
console.log("safety", samples.length, "runs", Date.now() - t0, "ms", ev, "events", bad, "violations");
const t1 = Date.now(); let lbad = 0; const times: number[] = [];
for (const lc of fc.sample(livenessCaseArb, { numRuns: 200, seed: 7 })) { const r = runLiveness(lc); if (r.violation) { lbad++; if (lbad <= 2) { console.log("LIVENESS", r.violation, JSON.stringify({victim: lc.victim, failure: lc.failure, cfg: lc.schedule.config, guarded: lc.schedule.guarded, restartAt: lc.restartAt, failAt: lc.failAt})); console.log(r.trace.split("\n").slice(-30).join("\n")); } } else if (r.ms !== null) times.push(r.ms); }
console.log("liveness 200 runs", Date.now() - t1, "ms", lbad, "violations", "median", times.sort((a,b)=>a-b)[times.length>>1]);
