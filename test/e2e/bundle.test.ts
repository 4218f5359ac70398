/**
 * The deployed Worker ships only what runs: zod without its error-message locales (wrangler.toml
 * [alias] to src/service/zod/), built by `wrangler deploy --dry-run` as a deploy builds it.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import * as realCore from "zod/v4/core";
import * as real from "zod";
import * as ourCore from "../../src/service/zod/core.js";
import * as ours from "../../src/service/zod/index.js";

describe("the Worker bundle", () => {
  it("keeps every export of zod's but its locales, in the namespace and in core", () => {
    const names = (m: object, drop: string[]) => Object.keys(m).filter((k) => !drop.includes(k)).sort();
    expect(names(ours, [])).toEqual(names(real, ["locales"]));
    expect(names(ourCore, [])).toEqual(names(realCore, ["locales"]));
  });

  it("holds no locale and stays small (wrangler deploy --dry-run)", () => {
    const out = mkdtempSync(join(tmpdir(), "colo-bundle-"));
    try {
      execFileSync(process.execPath, ["node_modules/wrangler/bin/wrangler.js", "deploy", "--dry-run", "--outdir", out], {
        env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
        stdio: "pipe",
        timeout: 120_000,
      });
      const js = readFileSync(join(out, "index.js"));
      // German, one of zod's 60-odd locales: absent when none is bundled.
      expect(js.includes("erwartet")).toBe(false);
      // English stays: it is zod's default message set.
      expect(js.includes("Invalid input")).toBe(true);
      expect(gzipSync(js).length).toBeLessThan(150 * 1024);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 180_000);
});
