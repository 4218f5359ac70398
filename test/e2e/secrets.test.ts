/** No committed file and no deploy bundle holds the admin token `npm run dev` generates. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

it("keeps the dev admin token out of the repository and of a `wrangler deploy` bundle", () => {
  execFileSync("npx", ["--no-install", "tsx", "src/dev/ensure-dev-vars.ts"], { stdio: "pipe" });
  const token = /^ARBITER_ADMIN_TOKEN=(\S+)$/m.exec(readFileSync(".dev.vars", "utf8"))![1]!;
  expect(token.length).toBeGreaterThanOrEqual(32);
  expect(execFileSync("git", ["check-ignore", ".dev.vars"]).toString().trim()).toBe(".dev.vars");

  const tracked = execFileSync("git", ["ls-files", "-z"]).toString().split("\0").filter(Boolean);
  for (const f of tracked) {
    const text = readFileSync(f, "utf8");
    expect(text.includes(token), f).toBe(false);
  }
  expect(readFileSync("wrangler.toml", "utf8")).not.toMatch(/ARBITER_ADMIN_TOKEN\s*=/);

  const out = mkdtempSync(join(tmpdir(), "colo-arbiter-bundle-"));
  try {
    execFileSync("npx", ["--no-install", "wrangler", "deploy", "--dry-run", "--outdir", out], {
      stdio: "pipe",
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    });
    const bundle = files(out);
    expect(bundle.length).toBeGreaterThan(0);
    for (const f of bundle) expect(readFileSync(f, "utf8").includes(token), f).toBe(false);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 120_000);
