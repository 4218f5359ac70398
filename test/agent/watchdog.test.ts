import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openWatchdog, readDriver, stopsOnClose, sysfsTimeoutMs } from "../../src/agent/watchdog.js";
import { FakeQemu } from "../../src/demo/fake-qemu.js";
import { type Rig, rig, until } from "./harness.js";

/** A watchdog device that is a plain file, and its sysfs attributes. */
function fakeDevice(timeoutS = 1, attrs: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "wd-"));
  const dev = join(dir, "watchdog1");
  writeFileSync(dev, "");
  mkdirSync(join(dir, "sys", "watchdog1"), { recursive: true });
  writeFileSync(join(dir, "sys", "watchdog1", "timeout"), `${timeoutS}\n`);
  for (const [k, v] of Object.entries(attrs)) writeFileSync(join(dir, "sys", "watchdog1", k), `${v}\n`);
  return { dev, sysfs: join(dir, "sys"), written: () => readFileSync(dev, "utf8") };
}

const rigs: Rig[] = [];
const fakes: FakeQemu[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) r.stop();
  for (const f of fakes.splice(0)) await f.stop();
});

describe("watchdog", () => {
  it("reads from sysfs whether the driver keeps counting when a dying agent's device closes", () => {
    // softdog: WDIOF_SETTIMEOUT | WDIOF_MAGICCLOSE | WDIOF_KEEPALIVEPING
    const soft = fakeDevice(1, { options: "0x8180", nowayout: "0", identity: "Software Watchdog" });
    expect(readDriver(soft.dev, soft.sysfs)).toEqual({ timeoutMs: 1000, magicClose: true, nowayout: false, identity: "Software Watchdog" });
    expect(stopsOnClose(readDriver(soft.dev, soft.sysfs))).toBe(false);
    const plain = fakeDevice(1, { options: "0x8080", nowayout: "0" });
    expect(stopsOnClose(readDriver(plain.dev, plain.sysfs))).toBe(true);
    const locked = fakeDevice(1, { options: "0x8080", nowayout: "1" });
    expect(stopsOnClose(readDriver(locked.dev, locked.sysfs))).toBe(false);
    // An older kernel without the options attribute: not reported, not assumed.
    const old = fakeDevice(1);
    expect(readDriver(old.dev, old.sysfs)).toMatchObject({ magicClose: null, nowayout: null });
    expect(stopsOnClose(readDriver(old.dev, old.sysfs))).toBe(false);
  });

  it("reads W back from sysfs, pets by writing, and disarms with the magic character", () => {
    const d = fakeDevice(2);
    expect(sysfsTimeoutMs(d.dev, d.sysfs)).toBe(2000);
    const wd = openWatchdog(d.dev, d.sysfs);
    expect(wd.timeoutMs).toBe(2000);
    wd.tend(true, 5000);
    wd.tend(false, 5000);
    wd.tend(true, 5000);
    wd.disarm();
    expect(d.written()).toBe("\0\0V");
    expect(wd.armed).toBe(false);
  });

  it("is petted while the node has W of lease left, and no longer once its lease runs short", async () => {
    const d = fakeDevice(1);
    const fake = await new FakeQemu("primary").listen();
    fakes.push(fake);
    let grant = true;
    const r = rig(fake, () => (grant ? {} : { lease: { granted: false, ms: 0 } }), { watchdog: openWatchdog(d.dev, d.sysfs), keptLease: true });
    rigs.push(r);
    void r.agent.start();
    await until(() => d.written().length >= 3, 3000, "pets");
    expect(r.beats.at(-1)!.watchdog).toEqual({ armed: true, timeoutMs: 1000, stopsOnClose: false });
    grant = false;
    // Lease 2100 ms, W 1000 ms: petting stops about 1100 ms after the last grant, before the fence (at 1900 ms).
    await new Promise((res) => setTimeout(res, 1350));
    const after = d.written().length;
    await new Promise((res) => setTimeout(res, 400));
    expect(d.written().length).toBe(after);
    // Then the lease ends and the agent fences; a node that cannot serve is petted again.
    await until(() => !fake.state.running, 3000, "the fence");
    await until(() => d.written().length > after, 3000, "petting after the fence");
    r.stop();
    expect(d.written().endsWith("V")).toBe(true);
  });
});
