/**
 * One fake QEMU as its own process (so its pidfile and a kill by pid are real):
 *   tsx src/demo/fake-qemu-main.ts --qmp PATH --pidfile PATH --role primary|secondary --link PATH [--checkpoint-ms N]
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { FakeQemu } from "./fake-qemu.js";

const { values: a } = parseArgs({
  options: { qmp: { type: "string" }, pidfile: { type: "string" }, role: { type: "string" }, link: { type: "string" }, "checkpoint-ms": { type: "string", default: "500" } },
});
if (!a.qmp || !a.pidfile || !a.link || (a.role !== "primary" && a.role !== "secondary")) {
  process.stderr.write("usage: fake-qemu-main --qmp PATH --pidfile PATH --role primary|secondary --link PATH [--checkpoint-ms N]\n");
  process.exit(2);
}
const q = new FakeQemu(a.role);
Object.defineProperty(q, "path", { value: a.qmp });
await q.listen();
if (a.role === "secondary") await q.serveLink(a.link);
else {
  for (let i = 0; ; i++) {
    try {
      await q.connectLink(a.link, Number(a["checkpoint-ms"]));
      break;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
writeFileSync(a.pidfile, `${process.pid}\n`);
process.on("SIGTERM", () => process.exit(0));
