import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Two runtimes, two projects: the Worker and its Durable Objects run inside
// workerd; the protocol core, the simulation and the agent run in Node.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          environment: "node",
          include: ["test/protocol/**/*.test.ts", "test/sim/**/*.test.ts", "test/agent/**/*.test.ts"],
        },
      },
      {
        plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" } })],
        test: {
          name: "workerd",
          include: ["test/service/**/*.test.ts"],
        },
      },
    ],
  },
});
