import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start real servers and node processes; two at a time fit this 2-core machine.
    maxWorkers: 2,
    reporters: ["default"],
  },
});
