/** Reading the whole fleet: every pair the registry lists, and their statuses, many at once. */
import type { PairStatusBody } from "../api/schemas.js";
import { pairStub } from "./http.js";
import type { PairSummary } from "./registry-object.js";

type Ctx = Parameters<typeof pairStub>[0];

/** Pairs' objects asked at once, this many at a time: a fleet is read in the time of a few round trips. */
const CONCURRENCY = 32;

/** Every pair the registry lists, page by page. */
export async function allPairs(c: Ctx): Promise<PairSummary[]> {
  const registry = c.env.REGISTRY.get(c.env.REGISTRY.idFromName("registry"));
  const out: PairSummary[] = [];
  for (let cursor: string | undefined, first = true; first || cursor; first = false) {
    const page = await registry.list(500, cursor);
    if (!page) break;
    out.push(...page.pairs);
    cursor = page.next ?? undefined;
  }
  return out;
}

/** Each pair's status (as the admin sees it), in the pairs' order; a pair that answers no status is left out. */
export async function statusesOf(c: Ctx, pairs: PairSummary[]): Promise<PairStatusBody[]> {
  const out: (PairStatusBody | null)[] = new Array(pairs.length).fill(null);
  let next = 0;
  const worker = async () => {
    while (next < pairs.length) {
      const i = next++;
      const r = await pairStub(c, pairs[i]!.pairId).status({ kind: "admin" });
      if (r.ok) out[i] = r.value;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, pairs.length) }, worker));
  return out.filter((s): s is PairStatusBody => s !== null);
}
