import { ServiceBroker } from "moleculer";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../config/env";
import { BROKER_MIDDLEWARES, createBrokerSetup } from "../../moleculer.config";

const brokers: ServiceBroker[] = [];

function broker(options: ConstructorParameters<typeof ServiceBroker>[0]): ServiceBroker {
  const b = new ServiceBroker({ logger: false, ...options });
  brokers.push(b);
  return b;
}

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((b) => b.stop()));
});

describe("broker options: Moleculer's middlewares without per-call metrics", () => {
  const setup = createBrokerSetup(loadConfig({ LOG_LEVEL: "silent" }));

  it("registers every built-in middleware except Metrics, in the built-in order", async () => {
    expect(BROKER_MIDDLEWARES).not.toContain("Metrics");
    const ours = broker({ ...setup.options, logger: false });
    // The same options with Moleculer's own list: exactly one middleware (Metrics) more.
    const builtIn = broker({ ...setup.options, logger: false, internalMiddlewares: true, middlewares: [] });
    expect(builtIn.middlewares.count()).toBe(ours.middlewares.count() + 1);
  });

  it("keeps the product's metrics and collects no moleculer_request_* series", async () => {
    const requestSeries = async (b: ServiceBroker): Promise<number> => {
      b.createService({ name: "echo", actions: { say: (ctx: { params: { x: number } }) => ctx.params.x } });
      await b.start();
      expect(await b.call("echo.say", { x: 7 })).toBe(7);
      return (b.metrics.getMetric("moleculer.request.total") as unknown as { values: Map<string, unknown> } | null)?.values.size ?? 0;
    };
    const ours = broker({ ...setup.options, logger: false });
    ours.metrics.register({ type: "counter", name: "ingest.test.counter" });
    expect(await requestSeries(ours)).toBe(0);
    ours.metrics.increment("ingest.test.counter");
    expect(ours.metrics.getMetric("ingest.test.counter")?.get()?.value).toBe(1);
    // Control: Moleculer's own list does collect them.
    expect(await requestSeries(broker({ ...setup.options, logger: false, internalMiddlewares: true, middlewares: [] }))).toBeGreaterThan(0);
  });

  it("leaves SIGTERM and SIGINT to the node's ordered shutdown", () => {
    expect(setup.options.skipProcessEventRegistration).toBe(true);
    const before = process.listenerCount("SIGTERM");
    broker(setup.options);
    expect(process.listenerCount("SIGTERM")).toBe(before);
  });

  it("still enforces call timeouts (the Timeout middleware is in the list)", async () => {
    const b = broker({ ...setup.options, logger: false });
    b.createService({ name: "slow", actions: { wait: () => new Promise((r) => setTimeout(r, 500)) } });
    await b.start();
    await expect(b.call("slow.wait", {}, { timeout: 50 })).rejects.toThrow(/timed out/i);
  });
});
