import { describe, expect, it } from "vitest";
import { clientKey, IpLimiter } from "../../nodes/edge/ip-limiter";
import { silentReply } from "../../nodes/edge/silent-mode";

const T0 = 1_700_000_000_000;

function limiter(ratePerSec: number, burst: number, maxClients?: number) {
  const clock = { now: T0 };
  return { clock, limiter: new IpLimiter({ ratePerSec, burst, maxClients, now: () => clock.now }) };
}

describe("IpLimiter", () => {
  it("lets a burst through, then refuses with the time to the next token", () => {
    const { limiter: l } = limiter(10, 3);
    expect([l.take("10.0.0.1"), l.take("10.0.0.1"), l.take("10.0.0.1")]).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(l.take("10.0.0.1")).toEqual({ ok: false, retryAfterMs: 100 });
  });

  it("refills at the rate", () => {
    const { limiter: l, clock } = limiter(2, 1);
    expect(l.take("1.2.3.4").ok).toBe(true);
    expect(l.take("1.2.3.4").ok).toBe(false);
    clock.now += 499;
    expect(l.take("1.2.3.4").ok).toBe(false);
    clock.now += 1;
    expect(l.take("1.2.3.4").ok).toBe(true);
  });

  it("over 10 s of hammering admits burst + rate × 10 at most", () => {
    const { limiter: l, clock } = limiter(5, 20);
    let admitted = 0;
    for (let t = 0; t <= 10_000; t += 5) {
      clock.now = T0 + t;
      if (l.take("9.9.9.9").ok) admitted++;
    }
    expect(admitted).toBe(20 + 5 * 10);
  });

  it("keeps clients apart; one /64 is one client", () => {
    const { limiter: l } = limiter(1, 1);
    expect(l.take("10.0.0.1").ok).toBe(true);
    expect(l.take("10.0.0.2").ok).toBe(true);
    expect(l.take("2001:db8:1:2::1").ok).toBe(true);
    expect(l.take("2001:db8:1:2:ffff::9").ok).toBe(false);
    expect(l.take("2001:db8:1:3::1").ok).toBe(true);
    // The IPv4-mapped spelling is the same client as plain IPv4.
    expect(l.take("::ffff:10.0.0.1").ok).toBe(false);
  });

  it("forgets the least recently seen clients beyond maxClients (they come back with a full bucket)", () => {
    const { limiter: l } = limiter(1, 1, 2);
    l.take("1.1.1.1");
    l.take("2.2.2.2");
    l.take("3.3.3.3");
    expect(l.size).toBe(2);
    expect(l.take("1.1.1.1").ok).toBe(true);
    expect(l.take("3.3.3.3").ok).toBe(false);
  });
});

describe("clientKey", () => {
  it.each([
    ["127.0.0.1", "127.0.0.1"],
    [" 10.1.2.3 ", "10.1.2.3"],
    ["::ffff:10.1.2.3", "10.1.2.3"],
    ["0000:0000:0000:0000:0000:ffff:0a01:0203", "10.1.2.3"],
    ["2001:db8::1", "2001:db8:0:0::/64"],
    ["2001:0DB8:0000:0000:abcd::1", "2001:db8:0:0::/64"],
    ["2001:db8:0:0:1:2:3:4", "2001:db8:0:0::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
    ["0000:0000:0000:0000:0000:0000:0000:0001", "0:0:0:0::/64"],
    ["not-an-address", "not-an-address"],
    ["1:2:3", "1:2:3"],
  ])("%j → %j", (address, key) => {
    expect(clientKey(address)).toBe(key);
  });
});

describe("silentReply (seed 000 answer shape)", () => {
  it.each([
    [{ status: 202, body: "{}", accepted: 3 }, 3],
    [{ status: 202, body: "{}", accepted: 0 }, 0],
    [{ status: 400, body: "{}" }, 0],
    [{ status: 429, body: "{}", headers: { "Retry-After": "1" } }, 0],
    [{ status: 503, body: "{}", headers: { "Retry-After": "1" } }, 0],
    [{ status: 413, body: "{}" }, 0],
  ])("%j → 200 processed %i, no error headers", (reply, processed) => {
    const out = silentReply(reply);
    expect(out.status).toBe(200);
    expect(JSON.parse(out.body)).toEqual({ success: true, processed });
    expect(out.headers).toBeUndefined();
  });
});
