/**
 * The status pages in real headless Chromium (Debian's, driven by playwright-core) against
 * `wrangler dev`: the login form, the pair list, a pair's state changing after a failover, and a
 * screenshot under test-output/.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HeartbeatBody } from "../../src/api/schemas.js";
import { useDevServer } from "./dev.js";

const CHROMIUM = "/usr/bin/chromium";

function chromiumAvailable(): boolean {
  try {
    execFileSync(CHROMIUM, ["--version"], { stdio: "pipe" });
    return true;
  } catch {
    if (process.env.CI === "true") throw new Error("chromium is missing: .ci/run installs it");
    return false;
  }
}

const have = chromiumAvailable();
const dev = useDevServer(have);
let browser: BrowserContext;

beforeAll(async () => {
  if (!have) return;
  // A fresh profile each run; no network but loopback (background networking off).
  browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "chromium-")), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 390, height: 844 },
    // The pages' CSP allows no script at all; this test's own probes (waitForFunction) are script.
    bypassCSP: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}, 120_000);
afterAll(async () => {
  await browser?.close();
});

const api = async (method: string, path: string, token: string, body?: unknown) =>
  (await dev.request<Record<string, unknown>>(method, path, { token, body })).body;

let seq = 0;
const beat = (pairId: string, token: string, node: string, over: Partial<HeartbeatBody> = {}) =>
  api("POST", `/v1/pairs/${pairId}/heartbeat`, token, {
    nodeId: node,
    bootId: "page",
    seq: ++seq,
    epoch: 0,
    configVersion: 1,
    qmp: { ok: true },
    colo: { mode: node === "a" ? "primary" : "secondary" },
    vm: { running: true, status: "running" },
    qemu: { pid: node === "a" ? 1 : 2, startedAt: 1 },
    peer: { replicating: true },
    watchdog: { armed: true, timeoutMs: 1000 },
    ...over,
  });

describe.skipIf(!have)("status pages in Chromium", () => {
  it("logs in, shows the pair, and shows its state change after a failover", async () => {
    const created = await api("PUT", "/v1/pairs/web1", dev.adminToken, {
      nodes: [{ id: "a", role: "primary" }, { id: "b", role: "secondary" }],
      heartbeatIntervalMs: 200,
      leaseMs: 2200,
      fenceLatencyMs: 300,
      replicationStallMs: 400,
      failsafe: false,
    });
    const tokens = created.agentTokens as Record<string, string>;
    await beat("web1", tokens.a!, "a");
    await beat("web1", tokens.b!, "b");

    const page = await browser.newPage();
    await page.goto(`${dev.url}/`);
    expect(await page.locator("form.login").count()).toBe(1);
    expect(await page.content()).not.toContain("web1");
    await page.fill("input[name=token]", "wrong-token-wrong-token-wrong-token");
    await page.click("button[type=submit]");
    expect(await page.textContent("body")).toContain("That token is not accepted.");
    await page.fill("input[name=token]", dev.adminToken);
    await page.click("button[type=submit]");
    await page.waitForSelector("text=web1");
    expect(await page.textContent("table")).toContain("protected");

    await page.click("text=web1");
    await page.waitForSelector("h1");
    expect(await page.textContent("h1")).toContain("protected");

    // The primary goes silent; the secondary reports replication broken until it is ordered to take over.
    let order: { id: string } | null = null;
    for (let i = 0; i < 60 && !order; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const r = await beat("web1", tokens.b!, "b", { peer: { replicating: false } });
      order = r.order as { id: string } | null;
    }
    expect(order).not.toBeNull();
    await beat("web1", tokens.b!, "b", { colo: { mode: "none" }, peer: { replicating: false }, ack: { orderId: order!.id, state: "ok" } });
    // The survivor keeps beating, as its agent would.
    const keepBeating = setInterval(() => void beat("web1", tokens.b!, "b", { colo: { mode: "none" }, peer: { replicating: false } }), 200);

    // The page refreshes itself.
    try {
      await page.waitForFunction("document.querySelector('h1')?.textContent?.includes('solo')", undefined, { timeout: 15_000 });
    } finally {
      clearInterval(keepBeating);
    }
    expect(await page.textContent("body")).toContain("failover completed");
    mkdirSync("test-output", { recursive: true });
    await page.screenshot({ path: "test-output/status-page.png", fullPage: true });
    const cookies = await browser.cookies();
    expect(cookies.find((c) => c.name === "colo_arbiter_session")).toMatchObject({ httpOnly: true, secure: true, sameSite: "Strict" });
  }, 90_000);

  it("says on the page when a refresh fails, keeps the last view, and recovers (its script allowed by the pages' own CSP)", async () => {
    // A context that honours the CSP: the refresh script must be allowed by it.
    const strict = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "chromium-")), {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      const page = await strict.newPage();
      const blocked: string[] = [];
      page.on("console", (m) => {
        if (/Content Security Policy/i.test(m.text())) blocked.push(m.text());
      });
      await page.goto(`${dev.url}/`);
      await page.fill("input[name=token]", dev.adminToken);
      await page.click("button[type=submit]");
      await page.waitForSelector("text=web1");
      await page.goto(`${dev.url}/pairs/web1`);
      await page.waitForSelector("h1");
      await dev.halt();
      try {
        await page.waitForSelector("#refresh-error:not([hidden])", { timeout: 30_000 });
        expect(await page.textContent("#refresh-error")).toMatch(/^Refresh failed at \d\d:\d\d:\d\d UTC \(.+\): showing the state as of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.$/);
        // The last view stays.
        expect(await page.textContent("h1")).toContain("web1");
        mkdirSync("test-output", { recursive: true });
        await page.screenshot({ path: "test-output/status-page-refresh-failed.png", fullPage: true });
      } finally {
        await dev.resume();
      }
      await page.waitForSelector("#refresh-error[hidden]", { state: "attached", timeout: 60_000 });
      expect(blocked).toEqual([]);
    } finally {
      await strict.close();
    }
  }, 120_000);

  it("renders the API reference without a login", async () => {
    const page = await browser.newPage();
    await page.goto(`${dev.url}/api`);
    expect(await page.textContent("body")).toContain("/v1/pairs/{pairId}/heartbeat");
  });
});
