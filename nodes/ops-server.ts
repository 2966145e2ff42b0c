/**
 * Nodes without the edge (worker nodes) still answer operators and orchestrators on PORT:
 * GET /health (alive), GET /ready (the broker is up and not stopping), GET /metrics
 * (Prometheus text) and GET /status (the cluster's status page). Plain node:http: no client
 * traffic ever reaches this server.
 */
import http from "node:http";
import type { ServiceBroker } from "moleculer";
import type { ScrapeOnlyPrometheusReporter } from "../actors/edge/prometheus-text";
import { errorBody, ERRORS } from "../actors/common/errors";
import { statusPageReply } from "../actors/status/status.service";

export function startOpsServer(
  broker: ServiceBroker,
  prometheus: ScrapeOnlyPrometheusReporter,
  host: string,
  port: number,
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const json = (status: number, body: unknown) =>
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (req.method !== "GET") return json(405, { error: { code: "method_not_allowed", message: "GET only" } });
    switch (req.url) {
      case "/health":
        return json(200, { status: "ok", node: broker.nodeID });
      case "/ready":
        return broker.started && !broker.stopping
          ? json(200, { status: "ready" })
          : json(503, { status: "not_ready", reason: "broker is not running" });
      case "/metrics":
        return res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(prometheus.render());
      case "/status":
        return void statusPageReply(broker, req.headers.accept).then(
          (reply) => res.writeHead(reply.status, { "content-type": reply.contentType }).end(reply.body),
          (error: unknown) => {
            // As the edge answers a failed route: logged here, the error model's `internal` to the caller.
            broker.logger.error({ err: error }, "status page failed");
            res.writeHead(ERRORS.internal.status, { "content-type": "application/json" }).end(errorBody("internal"));
          },
        );
      default:
        return json(404, { error: { code: "not_found", message: "No such endpoint" } });
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
