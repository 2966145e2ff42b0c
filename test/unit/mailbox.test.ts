import { describe, expect, it } from "vitest";
import { MailboxRegistry } from "../../actors/session/mailbox";
import { deferred } from "../support/deferred";


/** Lets every queued microtask (and promise chain hop) run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

describe("MailboxRegistry", () => {
  it("runs the turns of one key one at a time, in post order", async () => {
    const box = new MailboxRegistry();
    const gates = [deferred(), deferred(), deferred()];
    const log: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const results = gates.map((gate, i) =>
      box.post("k", async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        log.push(`start ${i}`);
        await gate.promise;
        log.push(`end ${i}`);
        running--;
        return i * 10;
      }),
    );

    await flush();
    expect(log).toEqual(["start 0"]);

    // Finishing a later turn's gate first must not let it start before its predecessors.
    gates[2].resolve();
    await flush();
    expect(log).toEqual(["start 0"]);

    gates[0].resolve();
    await flush();
    expect(log).toEqual(["start 0", "end 0", "start 1"]);

    gates[1].resolve();
    expect(await Promise.all(results)).toEqual([0, 10, 20]);
    expect(log).toEqual(["start 0", "end 0", "start 1", "end 1", "start 2", "end 2"]);
    expect(maxRunning).toBe(1);
  });

  it("keeps post order for many turns of one key (synchronous turns too)", async () => {
    const box = new MailboxRegistry();
    const order: number[] = [];
    const all = Array.from({ length: 50 }, (_, i) =>
      box.post("k", async () => {
        if (i % 3 === 0) await new Promise((r) => setTimeout(r, 1));
        order.push(i);
        return i;
      }),
    );
    expect(await Promise.all(all)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(order).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it("runs different keys concurrently", async () => {
    const box = new MailboxRegistry();
    const a = deferred();
    const b = deferred();
    const started: string[] = [];
    const pa = box.post("a", async () => {
      started.push("a");
      await a.promise;
      return "A";
    });
    const pb = box.post("b", async () => {
      started.push("b");
      await b.promise;
      return "B";
    });
    await flush();
    // Both started although neither has finished.
    expect(started).toEqual(["a", "b"]);
    expect(box.active).toBe(2);
    b.resolve();
    expect(await pb).toBe("B");
    a.resolve();
    expect(await pa).toBe("A");
  });

  it("a rejected turn reaches its caller and does not block the next turn of that key", async () => {
    const box = new MailboxRegistry();
    const gate = deferred();
    const boom = new Error("boom");
    const first = box.post("k", async () => {
      await gate.promise;
      throw boom;
    });
    const ran: string[] = [];
    const second = box.post("k", async () => {
      ran.push("second");
      return "ok";
    });
    const firstOutcome = first.then(
      () => "fulfilled",
      (e: unknown) => e,
    );
    await flush();
    expect(ran).toEqual([]);
    gate.resolve();
    expect(await firstOutcome).toBe(boom);
    expect(await second).toBe("ok");
    expect(ran).toEqual(["second"]);
  });

  it("a turn that rejects immediately does not wedge the key either", async () => {
    const box = new MailboxRegistry();
    const outcomes = await Promise.allSettled([
      box.post("k", () => Promise.reject(new Error("e1"))),
      box.post("k", () => Promise.reject(new Error("e2"))),
      box.post("k", async () => 3),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected", "fulfilled"]);
    expect((outcomes[0] as PromiseRejectedResult).reason).toMatchObject({ message: "e1" });
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ message: "e2" });
    expect((outcomes[2] as PromiseFulfilledResult<number>).value).toBe(3);
    await box.idle();
    expect(box.active).toBe(0);
  });

  it("counts keys with work in `active` and drops to 0 when everything settled", async () => {
    const box = new MailboxRegistry();
    expect(box.active).toBe(0);
    const gates = { a: deferred(), b: deferred(), c: deferred() };
    const ps = [
      box.post("a", () => gates.a.promise),
      box.post("a", () => gates.a.promise),
      box.post("b", () => gates.b.promise),
      box.post("c", () => gates.c.promise),
    ];
    // Two turns of "a" are one key.
    expect(box.active).toBe(3);
    gates.b.resolve();
    await ps[2];
    await flush();
    expect(box.active).toBe(2);
    gates.c.reject(new Error("c failed"));
    await expect(ps[3]).rejects.toThrow("c failed");
    await flush();
    expect(box.active).toBe(1);
    gates.a.resolve();
    await Promise.all([ps[0], ps[1]]);
    await flush();
    expect(box.active).toBe(0);
  });

  it("a key that goes idle and is posted to again runs fresh", async () => {
    const box = new MailboxRegistry();
    expect(await box.post("k", async () => 1)).toBe(1);
    await box.idle();
    expect(box.active).toBe(0);
    expect(await box.post("k", async () => 2)).toBe(2);
    await box.idle();
    expect(box.active).toBe(0);
  });

  it("idle() resolves at once when nothing was posted", async () => {
    const box = new MailboxRegistry();
    let done = false;
    void box.idle().then(() => (done = true));
    await flush();
    expect(done).toBe(true);
  });

  it("idle() waits for every turn, including turns posted while it waits and failed ones", async () => {
    const box = new MailboxRegistry();
    const a = deferred();
    const b = deferred();
    const late = deferred();
    const settled: string[] = [];
    void box.post("a", () => a.promise).then(() => settled.push("a"));
    void box.post("b", () => b.promise).catch(() => settled.push("b"));
    let idle = false;
    const idleP = box.idle().then(() => (idle = true));

    a.resolve();
    await flush();
    expect(idle).toBe(false);

    // Posted after idle() was called: idle() must wait for it too.
    void box.post("c", () => late.promise).then(() => settled.push("c"));
    b.reject(new Error("b failed"));
    await flush();
    expect(idle).toBe(false);

    late.resolve();
    await idleP;
    expect(idle).toBe(true);
    expect(settled.sort()).toEqual(["a", "b", "c"]);
    expect(box.active).toBe(0);
  });
});
