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
          include: ["test/protocol/**/*.test.ts", "test/sim/**/*.test.ts", "test/agent/**/*.test.ts", "test/e2e/**/*.test.ts", "test/colo/**/*.test.ts"],
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            // TEST_CLOCK lets alarm tests move the pair object's clock; the admin token is a test value.
            miniflare: {
              bindings: {
                TEST_CLOCK: "1",
                ARBITER_ADMIN_TOKEN: "test-admin-token-0123456789abcdefghij",
                ALLOW_INSECURE_SINKS: "1",
                PUBLIC_BASE_URL: "https://arbiter.test",
                SINK_TIMEOUT_MS: "200",
                STATUS_TOKEN: "test-status-token-0123456789abcdefghij",
                METRICS_TOKEN: "short",
              },
            },
          }),
        ],
        test: {
          name: "workerd",
          include: ["test/service/**/*.test.ts"],
        },
      },
    ],
  },
});
