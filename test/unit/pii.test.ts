import { describe, it, expect } from "vitest";
import fc from "fast-check";
import type { IngestEvent } from "../../actors/common/event";
import { applyPiiPolicy, detectPii, redactString, type PiiKind } from "../../actors/validator/pii";

function kinds(text: string): PiiKind[] {
  return detectPii(text).map((d) => d.kind);
}

function detected(text: string): string[] {
  return detectPii(text).map((d) => text.slice(d.start, d.end));
}

function makeEvent(overrides: Partial<IngestEvent> = {}): IngestEvent {
  return {
    tenant_id: "tenant-a",
    event_id: "0b6f3c1e-6c1a-4f7e-9d7b-2f1c3a9e8d01",
    event_name: "checkout_completed",
    session_id: "sess-42",
    seq: 3,
    user_id: "user-1001",
    channel: "web",
    timestamp: 1708732800000,
    received_at: 1708732800123,
    properties: {},
    ...overrides,
  };
}

/** A nested event with PII in an object, inside an array inside an object, and at the top level. */
function pollutedEvent(): IngestEvent {
  return makeEvent({
    user_id: "jane@example.com",
    properties: {
      contact: "mail me at a@b.com",
      cart: {
        items: [
          { sku: "SKU-1", note: "gift" },
          { sku: "SKU-2", note: "call (415) 555-2671 or +44 20 7946 0958" },
        ],
        total: 129.99,
      },
      tags: ["vip", "ip 10.0.0.1"],
      clean: { nested: ["plain", 1, true, null] },
    },
  });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
    Object.freeze(value);
  }
  return value;
}

