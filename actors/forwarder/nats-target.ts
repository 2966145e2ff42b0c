/**
 * Forwarding to a NATS subject (FORWARD_SUBJECT) instead of HTTP. If a JetStream stream captures
 * the subject, the publish is acknowledged by JetStream (durable hand-off, retried until acked);
 * otherwise it is a core NATS publish followed by a flush: the server has it, and delivery to
 * subscribers is NATS's usual at-most-once. The batch travels as JSON `{"events":[...]}`, like
 * the HTTP target, so consumers need no msgpack.
 */
import { ErrorCode, NatsError, type NatsConnection } from "nats";
import type { IngestEvent } from "../common/event";

export function createNatsTarget(nc: NatsConnection, subject: string, timeoutMs: number): (events: readonly IngestEvent[]) => Promise<void> {
  const js = nc.jetstream();
  let jetStreamCaptures = true;
  return async (events) => {
    const data = Buffer.from(JSON.stringify({ events }));
    if (jetStreamCaptures) {
      try {
        await js.publish(subject, data, { timeout: timeoutMs });
        return;
      } catch (error) {
        // No stream listens on the subject: fall back to core NATS from now on.
        if (!(error instanceof NatsError && error.code === ErrorCode.NoResponders)) throw error;
        jetStreamCaptures = false;
      }
    }
    nc.publish(subject, data);
    await nc.flush();
  };
}
