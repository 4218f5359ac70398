/** Summaries of simulation runs: the failover-time table printed by the test and `npm run simulate`. */
import type { LivenessCase, LivenessResult } from "./run.js";

export interface TimingRow {
  setting: string;
  runs: number;
  p50: number;
  p99: number;
  max: number;
  /** The largest measured time as a share of its own bound. */
  worstOfBound: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

export function timingTable(results: { lc: LivenessCase; r: LivenessResult }[]): TimingRow[] {
  const groups = new Map<string, { ms: number[]; worst: number }>();
  for (const { lc, r } of results) {
    if (r.ms === null) continue;
    const key = `failsafe ${r.failsafe ? "on " : "off"}, ${lc.victim} lost`;
    const g = groups.get(key) ?? { ms: [], worst: 0 };
    g.ms.push(r.ms);
    g.worst = Math.max(g.worst, r.ms / r.boundMs);
    groups.set(key, g);
  }
  return [...groups.entries()].sort().map(([setting, g]) => {
    const s = g.ms.sort((a, b) => a - b);
    return { setting, runs: s.length, p50: quantile(s, 0.5), p99: quantile(s, 0.99), max: s[s.length - 1]!, worstOfBound: g.worst };
  });
}

export function formatTable(rows: TimingRow[]): string {
  const head = "| setting | runs | p50 ms | p99 ms | max ms | worst / bound |\n|---|---:|---:|---:|---:|---:|";
  const body = rows.map((r) => `| ${r.setting} | ${r.runs} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.max.toFixed(0)} | ${(r.worstOfBound * 100).toFixed(0)} % |`);
  return [head, ...body].join("\n");
}
