/**
 * The agent as it is installed on a hypervisor: one file per binary that runs with a plain `node`
 * and no node_modules, and a Debian package of them that dpkg-deb reads, lintian passes, and
 * whose systemd units systemd-analyze accepts.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Packaged, packageAgent } from "../../src/dev/package.js";

const out = mkdtempSync(join(tmpdir(), "colo-package-"));
let p: Packaged;

beforeAll(async () => {
  p = await packageAgent(out);
}, 120_000);
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("the one-file agent", () => {
  it("runs from a directory with nothing else in it", () => {
    const bare = mkdtempSync(join(tmpdir(), "colo-bare-"));
    try {
      for (const f of [p.agent, p.keeper]) copyFileSync(f, join(bare, f.split("/").pop()!));
      const run = (file: string, arg: string) => spawnSync(process.execPath, [join(bare, file), arg], { cwd: bare, encoding: "utf8", timeout: 60_000 });
      const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
      for (const file of ["colo-arbiter-agent.mjs", "colo-arbiter-watchdog.mjs"]) {
        const v = run(file, "--version");
        expect(v.status, v.stderr).toBe(0);
        expect(v.stdout.trim()).toBe(version);
        const h = run(file, "--help");
        expect(h.status, h.stderr).toBe(0);
        expect(h.stdout).toMatch(/^usage: colo-arbiter-/);
      }
      // A setting error is the agent's own message, not a missing module.
      const bad = spawnSync(process.execPath, [join(bare, "colo-arbiter-agent.mjs"), "--arbiter", "http://203.0.113.1"], { cwd: bare, encoding: "utf8", timeout: 60_000 });
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/pair|node|tokenFile/);
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });
});

describe("the Debian package", () => {
  it("holds the two files, the units and an example, depends on nodejs >= 20, and lintian finds nothing wrong", () => {
    expect(execFileSync("dpkg-deb", ["--field", p.deb, "Package", "Version", "Depends", "Architecture"], { encoding: "utf8" })).toBe(
      `Package: colo-arbiter-agent\nVersion: ${p.version}\nDepends: nodejs (>= 20)\nArchitecture: all\n`,
    );
    const contents = execFileSync("dpkg-deb", ["--contents", p.deb], { encoding: "utf8" });
    for (const f of [
      "./usr/lib/colo-arbiter/colo-arbiter-agent.mjs",
      "./usr/lib/colo-arbiter/colo-arbiter-watchdog.mjs",
      "./lib/systemd/system/colo-arbiter-agent@.service",
      "./lib/systemd/system/colo-arbiter-watchdog.service",
      "./usr/share/doc/colo-arbiter-agent/examples/example.json",
      "./usr/share/doc/colo-arbiter-agent/copyright",
    ]) {
      expect(contents).toContain(f);
    }
    expect(contents).not.toContain("node_modules");
    const lint = spawnSync("lintian", ["--tag-display-limit", "0", p.deb], { encoding: "utf8", timeout: 300_000 });
    expect(lint.error, "lintian is installed (apt-get install lintian)").toBeUndefined();
    const findings = `${lint.stdout}\n${lint.stderr}`.split("\n").filter((l) => /^[EW]: /.test(l));
    expect(findings).toEqual([]);
  }, 300_000);

  it("ships systemd units that systemd-analyze accepts, hardened as docs/agent.md says", () => {
    const units = mkdtempSync(join(tmpdir(), "colo-units-"));
    try {
      execFileSync("dpkg-deb", ["--extract", p.deb, units]);
      const agent = join(units, "lib/systemd/system/colo-arbiter-agent@.service");
      // A template is verified through an instance of it.
      copyFileSync(agent, join(units, "colo-arbiter-agent@web1.service"));
      const verify = spawnSync("systemd-analyze", ["verify", join(units, "colo-arbiter-agent@web1.service"), join(units, "lib/systemd/system/colo-arbiter-watchdog.service")], { encoding: "utf8" });
      expect(verify.error, "systemd-analyze is installed").toBeUndefined();
      expect(verify.stderr.trim()).toBe("");
      const text = readFileSync(agent, "utf8");
      for (const line of ["NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/run/colo-arbiter", "PrivateTmp=yes", "DeviceAllow=/dev/watchdog rw", "UMask=0077", "StartLimitIntervalSec=0", "ExecStart=/usr/bin/node /usr/lib/colo-arbiter/colo-arbiter-agent.mjs"]) {
        expect(text).toContain(line);
      }
    } finally {
      rmSync(units, { recursive: true, force: true });
    }
  });
});