describe("detectPii: true positives", () => {
  it.each<[PiiKind, string, string]>([
    ["email", "mail me at a@b.com", "a@b.com"],
    ["email", "Contact: John.Doe+promo@mail.example.co.uk.", "John.Doe+promo@mail.example.co.uk"],
    ["email", "<first_last-99@sub.domain.io>", "first_last-99@sub.domain.io"],
    ["phone", "(415) 555-2671", "(415) 555-2671"],
    ["phone", "call 415-555-2671 today", "415-555-2671"],
    ["phone", "415.555.2671", "415.555.2671"],
    ["phone", "1 (415) 555-2671", "1 (415) 555-2671"],
    ["phone", "1-415-555-2671", "1-415-555-2671"],
    ["phone", "+44 20 7946 0958", "+44 20 7946 0958"],
    ["phone", "+14155552671", "+14155552671"],
    ["phone", "tel:+33 1 23 45 67 89", "+33 1 23 45 67 89"],
    ["phone", "+44 (0)20 7946 0958", "+44 (0)20 7946 0958"],
    ["phone", "0044 20 7946 0958", "0044 20 7946 0958"],
    ["phone", "020 7946 0958", "020 7946 0958"],
    ["phone", "06 12 34 56 78", "06 12 34 56 78"],
    ["phone", "call (415) 555-2671 3 times", "(415) 555-2671"],
    ["card", "4111 1111 1111 1111", "4111 1111 1111 1111"],
    ["card", "4111111111111111", "4111111111111111"],
    ["card", "pay with 5555-5555-5555-4444 now", "5555-5555-5555-4444"],
    ["card", "amex 3782 822463 10005", "3782 822463 10005"],
    ["card", "4111 1111 1111 1111 12/25", "4111 1111 1111 1111"],
    ["card", "ref 1234 4111 1111 1111 1111", "4111 1111 1111 1111"],
    ["card", "4222222222222", "4222222222222"],
    ["ip", "from 192.168.1.1", "192.168.1.1"],
    ["ip", "10.0.0.1:8080", "10.0.0.1"],
    ["ip", "0.0.0.0", "0.0.0.0"],
    ["ip", "255.255.255.255", "255.255.255.255"],
    ["ip", "fe80::1", "fe80::1"],
    ["ip", "[2001:db8:85a3::8a2e:370:7334]:443", "2001:db8:85a3::8a2e:370:7334"],
    ["ip", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"],
    ["ip", "::ffff:192.168.1.1", "::ffff:192.168.1.1"],
    ["ip", "loopback ::1.", "::1"],
    ["ssn", "ssn 123-45-6789", "123-45-6789"],
    ["ssn", "665-01-0001", "665-01-0001"],
    ["ssn", "899-99-9999", "899-99-9999"],
    [
      "secret",
      "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    ],
    ["secret", "key=sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"],
    ["secret", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"],
    ["secret", "rk_live_51H8abcdefGHIJKLmnop", "rk_live_51H8abcdefGHIJKLmnop"],
    ["secret", "pk_live_51H8abcdefGHIJKLmnop", "pk_live_51H8abcdefGHIJKLmnop"],
    ["secret", "aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"],
    ["secret", "Authorization: Bearer abc123def456ghi789.", "Bearer abc123def456ghi789"],
    ["secret", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"],
  ])("%s in %j", (kind, text, expected) => {
    expect(kinds(text)).toEqual([kind]);
    expect(detected(text)).toEqual([expected]);
  });
});

describe("detectPii: false positives", () => {
  it.each<[string, string]>([
    ["handle", "@username"],
    ["no TLD", "root@localhost"],
    ["retina asset", "icon@2x.png"],
    ["package spec", "lodash@4.17.21"],
    ["ISO timestamp", "2024-01-15T10:30:45Z"],
    ["ISO timestamp with offset", "2024-01-15T10:30:45.123+01:00"],
    ["date and time", "2024-01-15 10:30:45"],
    ["European date", "15.01.2024"],
    ["UUID", "123e4567-e89b-12d3-a456-426614174000"],
    ["all-digit UUID", "12345678-1234-1234-1234-123456789012"],
    ["version", "1.0.0"],
    ["version", "10.2.3"],
    ["version with build", "v1.2.3.4"],
    ["epoch milliseconds", "1708732800000"],
    ["epoch microseconds", "1708732800000123"],
    ["epoch seconds", "1708732800"],
    ["short integer", "42"],
    ["bare ten digits", "4155552671"],
    ["price", "$1,299.99"],
    ["price", "1299.99 EUR"],
    ["7-digit local number", "555-1234"],
    ["area code starting with 1", "123-555-2671"],
    ["order number failing Luhn", "order 4111 1111 1111 1112"],
    ["16-digit order number failing Luhn", "4024007198765432"],
    ["order number failing Luhn, dashed", "4000-1234-1234-1235"],
    ["Luhn-valid but not a card network", "1234567812345670"],
    ["20 digits", "41111111111111111111"],
    ["card digits in a decimal", "0.4111111111111111"],
    ["card digits in a word", "id4111111111111111"],
    ["three-part dotted", "1.2.3"],
    ["octet out of range", "256.1.1.1"],
    ["five-part dotted", "1.2.3.4.5"],
    ["leading zero octet", "01.02.03.04"],
    ["C++ scope", "use std::vector here"],
    ["prose elision", "a::b"],
    ["hex prose elision", "be::ad"],
    ["time", "10:30:45"],
    ["MAC address", "00:1A:2B:3C:4D:5E"],
    ["SSN area 000", "000-12-3456"],
    ["SSN area 666", "666-12-3456"],
    ["SSN area 9xx", "900-12-3456"],
    ["SSN group 00", "123-00-4567"],
    ["SSN serial 0000", "123-45-0000"],
    ["SSN inside a longer number", "1-123-45-6789"],
    ["bearer in prose", "the bearer responsibilities are listed"],
    ["short api-key-like", "sk_live_abc"],
    ["AKIA too short", "AKIA1234"],
    ["eyJ without dots", "eyJhbGciOiJIUzI1NiJ9"],
    ["user agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/121.0.0.0 Safari/537.36"],
    ["ISBN", "978-3-16-148410-0"],
    ["coordinates", "37.7749,-122.4194"],
    ["hash", "d41d8cd98f00b204e9800998ecf8427e"],
    ["plain text", "hello world"],
  ])("%s: %j", (_label, text) => {
    expect(detectPii(text)).toEqual([]);
  });
});

describe("detectPii: several detections", () => {
  it("returns them in order with offsets", () => {
    const text = "a@b.com, 10.0.0.1 and 123-45-6789";
    expect(detectPii(text)).toEqual([
      { kind: "email", start: 0, end: 7 },
      { kind: "ip", start: 9, end: 17 },
      { kind: "ssn", start: 22, end: 33 },
    ]);
  });

  it("finds a phone number written right next to a card number", () => {
    const text = "415 555 2671 4012 8888 8888 1881";
    expect(detected(text)).toEqual(["415 555 2671", "4012 8888 8888 1881"]);
    expect(kinds(text)).toEqual(["phone", "card"]);
  });

  it("keeps the more specific kind where two overlap", () => {
    expect(kinds("4155552671@txt.att.net")).toEqual(["email"]);
    expect(kinds("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig123")).toEqual(["secret"]);
  });
});

describe("redactString", () => {
  it("replaces each detection with its kind", () => {
    expect(redactString("mail me at a@b.com")).toEqual({
      text: "mail me at [redacted:email]",
      detections: { email: 1 },
    });
    expect(redactString("a@b.com or c@d.org, 4111 1111 1111 1111").text).toBe(
      "[redacted:email] or [redacted:email], [redacted:card]",
    );
    expect(redactString("a@b.com or c@d.org, 4111 1111 1111 1111").detections).toEqual({ email: 2, card: 1 });
  });

  it("returns clean text unchanged with no detections", () => {
    const result = redactString("order 4111 1111 1111 1112 at 2024-01-15T10:30:45Z");
    expect(result.text).toBe("order 4111 1111 1111 1112 at 2024-01-15T10:30:45Z");
    expect(result.detections).toEqual({});
  });
});

describe("applyPiiPolicy", () => {
  it("redact: rewrites every scanned string at any depth and counts by kind", () => {
    const input = pollutedEvent();
    const { event, detections, dropReason } = applyPiiPolicy(input, "redact");
    expect(dropReason).toBeUndefined();
    expect(detections).toEqual({ email: 2, phone: 2, ip: 1 });
    expect(event.user_id).toMatch(/^\[redacted:email\]~[A-Za-z0-9_-]{12}$/);
    expect(event.properties).toEqual({
      contact: "mail me at [redacted:email]",
      cart: {
        items: [
          { sku: "SKU-1", note: "gift" },
          { sku: "SKU-2", note: "call [redacted:phone] or [redacted:phone]" },
        ],
        total: 129.99,
      },
      tags: ["vip", "ip [redacted:ip]"],
      clean: { nested: ["plain", 1, true, null] },
    });
  });

  it("redact: shares the untouched parts of the event instead of copying them", () => {
    const input = pollutedEvent();
    const { event } = applyPiiPolicy(input, "redact");
    const inputCart = input.properties.cart as { items: unknown[] };
    const outputCart = event.properties.cart as { items: unknown[] };
    expect(event).not.toBe(input);
    expect(event.properties.clean).toBe(input.properties.clean);
    expect(outputCart.items[0]).toBe(inputCart.items[0]);
    expect(outputCart.items[1]).not.toBe(inputCart.items[1]);
  });

  it("does not mutate the input under any policy", () => {
    for (const policy of ["redact", "drop", "allow"] as const) {
      const input = deepFreeze(pollutedEvent());
      const snapshot = structuredClone(input);
      applyPiiPolicy(input, policy);
      expect(input).toEqual(snapshot);
    }
  });

  it("drop: rejects with the first offending field and keeps the event as it was", () => {
    const input = makeEvent({ properties: { note: "hi", contact: "mail me at a@b.com", ip: "10.0.0.1" } });
    const result = applyPiiPolicy(input, "drop");
    expect(result.dropReason).toBe("properties.contact contains an email address (pii policy: drop)");
    expect(result.event).toBe(input);
    expect(result.detections).toEqual({ email: 1, ip: 1 });
  });

  it("drop: names array positions, top-level fields and odd keys in the reason", () => {
    expect(applyPiiPolicy(pollutedEvent(), "drop").dropReason).toBe(
      "user_id contains an email address (pii policy: drop)",
    );
    const nested = makeEvent({ properties: { cart: { items: [{ n: "ok" }, { n: "4111 1111 1111 1111" }] } } });
    expect(applyPiiPolicy(nested, "drop").dropReason).toBe(
      "properties.cart.items[1].n contains a payment card number (pii policy: drop)",
    );
    const oddKey = makeEvent({ properties: { "billing address": "call 415-555-2671" } });
    expect(applyPiiPolicy(oddKey, "drop").dropReason).toBe(
      'properties["billing address"] contains a phone number (pii policy: drop)',
    );
  });

  it("allow: leaves the event as it is but still counts detections", () => {
    const input = pollutedEvent();
    const result = applyPiiPolicy(input, "allow");
    expect(result.event).toBe(input);
    expect(result.dropReason).toBeUndefined();
    expect(result.detections).toEqual({ email: 2, phone: 2, ip: 1 });
  });

  it("returns a clean event as the same object under every policy", () => {
    const input = makeEvent({
      properties: {
        order_id: "4111 1111 1111 1112",
        at: "2024-01-15T10:30:45Z",
        version: "10.2.3",
        items: [{ sku: "123e4567-e89b-12d3-a456-426614174000", price: "$1,299.99" }],
        card_like_number: 4111111111111111,
      },
    });
    for (const policy of ["redact", "drop", "allow"] as const) {
      const result = applyPiiPolicy(input, policy);
      expect(result.event).toBe(input);
      expect(result.detections).toEqual({});
      expect(result.dropReason).toBeUndefined();
    }
  });

  it("scans user_id, session_id, channel and event_name but never tenant_id or event_id", () => {
    const input = makeEvent({
      tenant_id: "a@b.com",
      event_id: "10.0.0.1",
      event_name: "signup a@b.com",
      session_id: "user:c@d.com",
      user_id: "415-555-2671",
      channel: "sms +14155552671",
    });
    const { event, detections } = applyPiiPolicy(input, "redact");
    expect(event.tenant_id).toBe("a@b.com");
    expect(event.event_id).toBe("10.0.0.1");
    expect(event.event_name).toBe("signup [redacted:email]");
    // Identifiers keep a keyed digest of the original so distinct users stay distinct sessions.
    expect(event.session_id).toMatch(/^user:\[redacted:email\]~[A-Za-z0-9_-]{12}$/);
    expect(event.user_id).toMatch(/^\[redacted:phone\]~[A-Za-z0-9_-]{12}$/);
    const other = applyPiiPolicy(makeEvent({ ...input, session_id: "user:x@y.com" }), "redact").event;
    expect(other.session_id).not.toBe(event.session_id);
    expect(applyPiiPolicy(input, "redact").event.session_id).toBe(event.session_id);
    expect(event.channel).toBe("sms [redacted:phone]");
    expect(detections).toEqual({ email: 2, phone: 2 });
  });

  it("does not scan object keys, numbers, or null fields", () => {
    const input = makeEvent({
      user_id: null,
      channel: null,
      properties: { "a@b.com": "value", amount: 4111111111111111, nothing: null },
    });
    expect(applyPiiPolicy(input, "redact").event).toBe(input);
  });

  it("redacts a parsed __proto__ key as a property, not the prototype", () => {
    const properties = JSON.parse('{"__proto__": "a@b.com"}') as Record<string, unknown>;
    const { event } = applyPiiPolicy(makeEvent({ properties }), "redact");
    expect(Object.getOwnPropertyDescriptor(event.properties, "__proto__")?.value).toBe("[redacted:email]");
    expect(Object.getPrototypeOf(event.properties)).toBe(Object.prototype);
  });
});

function countTokens(text: string): number {
  return (text.match(/\[redacted:[a-z]+\]/g) ?? []).length;
}

describe("redactString properties", () => {
  /** Fragments that sit near the detectors' edges, so joined strings probe their boundaries. */
  const fragments = fc.constantFrom(
    "a@b.com", "@", ".", "-", " ", ":", "::", "+", "(", ")", "/", ",", "_", "x", "e", "T", "Z",
    "1", "0", "9", "12", "415", "555", "2671", "4111", "1111", "4012", "8888", "1881",
    "192.168.1.1", "10", "255", "fe80", "db8", "123-45-6789", "eyJhbGciOiJIUzI1NiJ9", "sk_live_",
    "AKIA", "IOSFODNN7EXAMPLE", "Bearer ", "ghp_", "abcdefghijklmnopqrst1234", "[redacted:card]",
  );
  const edgyStrings = fc.array(fragments, { maxLength: 24 }).map((parts) => parts.join(""));
  const anyStrings = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.string({ unit: "binary", maxLength: 200 }),
    edgyStrings,
  );

  it("never throws, and its output scans clean (redaction is idempotent)", () => {
    fc.assert(
      fc.property(anyStrings, (text) => {
        const once = redactString(text);
        expect(detectPii(once.text)).toEqual([]);
        const twice = redactString(once.text);
        expect(twice.text).toBe(once.text);
        expect(twice.detections).toEqual({});
      }),
      { numRuns: 3000 },
    );
  });

  it("counts one detection per token it writes", () => {
    fc.assert(
      fc.property(edgyStrings, (text) => {
        const { text: out, detections } = redactString(text);
        const written = countTokens(out) - countTokens(text);
        const counted = Object.values(detections).reduce((sum, n) => sum + n, 0);
        expect(counted).toBe(written);
      }),
      { numRuns: 2000 },
    );
  });
});
