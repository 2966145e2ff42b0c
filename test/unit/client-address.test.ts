import { describe, expect, it } from "vitest";
import { clientAddress, parseAddress, TrustedProxies } from "../../nodes/edge/client-address";

describe("TrustedProxies", () => {
  it.each([
    // [spec, address, contained]
    ["10.0.0.0/8", "10.200.3.4", true],
    ["10.0.0.0/8", "11.0.0.1", false],
    ["192.168.1.7", "192.168.1.7", true],
    ["192.168.1.7", "192.168.1.8", false],
    ["172.16.0.0/12", "172.31.255.255", true],
    ["172.16.0.0/12", "172.32.0.0", false],
    ["0.0.0.0/0", "8.8.8.8", true],
    ["10.0.0.0/8", "::ffff:10.1.2.3", true], // a dual-stack socket's view of an IPv4 peer
    ["10.0.0.0/8", "0000:0000:0000:0000:0000:ffff:0a01:0203", true], // ...in hex groups
    ["127.0.0.1", "::ffff:7f00:1", true],
    ["fd00::/8", "fd12:3456::1", true],
    ["fd00::/8", "fe80::1", false],
    ["2001:db8::/32", "2001:DB8:0:0:1::1", true],
    ["::1", "::1", true],
    ["::1", "::2", false],
    ["10.0.0.0/8, fd00::/8", "fd00::5", true],
    ["10.0.0.0/8", "not an address", false],
    ["", "10.0.0.1", false],
  ])("%s contains %s: %s", (spec, address, expected) => {
    expect(new TrustedProxies(spec).contains(address)).toBe(expected);
  });

  it.each(["10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "fd00::/129", "300.0.0.1", "10.0.0", "proxy.internal", "10.0.0.0/8/8", "1::2::3"])(
    "refuses %j",
    (spec) => {
      expect(() => new TrustedProxies(spec)).toThrow();
    },
  );

  it("ignores blanks between entries", () => {
    expect(new TrustedProxies(" 10.0.0.1 , ,fd00::1 ").size).toBe(2);
  });
});

describe("clientAddress", () => {
  const lb = new TrustedProxies("10.0.0.0/8, fd00::/8");
  const none = new TrustedProxies("");

  it.each([
    // [peer, X-Forwarded-For, expected]
    ["10.0.0.2", "203.0.113.9", "203.0.113.9"],
    ["10.0.0.2", "198.51.100.1, 203.0.113.9", "203.0.113.9"], // the left entry is the client's word only
    ["10.0.0.2", "203.0.113.9, 10.0.0.3", "203.0.113.9"], // two proxies deep
    ["10.0.0.2", "10.0.0.5, 10.0.0.3", "10.0.0.5"], // every hop trusted: the furthest one
    ["10.0.0.2", "203.0.113.9:51234", "203.0.113.9"], // a port, as some proxies write it
    ["10.0.0.2", "[2001:db8::7]:443", "2001:db8::7"],
    ["10.0.0.2", "2001:db8::7", "2001:db8::7"],
    ["10.0.0.2", "unknown", "10.0.0.2"], // not an address: the last trusted hop
    ["10.0.0.2", "203.0.113.9, garbage, 10.0.0.3", "10.0.0.3"],
    ["10.0.0.2", "", "10.0.0.2"],
    ["::ffff:10.0.0.2", "203.0.113.9", "203.0.113.9"],
    ["fd00::9", "203.0.113.9", "203.0.113.9"],
    ["203.0.113.50", "198.51.100.1", "203.0.113.50"], // not from a proxy: the header is the client's own
  ])("peer %s, X-Forwarded-For %j → %s", (peer, forwardedFor, expected) => {
    expect(clientAddress(peer, forwardedFor, lb)).toBe(expected);
  });

  it("without trusted proxies, or without the header, the peer is the client", () => {
    expect(clientAddress("10.0.0.2", "203.0.113.9", none)).toBe("10.0.0.2");
    expect(clientAddress("10.0.0.2", undefined, lb)).toBe("10.0.0.2");
  });
});

describe("parseAddress", () => {
  it("reads IPv4 as IPv4-mapped IPv6 and refuses what is not an address", () => {
    expect(parseAddress("1.2.3.4")).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
    expect(parseAddress("::ffff:1.2.3.4")).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
    expect(parseAddress("1.2.3.256")).toBeNull();
    expect(parseAddress("::ffff:1.2.3.256")).toBeNull();
    expect(parseAddress("example.com")).toBeNull();
    expect(parseAddress("")).toBeNull();
  });
});
