import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start real servers and node processes; two at a time fit this 2-core machine.
    maxWorkers: 2,
    reporters: ["default"],
    projects: [
      // Pure logic: nothing to install or start (`npm run test:unit`).
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
      // Real servers: the global setup installs nats-server, clickhouse-server and chDB first.
      { extends: true, test: { name: "integration", include: ["test/integration/**/*.test.ts"], globalSetup: ["test/support/global-setup.ts"] } },
    ],
  },
});
