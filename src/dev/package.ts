/**
 * npm run package: the agent as one file per binary (no node_modules on the hypervisor), and a
 * Debian package of it: dist/colo-arbiter-agent.mjs, dist/colo-arbiter-watchdog.mjs,
 * dist/colo-arbiter-agent_<version>_all.deb (the files, the systemd units, an example settings
 * file, Depends: nodejs (>= 20)).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");

export interface Packaged {
  agent: string;
  keeper: string;
  deb: string;
  version: string;
}

/** Bundles both binaries into `outDir` and builds the .deb there. */
export async function packageAgent(outDir = join(ROOT, "dist")): Promise<Packaged> {
  const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
  mkdirSync(outDir, { recursive: true });
  const bundle = async (entry: string, out: string) => {
    await build({
      entryPoints: [join(ROOT, entry)],
      outfile: out,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      legalComments: "inline",
      define: { __COLO_ARBITER_VERSION__: JSON.stringify(version) },
      // ws loads these native speed-ups if present and runs without them.
      external: ["bufferutil", "utf-8-validate"],
      // CommonJS dependencies (ws) require Node's built-ins: give the ESM bundle a require.
      banner: { js: 'import { createRequire as __createRequire } from "node:module";\nconst require = __createRequire(import.meta.url);' },
      logLevel: "warning",
    });
    chmodSync(out, 0o755);
  };
  const agent = join(outDir, "colo-arbiter-agent.mjs");
  const keeper = join(outDir, "colo-arbiter-watchdog.mjs");
  await bundle("src/agent/cli.ts", agent);
  await bundle("src/agent/keeper-cli.ts", keeper);
  const deb = join(outDir, `colo-arbiter-agent_${version}_all.deb`);
  buildDeb(version, agent, keeper, deb);
  return { agent, keeper, deb, version };
}

function buildDeb(version: string, agent: string, keeper: string, deb: string) {
  const root = mkdtempSync(join(tmpdir(), "colo-deb-"));
  const put = (from: string, to: string, mode: number) => {
    mkdirSync(dirname(join(root, to)), { recursive: true });
    copyFileSync(from, join(root, to));
    chmodSync(join(root, to), mode);
  };
  const src = (p: string) => join(ROOT, p);
  try {
    // Scripts with a #! line: executable, though the units run them through node.
    put(agent, "usr/lib/colo-arbiter/colo-arbiter-agent.mjs", 0o755);
    put(keeper, "usr/lib/colo-arbiter/colo-arbiter-watchdog.mjs", 0o755);
    put(src("src/agent/systemd/colo-arbiter-agent@.service"), "lib/systemd/system/colo-arbiter-agent@.service", 0o644);
    put(src("src/agent/systemd/colo-arbiter-watchdog.service"), "lib/systemd/system/colo-arbiter-watchdog.service", 0o644);
    put(src("src/agent/debian/example.json"), "usr/share/doc/colo-arbiter-agent/examples/example.json", 0o644);
    put(src("src/agent/debian/README.Debian"), "usr/share/doc/colo-arbiter-agent/README.Debian", 0o644);
    put(src("src/agent/debian/copyright"), "usr/share/doc/colo-arbiter-agent/copyright", 0o644);
    const changelog = `colo-arbiter-agent (${version}) unstable; urgency=medium\n\n  * Release ${version}.\n\n -- colo-arbiter developers <colo-arbiter@example.org>  ${debianDate()}\n`;
    mkdirSync(join(root, "usr/share/doc/colo-arbiter-agent"), { recursive: true });
    writeFileSync(join(root, "usr/share/doc/colo-arbiter-agent/changelog.gz"), gzipSync(changelog, { level: 9 }));
    chmodSync(join(root, "usr/share/doc/colo-arbiter-agent/changelog.gz"), 0o644);
    mkdirSync(join(root, "DEBIAN"));
    const installedKiB = Math.ceil(files(root).reduce((n, f) => n + statSync(f).size, 0) / 1024);
    const control = readFileSync(src("src/agent/debian/control"), "utf8").replace("@VERSION@", version).replace("Depends:", `Installed-Size: ${installedKiB}\nDepends:`);
    writeFileSync(join(root, "DEBIAN/control"), control);
    const sums = files(root)
      .filter((f) => !relative(root, f).startsWith("DEBIAN"))
      .map((f) => `${createHash("md5").update(readFileSync(f)).digest("hex")}  ${relative(root, f)}`)
      .join("\n");
    writeFileSync(join(root, "DEBIAN/md5sums"), `${sums}\n`);
    for (const d of dirs(root)) chmodSync(d, 0o755);
    execFileSync("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", root, deb], { stdio: "pipe" });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

function dirs(dir: string): string[] {
  return [dir, ...readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => dirs(join(dir, e.name)))];
}

/** RFC 2822, as Debian changelogs want it. */
function debianDate(): string {
  return new Date().toUTCString().replace("GMT", "+0000");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const p = await packageAgent();
  console.log(`${relative(ROOT, p.agent)}\n${relative(ROOT, p.keeper)}\n${relative(ROOT, p.deb)}`);
}
