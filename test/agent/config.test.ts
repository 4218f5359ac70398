import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadSettings } from "../../src/agent/config.js";

const FLAGS = ["--arbiter", "https://arbiter.example.com", "--pair", "web1", "--node", "host-a", "--token-file", "/etc/t", "--qmp", "unix:/run/q.sock", "--pidfile", "/run/q.pid"];

describe("agent settings", () => {
  it("works from flags alone, with COLO-FT.txt's runbook ids by default", () => {
    const r = loadSettings(FLAGS);
    expect(r.ok && r.settings).toMatchObject({ pair: "web1", qmp: { kind: "unix", path: "/run/q.sock" }, watchdog: null, stateDir: "/run/colo-arbiter", ids: { quorumParent: "colo-disk0", nbdNode: null } });
  });

  it("reads a JSON file, lets flags override it, and takes runbook ids from it", () => {
    const file = join(mkdtempSync(join(tmpdir(), "cfg-")), "web1.json");
    writeFileSync(file, JSON.stringify({ arbiter: "https://a.example", pair: "web1", node: "host-b", tokenFile: "/t", qmp: "tcp:127.0.0.1:4444", pidfile: "/p", ids: { objects: ["comp0"] } }));
    const r = loadSettings(["--config", file, "--node", "host-a", "--nbd-node", "nbd0"]);
    expect(r.ok && r.settings).toMatchObject({ node: "host-a", qmp: { kind: "tcp", port: 4444 }, ids: { objects: ["comp0"], nbdNode: "nbd0", replicationNode: "replication0" } });
  });

  it("takes a host's watchdog keeper instead of a device, never both", () => {
    const r = loadSettings([...FLAGS, "--watchdog-keeper", "/run/colo-arbiter/watchdog.sock"]);
    expect(r.ok && r.settings).toMatchObject({ watchdog: null, watchdogKeeper: "/run/colo-arbiter/watchdog.sock" });
    const both = loadSettings([...FLAGS, "--watchdog", "/dev/watchdog", "--watchdog-keeper", "/run/w.sock"]);
    expect(both.ok).toBe(false);
    expect(both.ok ? "" : both.error).toMatch(/watchdogKeeper: watchdog and watchdogKeeper exclude each other/);
  });

  it("refuses an http:// arbiter off loopback unless told to insist", () => {
    const at = (url: string, ...more: string[]) => loadSettings([...FLAGS.map((f) => (f === "https://arbiter.example.com" ? url : f)), ...more]);
    const plain = at("http://arbiter.example.com");
    expect(plain.ok).toBe(false);
    expect(plain.ok ? "" : plain.error).toMatch(/arbiter: an http:\/\/ arbiter is refused unless it is on loopback/);
    expect(at("http://127.0.0.1:8787").ok).toBe(true);
    expect(at("http://localhost:8787").ok).toBe(true);
    expect(at("http://[::1]:8787").ok).toBe(true);
    expect(at("http://arbiter.example.com", "--allow-insecure-arbiter").ok).toBe(true);
  });

  it("names the field and the file in an error", () => {
    const file = join(mkdtempSync(join(tmpdir(), "cfg-")), "bad.json");
    writeFileSync(file, JSON.stringify({ arbiter: "not a url", pair: "web1", node: "a", tokenFile: "/t", qmp: "q.sock", pidfile: "/p", typo: 1 }));
    const r = loadSettings(["--config", file]);
    expect(r.ok).toBe(false);
    const error = r.ok ? "" : r.error;
    expect(error).toMatch(new RegExp(`arbiter: .*\\(flags and ${file}\\)`));
    expect(error).toMatch(/qmp: unix:\/path or tcp:host:port/);
    expect(error).toMatch(/typo|Unrecognized key/);
  });
});
