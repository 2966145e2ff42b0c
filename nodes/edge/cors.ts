/**
 * Cross-origin requests from browsers (CORS). Web SDKs post events to the edge from the pages of
 * the sites they measure, which are other origins: a `fetch` with a JSON body or an `X-API-Key`
 * header is preflighted (`OPTIONS`) and its answer is readable to the page only with
 * `Access-Control-Allow-Origin`. So the edge answers preflights on its ingest and count paths
 * and marks their answers.
 *
 * `CORS_ALLOWED_ORIGINS`:
 *   `*` (default)  any origin, as public ingestion APIs do (an ingest key is a write-only key
 *                  that ships inside pages anyway); answers carry `Access-Control-Allow-Origin: *`
 *   a list         `https://app.example.com, https://*.example.org` (a `*.` host: any subdomain);
 *                  answers name the request's origin (and `Vary: Origin`). A request that carries
 *                  an `Origin` outside the list is refused 403 and changes nothing: beacons and
 *                  simple requests are never preflighted, so hiding the answer alone would not stop
 *                  another site from sending with a key it copied; WebSocket upgrades likewise.
 *   `none`         no CORS answers at all (browsers then cannot use these paths cross-origin).
 * Requests without `Origin` (servers, curl, mobile SDKs) are never affected.
 */
import { errorReply, type HttpReply } from "./http-server";

/** Request headers a browser client may send (everything the edge reads from a client). */
const ALLOWED_HEADERS = "Content-Type, Content-Encoding, X-API-Key, Authorization, Idempotency-Key";
/** Answer headers a page may read: Retry-After tells it when to send again after a 429 or 503. */
const EXPOSED_HEADERS = "Retry-After";
/** How long a browser may reuse a preflight's answer. */
const PREFLIGHT_MAX_AGE_SEC = 86_400;

interface OriginPattern {
  scheme: string;
  /** The host, or the suffix after `*.` for a wildcard entry. */
  host: string;
  wildcard: boolean;
  /** The port as written, or "" for the scheme's default. */
  port: string;
}

export type OriginCheck = "no-origin" | "allowed" | "refused";

export class CorsPolicy {
  private readonly mode: "any" | "list" | "none";
  private readonly patterns: OriginPattern[];

  /** `spec`: `*`, `none`, or a comma list of origins (see above). Throws on a malformed entry. */
  constructor(spec: string) {
    const trimmed = spec.trim();
    if (trimmed === "*" || trimmed === "") {
      this.mode = "any";
      this.patterns = [];
    } else if (trimmed === "none") {
      this.mode = "none";
      this.patterns = [];
    } else {
      this.mode = "list";
      this.patterns = trimmed
        .split(",")
        .map((entry) => entry.trim())
        .filter((entry) => entry !== "")
        .map(parseOriginPattern);
    }
  }

  /** Whether a request with this `Origin` header (undefined: none) may be served. */
  check(origin: string | undefined): OriginCheck {
    if (origin === undefined) return "no-origin";
    if (this.mode !== "list") return "allowed";
    return this.patterns.some((p) => matches(p, origin)) ? "allowed" : "refused";
  }

  /** The 403 for a request whose origin is outside the list, else null. */
  refusal(origin: string | undefined): HttpReply | null {
    return this.check(origin) === "refused" ? originRefused(origin!) : null;
  }

  /** The answer to an allowed request, marked for the browser when it came from one. */
  decorate(origin: string | undefined, reply: HttpReply): HttpReply {
    if (origin === undefined || this.mode === "none" || this.check(origin) === "refused") return reply;
    return { ...reply, headers: { ...reply.headers, ...this.allowHeaders(origin), "Access-Control-Expose-Headers": EXPOSED_HEADERS } };
  }

  /** The answer to `OPTIONS` on a path that takes `methods`. */
  preflight(origin: string | undefined, methods: string): HttpReply {
    if (origin === undefined || this.mode === "none") return errorReply("method_not_allowed");
    if (this.check(origin) === "refused") return originRefused(origin);
    return {
      status: 204,
      body: "",
      headers: {
        ...this.allowHeaders(origin),
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": String(PREFLIGHT_MAX_AGE_SEC),
      },
    };
  }

  private allowHeaders(origin: string): Record<string, string> {
    return this.mode === "any" ? { "Access-Control-Allow-Origin": "*" } : { "Access-Control-Allow-Origin": origin, Vary: "Origin" };
  }
}

function originRefused(origin: string): HttpReply {
  return errorReply("origin_not_allowed", `Origin ${JSON.stringify(origin.slice(0, 200))} is not in CORS_ALLOWED_ORIGINS`);
}

const ORIGIN = /^(https?):\/\/(\*\.)?([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/;

function parseOriginPattern(entry: string): OriginPattern {
  const match = ORIGIN.exec(entry.toLowerCase());
  if (!match || match[3]!.startsWith(".") || match[3]!.endsWith(".") || Number(match[4] ?? 0) > 65_535) {
    throw new Error(`"${entry}" is not an origin (scheme://host[:port], the host may start with *.)`);
  }
  return { scheme: match[1]!, wildcard: match[2] !== undefined, host: match[3]!, port: explicitPort(match[1]!, match[4]) };
}

/** The port as written, "" for none or for the scheme's default (browsers leave that out of `Origin`). */
function explicitPort(scheme: string, port: string | undefined): string {
  if (port === undefined || (scheme === "http" && port === "80") || (scheme === "https" && port === "443")) return "";
  return port;
}

function matches(pattern: OriginPattern, origin: string): boolean {
  const match = ORIGIN.exec(origin.toLowerCase());
  if (!match || match[2] !== undefined) return false;
  const [, scheme, , host, port] = match;
  if (scheme !== pattern.scheme || explicitPort(scheme!, port) !== pattern.port) return false;
  return pattern.wildcard ? host!.endsWith(`.${pattern.host}`) : host === pattern.host;
}
