/**
 * npm run simulate -- [--runs N] [--liveness N] [--seed S] [--workers K]
 *
 * Runs N adversarial schedules for the split-brain invariant and N single failures for the
 * failover-time bound, spread over K processes. A failing schedule is printed with its seed, the
 * shrunk schedule and the trace of its last events; the exit code is then 1.
 */
import { fork } from "node:child_process";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import fc from "fast-check";
import { formatTable, timingTable } from "./report.js";
import { type LivenessCase, type LivenessResult, livenessCaseArb, runLiveness, runSafety, safetyScheduleArb } from "./run.js";
import { SITUATIONS } from "./world.js";

interface Part {
  safetyRuns: number;
  livenessRuns: number;
  seed: number;
}
interface PartResult {
  failure: string | null;
  events: number;
  reached: Record<string, number>;
  liveness: { lc: LivenessCase; r: Omit<LivenessResult, "trace"> & { trace: "" } }[];
}

function runPart(p: Part): PartResult {
  let events = 0;
  const reached: Record<string, number> = {};
  const safety = fc.check(
    fc.property(safetyScheduleArb, (s) => {
      const r = runSafety(s);
      events += r.events;
      for (const x of r.reached) reached[x] = (reached[x] ?? 0) + 1;
      return r.violation === null;
    }),
    { numRuns: p.safetyRuns, seed: p.seed },
  );
  if (safety.failed) {
    const s = safety.counterexample![0];
    const r = runSafety(s);
    return {
      failure: `safety: ${r.violation}\nseed ${safety.seed}, path ${safety.counterexamplePath}\nshrunk schedule: ${JSON.stringify(s, null, 1)}\n--- last events ---\n${r.trace}`,
      events,
      reached,
      liveness: [],
    };
  }
  const liveness: PartResult["liveness"] = [];
  const live = fc.check(
    fc.property(livenessCaseArb, (lc) => {
      const r = runLiveness(lc);
      liveness.push({ lc, r: { ...r, trace: "" } });
      return r.violation === null;
    }),
    { numRuns: p.livenessRuns, seed: p.seed },
  );
  if (live.failed) {
    const lc = live.counterexample![0];
    const r = runLiveness(lc);
    return { failure: `liveness: ${r.violation}\nseed ${live.seed}\ncase: ${JSON.stringify(lc)}\n--- last events ---\n${r.trace}`, events, reached, liveness };
  }
  return { failure: null, events, reached, liveness };
}

if (process.argv.includes("--worker")) {
  process.once("message", (p: Part) => {
    process.send!(runPart(p), () => process.exit(0));
  });
} else {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "10000" },
      liveness: { type: "string" },
      seed: { type: "string", default: String(Date.now() % 2 ** 31) },
      workers: { type: "string", default: String(availableParallelism()) },
    },
  });
  const runs = Number(values.runs);
  const livenessRuns = Number(values.liveness ?? Math.ceil(runs / 10));
  const seed = Number(values.seed);
  const workers = Math.max(1, Number(values.workers));
  const started = Date.now();
  console.log(`simulating ${runs} adversarial schedules and ${livenessRuns} single failures, seed ${seed}, ${workers} workers`);
  const parts: Part[] = Array.from({ length: workers }, (_, i) => ({
    safetyRuns: Math.ceil(runs / workers),
    livenessRuns: Math.ceil(livenessRuns / workers),
    seed: seed + i,
  }));
  const results = await Promise.all(
    parts.map(
      (p) =>
        new Promise<PartResult>((resolve, reject) => {
          const child = fork(new URL(import.meta.url).pathname, ["--worker"]);
          child.once("message", (m) => resolve(m as PartResult));
          child.once("error", reject);
          child.send(p);
        }),
    ),
  );
  const failures = results.filter((r) => r.failure);
  const events = results.reduce((n, r) => n + r.events, 0);
  console.log(`${runs} schedules, ${events} simulated events, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log("\ndangerous situations reached (random schedules; the targeted ones reach them on purpose):");
  for (const s of SITUATIONS) {
    const n = results.reduce((k, r) => k + (r.reached[s] ?? 0), 0);
    console.log(`  ${String(n).padStart(7)}  ${((100 * n) / runs).toFixed(2).padStart(6)} %  ${s}`);
  }
  console.log(`\nfailover time (ms), from the failure to the survivor serving standalone:\n${formatTable(timingTable(results.flatMap((r) => r.liveness)))}`);
  for (const f of failures) console.error(`\n${f.failure}`);
  console.log(failures.length === 0 ? "\ninvariant held: never two nodes serving at once" : `\n${failures.length} worker(s) found a failure`);
  process.exit(failures.length === 0 ? 0 : 1);
}
