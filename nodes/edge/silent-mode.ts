/**
 * Silent mode, for tenants whose clients were written against the original Go service (seed
 * 000): it answered every request `200 {"success":true,"processed":n}` and never exposed an
 * error, and such clients treat anything else as a failure to retry forever. For those tenants
 * only, the edge keeps that contract: whatever really happened (rejections, rate limits, an
 * unavailable durable path), the answer is the seed's, with `processed` = events acknowledged
 * as durable. What really happened is still counted in the metrics (by the real status and
 * rejection reason); the honest default for every other tenant is the real status code.
 */
import type { HttpReply } from "./http-server";

export function silentReply(reply: HttpReply): HttpReply {
  const processed = reply.status >= 200 && reply.status < 300 ? (reply.accepted ?? 0) : 0;
  return { status: 200, body: JSON.stringify({ success: true, processed }), accepted: processed };
}
