/** `npm run demo` on this checkout: it must end by itself, clean up, and exit 0 only after a real takeover. */
import { spawnSync } from "node:child_process";
import { expect, it } from "vitest";

it("runs the demo: the secondary takes over after the primary's host is killed, and the rebuilt host makes the pair protected again", () => {
  const r = spawnSync("npx", ["--no-install", "tsx", "src/demo/demo.ts"], { encoding: "utf8", timeout: 120_000 });
  expect(r.stdout).toMatch(/order_issued: failover demo:\d+ to host-b/);
  expect(r.stdout).toMatch(/host-b serves: COLO mode none, last-mode secondary, reason request, running/);
  expect(r.stdout).toMatch(/order_issued: reprotect demo:\d+ to host-b/);
  expect(r.stdout).toMatch(/protected again \d+ ms after the -incoming QEMU started: host-b primary, host-a secondary/);
  expect(r.status).toBe(0);
}, 150_000);
