/**
 * The durable event path on JetStream, through the nats client directly.
 *
 * Not @moleculer/channels: it hands handlers one message at a time, while this path is batch
 * in, batch out — one JetStream message per session batch on publish, and the consumer hands
 * everything it has fetched to one handler call (one storage insert per call, not per message).
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  ReplayPolicy,
  RetentionPolicy,
  StorageType,
  NatsError,
  nanos,
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
  type StreamConfig,
  type StreamInfo,
} from "nats";
import { decodeBatch, encodeBatch } from "./batch-codec";
import type { IngestEvent } from "./event";
import type { Logger } from "./logger";

// ---------------------------------------------------------------------------------------------
// Stream
// ---------------------------------------------------------------------------------------------

export interface EventStreamConfig {
  name: string;
  subjects: string[];
  maxAgeMs: number;
  maxBytes: number;
  /** How long JetStream remembers a `Nats-Msg-Id`: the window in which a retried batch is a duplicate. */
  duplicateWindowMs: number;
  replicas: number;
  storage: "file" | "memory";
}

export type EnsureAction = "created" | "updated" | "unchanged";

/** JetStream API "not found" (stream 10059, consumer 10014 — both also carry code 404). */
function isNotFound(err: unknown): boolean {
  if (!(err instanceof NatsError)) return false;
  const api = err.api_error;
  return api?.err_code === 10059 || api?.err_code === 10014 || api?.code === 404 || err.code === "404";
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

/**
 * Create-or-update the event stream; safe to call from every node at start-up. Only the
 * fields we own are compared and updated; everything else an operator changed is kept.
 * Storage type cannot be changed in place (JetStream refuses), so that is an error.
 */
export async function ensureEventStream(
  jsm: JetStreamManager,
  cfg: EventStreamConfig,
): Promise<{ action: EnsureAction; info: StreamInfo }> {
  const storage = cfg.storage === "file" ? StorageType.File : StorageType.Memory;
  const owned = {
    subjects: cfg.subjects,
    max_age: nanos(cfg.maxAgeMs),
    max_bytes: cfg.maxBytes,
    duplicate_window: nanos(cfg.duplicateWindowMs),
    num_replicas: cfg.replicas,
  };
  // Two attempts: another node may create the stream between our info and our add.
  for (let attempt = 0; ; attempt++) {
    let current: StreamInfo | undefined;
    try {
      current = await jsm.streams.info(cfg.name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (current === undefined) {
      const full: Partial<StreamConfig> = {
        name: cfg.name,
        ...owned,
        storage,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
      };
      try {
        return { action: "created", info: await jsm.streams.add(full) };
      } catch (err) {
        if (attempt === 0) continue; // lost the race (or a transient error): re-read and compare
        throw err;
      }
    }
    const c = current.config;
    if (c.storage !== storage) {
      throw new Error(
        `stream ${cfg.name} has storage "${c.storage}", wanted "${storage}": JetStream cannot change it in place`,
      );
    }
    const unchanged =
      sameSet(c.subjects ?? [], owned.subjects) &&
      c.max_age === owned.max_age &&
      c.max_bytes === owned.max_bytes &&
      c.duplicate_window === owned.duplicate_window &&
      c.num_replicas === owned.num_replicas;
    if (unchanged) return { action: "unchanged", info: current };
    return { action: "updated", info: await jsm.streams.update(cfg.name, owned) };
  }
}

// ---------------------------------------------------------------------------------------------
// Publish
// ---------------------------------------------------------------------------------------------

/**
 * One JetStream publish per batch. `msgId` becomes the `Nats-Msg-Id` header: a retry of the
 * same batch inside the stream's duplicate window is acknowledged with `duplicate: true` and
 * not stored again, so the caller can retry a publish whose PubAck it never saw. Retrying is
 * the caller's job: a publish attempted while the client is reconnecting times out (the nats
 * client does not replay it), and only a retry with the same `msgId` is safe.
 */
export async function publishBatch(
  js: JetStreamClient,
  subject: string,
  events: IngestEvent[],
  msgId: string,
  opts: { timeoutMs?: number } = {},
): Promise<{ seq: number; duplicate: boolean }> {
  return publishEncodedBatch(js, subject, encodeBatch(events), msgId, opts);
}

/** `publishBatch` for a body already made by `encodeBatch` (a caller that had to size it first). */
export async function publishEncodedBatch(
  js: JetStreamClient,
  subject: string,
  data: Uint8Array,
  msgId: string,
  opts: { timeoutMs?: number } = {},
): Promise<{ seq: number; duplicate: boolean }> {
  if (msgId === "") {
    // An empty id silently disables deduplication; that is never what a caller means.
    throw new Error("publishBatch: msgId must not be empty");
  }
  const ack = await js.publish(subject, data, {
    msgID: msgId,
    ...(opts.timeoutMs === undefined ? {} : { timeout: opts.timeoutMs }),
  });
  return { seq: ack.seq, duplicate: ack.duplicate };
}

// ---------------------------------------------------------------------------------------------
// Consumer
// ---------------------------------------------------------------------------------------------

/** One stored batch as the handler sees it. Settling (ack/nak) is once-only; later calls are ignored. */
export interface BatchMessage {
  events: IngestEvent[];
  /** Done with it: never delivered again. */
  ack(): void;
  /** Give it back for redelivery, after `delayMs` (immediately when omitted). */
  nak(delayMs?: number): void;
  /** Still working on it: restarts its ack_wait clock. */
  working(): void;
  /** True from the second delivery on (another consumer, or we, got it before and did not ack). */
  redelivered: boolean;
  /** How many times it has been delivered, this time included. */
  deliveryCount: number;
  /** Stream sequence: the message's stable identity in the stream. */
  seq: number;
}

export type BatchHandler = (messages: BatchMessage[]) => Promise<void>;

export interface BatchConsumerOptions {
  stream: string;
  /** Durable consumer name. Every process using the same name shares one cursor: each message goes to one of them. */
  durable: string;
  /** Only messages on this subject (wildcards allowed); default all of the stream. */
  filterSubject?: string;
  handler: BatchHandler;
  /** Most messages per fetch, hence per handler call. Default 256. */
  maxMessages?: number;
  /**
   * Lifetime of one pull request when nothing arrives (nats client minimum 1000). It also bounds
   * `stop()`, which keeps reading the open pull until it ends. Default 5000.
   */
  expiresMs?: number;
  /** Unacked messages are redelivered this long after delivery. Default 30000. */
  ackWaitMs?: number;
  /** Most delivered-but-unacked messages across all processes of the durable. Default 1000. */
  maxAckPending?: number;
  /** Deliveries before JetStream gives up on a message; -1 = unlimited (default). */
  maxDeliver?: number;
  /** Redelivery delay for messages of a batch whose handler threw. Default 1000. */
  nakDelayMs?: number;
  /**
   * Awaited before each pull request: a handler that takes messages faster than it finishes
   * them (acks come later) holds back the next fetch here. Must resolve once `stop()` is called.
   */
  beforeFetch?: () => Promise<void>;
  logger?: Logger;
}

const DEFAULTS = {
  maxMessages: 256,
  expiresMs: 5_000,
  ackWaitMs: 30_000,
  maxAckPending: 1_000,
  maxDeliver: -1,
  nakDelayMs: 1_000,
} as const;

/** Wait between failed fetch attempts (consumer missing, connection trouble). */
const RETRY_DELAY_MS = 500;

const TICK: unique symbol = Symbol("tick");

class Delivery implements BatchMessage {
  private settled = false;
  readonly redelivered: boolean;
  readonly deliveryCount: number;
  readonly seq: number;

  constructor(
    private readonly msg: JsMsg,
    readonly events: IngestEvent[],
  ) {
    this.redelivered = msg.redelivered;
    this.deliveryCount = msg.info.redeliveryCount;
    this.seq = msg.seq;
  }

  get isSettled(): boolean {
    return this.settled;
  }

  ack(): void {
    if (this.settled) return;
    this.settled = true;
    this.msg.ack();
  }

  nak(delayMs?: number): void {
    if (this.settled) return;
    this.settled = true;
    this.msg.nak(delayMs);
  }

  working(): void {
    if (!this.settled) this.msg.working();
  }
}

/**
 * A durable pull consumer that hands batches to one async handler at a time.
 *
 * Batching without added latency: a fetch asks for up to `maxMessages` and the server streams
 * what it has; we do not wait for the fetch to fill. Each handler call gets the first message
 * plus everything already received behind it (collected until the next macrotask), so a busy
 * stream yields full batches and a quiet one yields a message as soon as it lands. Messages
 * that arrive while the handler runs queue in the same fetch; a new fetch starts when it ends.
 *
 * Explicit acks, and only the handler acks: a message the handler neither acks nor naks is
 * redelivered after `ackWaitMs` (to whichever process of the durable pulls next). A handler that
 * throws gets its unsettled messages nak'ed with `nakDelayMs`.
 */
export class BatchConsumer {
  private readonly opts: Required<Omit<BatchConsumerOptions, "filterSubject" | "logger" | "beforeFetch">> &
    Pick<BatchConsumerOptions, "filterSubject" | "logger" | "beforeFetch">;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private active = false;
  private wakeRetry: (() => void) | undefined;

  constructor(
    private readonly nc: NatsConnection,
    opts: BatchConsumerOptions,
  ) {
    // Field by field, so an explicit `undefined` in opts still gets the default.
    this.opts = {
      ...opts,
      maxMessages: opts.maxMessages ?? DEFAULTS.maxMessages,
      expiresMs: opts.expiresMs ?? DEFAULTS.expiresMs,
      ackWaitMs: opts.ackWaitMs ?? DEFAULTS.ackWaitMs,
      maxAckPending: opts.maxAckPending ?? DEFAULTS.maxAckPending,
      maxDeliver: opts.maxDeliver ?? DEFAULTS.maxDeliver,
      nakDelayMs: opts.nakDelayMs ?? DEFAULTS.nakDelayMs,
    };
    if (this.opts.expiresMs < 1_000) throw new RangeError("expiresMs must be at least 1000");
    if (this.opts.maxMessages < 1) throw new RangeError("maxMessages must be at least 1");
  }

  /** Creates or updates the durable consumer, then starts pulling. */
  async start(): Promise<ConsumerInfo> {
    if (this.loop !== undefined) throw new Error("BatchConsumer already started");
    const info = await this.ensureConsumer();
    const consumer = await this.nc.jetstream().consumers.get(this.opts.stream, this.opts.durable);
    this.stopping = false;
    this.active = true;
    this.loop = this.run(consumer).finally(() => {
      this.active = false; // also when the connection closed under us
    });
    return info;
  }

  /**
   * Stops pulling. Waits for the in-flight handler call to finish (its acks are flushed to the
   * server); messages received after that are nak'ed at once so another process of the durable
   * gets them now rather than after ack_wait. Resolves within about `expiresMs` of the handler
   * finishing (the open pull request cannot be cancelled, only drained).
   */
  async stop(): Promise<void> {
    const loop = this.loop;
    if (loop === undefined) return;
    this.stopping = true;
    this.wakeRetry?.();
    await loop;
    this.loop = undefined;
    if (!this.nc.isClosed()) await this.nc.flush();
  }

  /** True from start() until stop() is called or the connection closes. */
  get running(): boolean {
    return this.active && !this.stopping;
  }

  private async ensureConsumer(): Promise<ConsumerInfo> {
    const jsm = await this.nc.jetstreamManager();
    const { stream, durable, filterSubject } = this.opts;
    const editable = {
      ack_wait: nanos(this.opts.ackWaitMs),
      max_ack_pending: this.opts.maxAckPending,
      max_deliver: this.opts.maxDeliver,
      ...(filterSubject === undefined ? {} : { filter_subject: filterSubject }),
    };
    let current: ConsumerInfo | undefined;
    try {
      current = await jsm.consumers.info(stream, durable);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (current === undefined) {
      const cfg: Partial<ConsumerConfig> = {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        replay_policy: ReplayPolicy.Instant,
        ...editable,
      };
      // Adding an identical durable is a no-op on the server, so racing processes are fine.
      return jsm.consumers.add(stream, cfg);
    }
    const c = current.config;
    const unchanged =
      c.ack_wait === editable.ack_wait &&
      c.max_ack_pending === editable.max_ack_pending &&
      c.max_deliver === editable.max_deliver &&
      (filterSubject === undefined || c.filter_subject === filterSubject);
    return unchanged ? current : jsm.consumers.update(stream, durable, editable);
  }

  private async run(consumer: Consumer): Promise<void> {
    while (!this.stopping && !this.nc.isClosed()) {
      try {
        if (this.opts.beforeFetch) {
          await this.opts.beforeFetch();
          if (this.stopping || this.nc.isClosed()) break;
        }
        const fetched = await consumer.fetch({
          max_messages: this.opts.maxMessages,
          expires: this.opts.expiresMs,
        });
        await this.drain(fetched);
      } catch (err) {
        if (this.stopping || this.nc.isClosed()) break;
        this.opts.logger?.warn({ err, stream: this.opts.stream, durable: this.opts.durable }, "fetch failed, retrying");
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, RETRY_DELAY_MS);
          this.wakeRetry = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wakeRetry = undefined;
      }
    }
  }

  /** Reads one fetch to its end, handing batches of already-received messages to the handler. */
  private async drain(fetched: ConsumerMessages): Promise<void> {
    const it = fetched[Symbol.asyncIterator]();
    // A read that lost the race against the tick; it becomes the first message of the next batch.
    let pending: Promise<IteratorResult<JsMsg>> | undefined;
    const tick = (): Promise<typeof TICK> => new Promise((resolve) => setImmediate(resolve, TICK));
    try {
      for (;;) {
        const first = await (pending ?? it.next());
        pending = undefined;
        if (first.done === true) return;
        const batch: JsMsg[] = [first.value];
        let ended = false;
        while (batch.length < this.opts.maxMessages) {
          const next = it.next();
          const r = await Promise.race([next, tick()]);
          if (r === TICK) {
            pending = next; // nothing more buffered: hand over what we have
            break;
          }
          if (r.done === true) {
            ended = true;
            break;
          }
          batch.push(r.value);
        }
        if (this.stopping) {
          for (const m of batch) m.nak(); // not ours to handle any more: back to the durable now
        } else {
          await this.dispatch(batch);
        }
        if (ended) return;
      }
    } finally {
      // Leaving on an error with a read outstanding: its eventual rejection must not go unhandled.
      pending?.catch(() => undefined);
    }
  }

  private async dispatch(batch: JsMsg[]): Promise<void> {
    const log = this.opts.logger;
    const deliveries: Delivery[] = [];
    for (const m of batch) {
      let events: IngestEvent[];
      try {
        events = decodeBatch(m.data);
      } catch (err) {
        // Undecodable now means undecodable on every redelivery: take it out of the consumer
        // (it stays in the stream for inspection) instead of looping on it forever.
        // No reason text on term(): servers before 2.10 do not recognise "+TERM <reason>" and
        // would leave the message pending. The reason goes to the log instead.
        log?.error({ err, stream: this.opts.stream, seq: m.seq }, "undecodable batch message terminated");
        m.term();
        continue;
      }
      deliveries.push(new Delivery(m, events));
    }
    if (deliveries.length === 0) return;
    try {
      await this.opts.handler(deliveries);
    } catch (err) {
      log?.warn({ err, stream: this.opts.stream, messages: deliveries.length }, "batch handler failed, nak with delay");
      for (const d of deliveries) if (!d.isSettled) d.nak(this.opts.nakDelayMs);
    }
  }
}
