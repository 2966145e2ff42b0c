/**
 * What POST /v1/events means: authenticate, rate-limit, decode, validate, hand each session's
 * events to its owning session actor, and answer only after they are durable. Transport-free
 * (no uWS in here), so the same steps serve HTTP and WebSocket batches.
 */
import { isUtf8 } from "node:buffer";
import type { IngestEvent, RejectedEvent, SessionBatch, SessionIngestResult } from "../../actors/common/event";
import { IngestError } from "../../actors/common/errors";
import type { Principal } from "./api-keys";
import { clockOffset } from "../../actors/validator/normalize";
import { decompress, parseBody, type DecodedBody } from "./decode-body";
import type { TakeOutcome } from "./rate-lease";
import type { ThrottledEvent } from "./user-limiter";

export interface ValidationOutcome {
  accepted: IngestEvent[];
  rejected: RejectedEvent[];
  reasons: Record<string, number>;
}

export interface IngestDeps {
  validate(input: {
    tenantId: string;
    receivedAt: number;
    idempotencyKey?: string;
    clockOffsetMs?: number;
    events: unknown[];
  }): Promise<ValidationOutcome>;
  dispatch(tenantId: string, sessions: SessionBatch[]): Promise<SessionIngestResult>;
  takeTokens(principal: Principal, count: number): Promise<TakeOutcome>;
  /** The events over their sender's per-user rate limit, by index (none when the tenant has no such limit). */
  throttleUsers?(principal: Principal, events: readonly unknown[]): ThrottledEvent[];
  record: {
    received(tenant: string, count: number): void;
    rejected(reason: string, count: number): void;
    accepted(tenant: string, count: number, duplicates: number): void;
    throttled(scope: string): void;
  };
}

export interface IngestLimits {
  maxBodyBytes: number;
  maxEventsPerBatch: number;
  maxDepth: number;
}

export interface IngestAnswer {
  accepted: number;
  duplicates: number;
  rejected: RejectedEvent[];
}

/** Splits accepted events by session, keeping each session's events in request order. */
export function groupBySession(events: readonly IngestEvent[]): SessionBatch[] {
  const bySession = new Map<string, IngestEvent[]>();
  for (const event of events) {
    const list = bySession.get(event.session_id);
    if (list) list.push(event);
    else bySession.set(event.session_id, [event]);
  }
  const batches: SessionBatch[] = [];
  for (const [session_id, list] of bySession) batches.push({ session_id, events: list });
  return batches;
}

/** A 503 for a service behind the edge that failed; the cause is kept for the log. */
function unavailable(message: string, cause: unknown): IngestError {
  const error = new IngestError("unavailable", message, 1);
  error.cause = cause;
  return error;
}

export class IngestHandler {
  constructor(
    private readonly deps: IngestDeps,
    private readonly limits: IngestLimits,
  ) {}

  /** Decodes an HTTP body into raw events and its `sent_at` (throws IngestError with the right code). */
  decodeHttpBody(body: Buffer, contentEncoding: string | undefined): DecodedBody {
    const decoded = decompress(body, contentEncoding, this.limits.maxBodyBytes);
    // Decoding invalid UTF-8 would silently store U+FFFD in place of what the client sent.
    if (!isUtf8(decoded)) throw new IngestError("invalid_json", "Request body is not valid UTF-8");
    return parseBody(decoded.toString("utf8"), this.limits);
  }

