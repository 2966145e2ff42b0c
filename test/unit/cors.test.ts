import { describe, expect, it } from "vitest";
import { CorsPolicy } from "../../nodes/edge/cors";

const OK = { status: 202, body: "{}" };

describe("CorsPolicy", () => {
  it("any origin by default: answers carry Access-Control-Allow-Origin: *, nothing is refused", () => {
    for (const spec of ["*", " * ", ""]) {
      const cors = new CorsPolicy(spec);
      expect(cors.check("https://shop.example")).toBe("allowed");
      expect(cors.refusal("https://shop.example")).toBeNull();
      expect(cors.decorate("https://shop.example", OK).headers).toEqual({
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "Retry-After",
      });
    }
  });

  it("leaves requests without an Origin (servers, curl, mobile SDKs) as they are", () => {
    for (const spec of ["*", "none", "https://app.example.com"]) {
      const cors = new CorsPolicy(spec);
      expect(cors.check(undefined)).toBe("no-origin");
      expect(cors.refusal(undefined)).toBeNull();
      expect(cors.decorate(undefined, OK)).toBe(OK);
    }
  });

  it("answers a preflight with the methods, the headers a client sends, and a day's max age", () => {
    const reply = new CorsPolicy("*").preflight("https://shop.example", "POST, OPTIONS");
    expect(reply).toEqual({
      status: 204,
      body: "",
      headers: {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Content-Encoding, X-API-Key, Authorization, Idempotency-Key",
        "Access-Control-Max-Age": "86400",
      },
    });
    // OPTIONS without an Origin is no preflight.
    expect(new CorsPolicy("*").preflight(undefined, "POST, OPTIONS").status).toBe(405);
  });

  it("a list names the request's origin (and Vary: Origin) and refuses others with 403", () => {
    const cors = new CorsPolicy("https://app.example.com, https://*.example.org, http://localhost:3000");
    const decorated = cors.decorate("https://app.example.com", { ...OK, headers: { "Retry-After": "1" } });
    expect(decorated.headers).toEqual({
      "Retry-After": "1",
      "Access-Control-Allow-Origin": "https://app.example.com",
      Vary: "Origin",
      "Access-Control-Expose-Headers": "Retry-After",
    });
    for (const allowed of ["https://app.example.com", "HTTPS://APP.EXAMPLE.COM", "https://a.example.org", "https://a.b.example.org", "http://localhost:3000", "https://app.example.com:443"]) {
      expect(cors.check(allowed), allowed).toBe("allowed");
    }
    for (const refused of [
      "http://app.example.com", // another scheme
      "https://app.example.com:8443", // another port
      "https://example.org", // the wildcard wants a subdomain
      "https://evilexample.org",
      "https://example.org.evil.com",
      "https://app.example.com.evil.com",
      "http://localhost:3001",
      "null", // sandboxed frames and file:// pages
      "https://*.example.org",
    ]) {
      expect(cors.check(refused), refused).toBe("refused");
    }
    const refusal = cors.refusal("https://evil.example")!;
    expect(refusal.status).toBe(403);
    expect(JSON.parse(refusal.body)).toEqual({
      error: { code: "origin_not_allowed", message: 'Origin "https://evil.example" is not in CORS_ALLOWED_ORIGINS' },
    });
    expect(cors.preflight("https://evil.example", "POST, OPTIONS").status).toBe(403);
    // A refused origin's answer is not marked for the browser.
    expect(cors.decorate("https://evil.example", OK)).toBe(OK);
  });

  it("none: no CORS answers, nothing refused (browsers cannot read answers cross-origin)", () => {
    const cors = new CorsPolicy("none");
    expect(cors.refusal("https://shop.example")).toBeNull();
    expect(cors.decorate("https://shop.example", OK)).toBe(OK);
    expect(cors.preflight("https://shop.example", "POST, OPTIONS").status).toBe(405);
  });

  it.each(["example.com", "ftp://example.com", "https://", "https://exa mple.com", "https://example.com/path", "https://.example.com", "https://example.com:99999x", "https://example.com:65536", "https://*"])(
    "refuses the malformed entry %j",
    (entry) => {
      expect(() => new CorsPolicy(`https://ok.example, ${entry}`)).toThrow(/is not an origin/);
    },
  );
});
