/**
 * The release's version. The one-file agent (npm run package) has it compiled in; the tsc build
 * reads it from the package beside it.
 */
import { readFileSync } from "node:fs";

declare const __COLO_ARBITER_VERSION__: string | undefined;

export function version(): string {
  if (typeof __COLO_ARBITER_VERSION__ === "string") return __COLO_ARBITER_VERSION__;
  return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}
