/**
 * Moleculer's Prometheus reporter opens its own HTTP port. We want the same text on the edge's
 * port (GET /metrics), so this reporter reuses Moleculer's formatter and never listens.
 */
import { MetricReporters } from "moleculer";

type Registry = { broker: unknown; logger: unknown };

interface PrometheusInternals {
  registry: Registry;
  broker: unknown;
  logger: unknown;
  defaultLabels: unknown;
  opts: { defaultLabels?: unknown };
  generatePrometheusResponse(): string;
}

const PrometheusBase = MetricReporters.Prometheus as unknown as new (opts?: Record<string, unknown>) => object;

export class ScrapeOnlyPrometheusReporter extends PrometheusBase {
  constructor() {
    super({ port: 0, defaultLabels: (registry: { broker: { nodeID: string } }) => ({ nodeID: registry.broker.nodeID }) });
  }

  init(registry: Registry): void {
    const self = this as unknown as PrometheusInternals;
    self.registry = registry;
    self.broker = registry.broker;
    self.logger = registry.logger;
    const labels = self.opts.defaultLabels;
    self.defaultLabels = typeof labels === "function" ? (labels as (r: Registry) => unknown).call(this, registry) : labels;
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  /** The Prometheus text exposition of every metric in the registry. */
  render(): string {
    return (this as unknown as PrometheusInternals).generatePrometheusResponse();
  }
}