  /** Runs a decoded batch through the pipeline. Throws IngestError for whole-request failures. */
  async ingest(
    principal: Principal,
    rawEvents: unknown[],
    receivedAt: number,
    idempotencyKey?: string,
    /** The device's clock when it sent the batch (`sent_at`), to correct a wrong device clock. */
    sentAt?: number,
  ): Promise<IngestAnswer> {
    const tenant = principal.tenant;
    if (rawEvents.length === 0) return { accepted: 0, duplicates: 0, rejected: [] };
    if (rawEvents.length > this.limits.maxEventsPerBatch) {
      this.deps.record.rejected("too_many_events", rawEvents.length);
      throw new IngestError("too_many_events", `A request may hold at most ${this.limits.maxEventsPerBatch} events`);
    }
    this.deps.record.received(tenant, rawEvents.length);

    // Per-user limit first: a flooding user's events must not spend the key's shared bucket.
    const overUserLimit = this.deps.throttleUsers?.(principal, rawEvents) ?? [];
    if (overUserLimit.length > 0) {
      this.deps.record.throttled("user");
      this.deps.record.rejected("user_rate_limited", overUserLimit.length);
      if (overUserLimit.length === rawEvents.length) {
        const soonest = Math.min(...overUserLimit.map((t) => t.retryAfterMs));
        throw new IngestError("rate_limited", "Every event's sender (user_id, else session_id) is over the per-user rate limit", soonest / 1000);
      }
    }
    const admitted = overUserLimit.length === 0 ? null : withoutThrottled(rawEvents, overUserLimit);
    const events = admitted?.events ?? rawEvents;

    let tokens: TakeOutcome;
    try {
      tokens = await this.deps.takeTokens(principal, events.length);
    } catch (error) {
      // The key's rate-limiter (and its next owner) could not be reached: the node cannot
      // enforce the limit, so it does not admit the events; the client retries.
      throw unavailable("Rate limiter unavailable; retry later", error);
    }
    if (!tokens.ok) {
      this.deps.record.throttled("key");
      this.deps.record.rejected("rate_limited", events.length);
      throw new IngestError("rate_limited", undefined, tokens.retryAfterMs / 1000);
    }

    let validation: ValidationOutcome;
    try {
      // The header names the one event of a single-event request, never the survivor of a larger one.
      const key = admitted === null ? idempotencyKey : undefined;
      const input = { tenantId: tenant, receivedAt, idempotencyKey: key, events };
      const clockOffsetMs = clockOffset(receivedAt, sentAt);
      validation = await this.deps.validate(clockOffsetMs === 0 ? input : { ...input, clockOffsetMs });
    } catch (error) {
      throw unavailable("Validator unavailable; retry later", error);
    }
    for (const reason in validation.reasons) this.deps.record.rejected(reason, validation.reasons[reason]!);
    const rejected = admitted === null ? validation.rejected : mergeRejections(overUserLimit, validation.rejected, admitted.indexOf);
    if (validation.accepted.length === 0) {
      return { accepted: 0, duplicates: 0, rejected };
    }

    let result: SessionIngestResult;
    try {
      result = await this.deps.dispatch(tenant, groupBySession(validation.accepted));
    } catch (error) {
      if (error instanceof IngestError) throw error;
      throw new IngestError("unavailable", undefined, 1);
    }
    this.deps.record.accepted(tenant, result.accepted, result.duplicates);
    return { accepted: result.accepted, duplicates: result.duplicates, rejected };
  }
}

/** The events not throttled, and each one's index in the request. */
function withoutThrottled(events: readonly unknown[], throttled: readonly ThrottledEvent[]): { events: unknown[]; indexOf: number[] } {
  const skip = new Set(throttled.map((t) => t.index));
  const kept: unknown[] = [];
  const indexOf: number[] = [];
  for (let i = 0; i < events.length; i++) {
    if (skip.has(i)) continue;
    kept.push(events[i]);
    indexOf.push(i);
  }
  return { events: kept, indexOf };
}

/** One rejection list in request order: the throttled events and the validator's (whose indices count the admitted events only). */
function mergeRejections(throttled: readonly ThrottledEvent[], invalid: readonly RejectedEvent[], indexOf: readonly number[]): RejectedEvent[] {
  const merged: RejectedEvent[] = throttled.map((t) => ({
    index: t.index,
    errors: [`over the per-user rate limit (its user_id, else session_id, sent too many events); retry in ${Math.ceil(t.retryAfterMs / 1000)} s`],
    retry_after_ms: t.retryAfterMs,
  }));
  for (const r of invalid) merged.push({ index: indexOf[r.index]!, errors: r.errors });
  return merged.sort((a, b) => a.index - b.index);
}
