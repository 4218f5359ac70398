/**
 * `npm run dev` runs this first: a fresh clone has no .dev.vars, so it writes one with a random
 * admin token (git-ignored, never committed) and says where it is.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

const path = resolve(".dev.vars");
const has = existsSync(path) && /^ARBITER_ADMIN_TOKEN=\S{32,}$/m.test(readFileSync(path, "utf8"));
if (!has) {
  const token = randomBytes(32).toString("base64url");
  const keep = existsSync(path) ? readFileSync(path, "utf8").replace(/^ARBITER_ADMIN_TOKEN=.*\n?/m, "") : "";
  writeFileSync(path, `${keep}ARBITER_ADMIN_TOKEN=${token}\n`, { mode: 0o600 });
  console.log(`wrote a new admin token to ${path}`);
}
console.log(`admin token: ARBITER_ADMIN_TOKEN in ${path} (export COLO_ARBITER_TOKEN=$(sed -n 's/^ARBITER_ADMIN_TOKEN=//p' .dev.vars))`);
