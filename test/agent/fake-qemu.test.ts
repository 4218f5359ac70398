/** The fake QEMU pair the demo and the end-to-end tests run on must behave as its COLO stream does. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FakeQemu } from "../../src/demo/fake-qemu.js";
import { pollUntil } from "../../src/demo/poll.js";

describe("the fake COLO stream", () => {
  it("checkpoints once the primary connects, even after attempts made before the secondary listened", async () => {
    const link = join(mkdtempSync(join(tmpdir(), "fake-link-")), "link.sock");
    const primary = new FakeQemu("primary");
    const secondary = new FakeQemu("secondary");
    try {
      // The secondary is not listening yet: the attempt fails, as the primary's process retries.
      await expect(primary.connectLink(link, 50)).rejects.toThrow();
      await secondary.serveLink(link);
      await primary.connectLink(link, 50);
      expect(primary.state.streamOk).toBe(true);
      await pollUntil("a checkpoint", () => (primary.state.status === "colo" ? true : null), 5000, 5);
    } finally {
      await primary.stop();
      await secondary.stop();
    }
  });
});
