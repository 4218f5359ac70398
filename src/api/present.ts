/** Words for what the status shows, the same in the CLI and on the pages. */
import type { ResyncProgress } from "../protocol/types.js";

export function describeResync(p: ResyncProgress): string {
  if (p.phase === "mirror") return `resync: mirroring the disk, ${p.percent} %`;
  if (p.phase === "paused") return "resync: guest paused for the last copy";
  return `resync: COLO running (the guest paused ${p.pausedMs} ms)`;
}
