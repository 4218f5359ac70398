/**
 * One fake QEMU as its own process (so its pidfile and a kill by pid are real):
 *   tsx src/demo/fake-qemu-main.ts --qmp PATH --pidfile PATH --role primary|secondary --link PATH [--checkpoint-ms N]
 *   tsx src/demo/fake-qemu-main.ts --qmp PATH --pidfile PATH --role incoming --migrate-port N
 * An incoming one waits, as `-incoming tcp:...`, for a survivor's re-protection to make it the secondary.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { FakeQemu } from "./fake-qemu.js";

const USAGE = "usage: fake-qemu-main --qmp PATH --pidfile PATH (--role primary|secondary --link PATH [--checkpoint-ms N] | --role incoming --migrate-port N)\n";
const { values: a } = parseArgs({
  options: {
    qmp: { type: "string" },
    pidfile: { type: "string" },
    role: { type: "string" },
    link: { type: "string" },
    "migrate-port": { type: "string" },
    "checkpoint-ms": { type: "string", default: "500" },
  },
});
const role = a.role;
const valid = a.qmp && a.pidfile && (role === "incoming" ? a["migrate-port"] : a.link && (role === "primary" || role === "secondary"));
if (!valid) {
  process.stderr.write(USAGE);
  process.exit(2);
}
const q = role === "incoming" ? new FakeQemu("none", { status: "inmigrate", running: false }) : new FakeQemu(role as "primary" | "secondary");
Object.defineProperty(q, "path", { value: a.qmp });
await q.listen();
if (role === "incoming") await q.serveLink({ port: Number(a["migrate-port"]) });
else if (role === "secondary") await q.serveLink(a.link!);
else {
  for (let i = 0; ; i++) {
    try {
      await q.connectLink(a.link!, Number(a["checkpoint-ms"]));
      break;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
writeFileSync(a.pidfile!, `${process.pid}\n`);
process.on("SIGTERM", () => process.exit(0));
