/**
 * Validates a request's events as one batch: normalise each, run the extra checks (schema packs,
 * privacy policy) the validator was built with, and split into accepted events and rejections
 * by index. A batch is partially accepted: one bad event never sinks its neighbours.
 */
import type { IngestEvent, RejectedEvent } from "../common/event";
import { normalizeEvent, type NormalizeContext } from "./normalize";

/** An extra check on a normalised event: errors (rejected), or the event to keep (maybe rewritten). */
export type EventCheck = (event: IngestEvent) => { errors: string[]; reason: string } | { event: IngestEvent };

export interface BatchValidation {
  accepted: IngestEvent[];
  rejected: RejectedEvent[];
  /** Rejections counted by reason (`invalid`, `schema`, `pii`, ...), for metrics. */
  reasons: Record<string, number>;
}

export function validateBatch(
  rawEvents: readonly unknown[],
  ctx: NormalizeContext,
  checks: readonly EventCheck[] = [],
): BatchValidation {
  const accepted: IngestEvent[] = [];
  const rejected: RejectedEvent[] = [];
  const reasons: Record<string, number> = {};
  const single = rawEvents.length === 1;
  outer: for (let index = 0; index < rawEvents.length; index++) {
    const normalized = normalizeEvent(rawEvents[index], ctx, single);
    if (!normalized.ok) {
      rejected.push({ index, errors: normalized.errors });
      reasons.invalid = (reasons.invalid ?? 0) + 1;
      continue;
    }
    let event = normalized.event;
    for (const check of checks) {
      const outcome = check(event);
      if ("errors" in outcome) {
        rejected.push({ index, errors: outcome.errors });
        reasons[outcome.reason] = (reasons[outcome.reason] ?? 0) + 1;
        continue outer;
      }
      event = outcome.event;
    }
    accepted.push(event);
  }
  return { accepted, rejected, reasons };
}
