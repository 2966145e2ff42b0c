/**
 * The address a request came from, when the edge runs behind proxies or load balancers.
 *
 * Behind a load balancer every socket's peer is the balancer, so the per-address limit on
 * requests without a valid key (ip-limiter.ts) would put every client in one bucket. With
 * `TRUSTED_PROXIES` set, a request whose peer is one of them is attributed to the address its
 * `X-Forwarded-For` names instead: the list is read from the right (each proxy appends the
 * peer it saw), skipping addresses that are themselves trusted proxies, and the first one that is
 * not is the client. Entries further left were written by the client and are never believed,
 * so a client cannot pick its own bucket by sending the header. Without trusted proxies (the
 * default) the header is ignored.
 */

/** An IPv4 or IPv6 network (a single address is a /32 or /128), held as IPv6 (IPv4 mapped). */
interface Network {
  groups: number[];
  prefix: number;
}

/** The networks requests may be forwarded through. */
export class TrustedProxies {
  private readonly networks: Network[];

  /** `spec`: comma-separated addresses and CIDR networks (`10.0.0.0/8, 192.168.1.7, fd00::/8`). Throws on any bad entry. */
  constructor(spec: string) {
    this.networks = spec
      .split(",")
      .map((entry) => entry.trim())
      .filter((entry) => entry !== "")
      .map(parseNetwork);
  }

  get size(): number {
    return this.networks.length;
  }

  contains(address: string): boolean {
    const groups = parseAddress(address);
    return groups !== null && this.containsGroups(groups);
  }

  /** `contains` for an address already parsed by `parseAddress`. */
  containsGroups(groups: number[]): boolean {
    return this.networks.some((network) => inNetwork(groups, network));
  }
}

/**
 * The client's address: `peer` unless `peer` is a trusted proxy, else the right-most address of
 * `forwardedFor` that is not one. An entry that is not an address ends the walk at the last
 * trusted hop (a proxy that forwards the header unchecked cannot make the client choose).
 */
export function clientAddress(peer: string, forwardedFor: string | undefined, trusted: TrustedProxies): string {
  if (trusted.size === 0 || forwardedFor === undefined || !trusted.contains(peer)) return peer;
  const hops = forwardedFor.split(",");
  let last = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = stripPort(hops[i]!.trim());
    const groups = parseAddress(hop);
    if (groups === null) return last;
    if (!trusted.containsGroups(groups)) return hop;
    last = hop;
  }
  return last;
}

/** `[v6]:port` and `a.b.c.d:port` as some proxies write them, without the port. */
function stripPort(hop: string): string {
  if (hop.startsWith("[")) {
    const end = hop.indexOf("]");
    return end === -1 ? hop : hop.slice(1, end);
  }
  const colon = hop.indexOf(":");
  if (colon !== -1 && colon === hop.lastIndexOf(":") && hop.includes(".")) return hop.slice(0, colon);
  return hop;
}

function parseNetwork(entry: string): Network {
  const slash = entry.indexOf("/");
  const addressText = slash === -1 ? entry : entry.slice(0, slash);
  const groups = parseAddress(addressText);
  if (groups === null) throw new Error(`"${entry}" is not an IP address or CIDR network`);
  const ipv4 = !addressText.includes(":");
  const max = ipv4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const text = entry.slice(slash + 1);
    prefix = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
    if (!(prefix >= 0 && prefix <= max)) throw new Error(`"${entry}": the prefix length must be 0-${max}`);
  }
  return { groups, prefix: ipv4 ? 96 + prefix : prefix };
}

function inNetwork(groups: number[], network: Network): boolean {
  let bits = network.prefix;
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    if ((groups[i]! & mask) !== (network.groups[i]! & mask)) return false;
  }
  return true;
}

const DOTTED_QUAD = /^\d{1,3}(\.\d{1,3}){3}$/;

/** The two 16-bit groups of a dotted-quad IPv4 address, or null when `text` is not one. */
function ipv4Groups(text: string): [number, number] | null {
  if (!DOTTED_QUAD.test(text)) return null;
  const [a, b, c, d] = text.split(".").map(Number) as [number, number, number, number];
  if (a > 255 || b > 255 || c > 255 || d > 255) return null;
  return [(a << 8) | b, (c << 8) | d];
}

/**
 * The eight 16-bit groups of an address, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`, which is
 * also how a dual-stack socket reports IPv4 peers), or null when `text` is not an address.
 */
export function parseAddress(text: string): number[] | null {
  if (!text.includes(":")) {
    const v4 = ipv4Groups(text);
    return v4 === null ? null : [0, 0, 0, 0, 0, 0xffff, v4[0], v4[1]];
  }
  return expandIpv6(text.toLowerCase());
}

/** The eight 16-bit groups of an IPv6 address (lower case, a zone suffix allowed), or null when it is not one. */
export function expandIpv6(text: string): number[] | null {
  const zone = text.indexOf("%");
  const bare = zone === -1 ? text : text.slice(0, zone);
  const halves = bare.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    for (const group of part.split(":")) {
      const v4 = group.includes(".") ? ipv4Groups(group) : null;
      if (v4 !== null) {
        out.push(v4[0], v4[1]);
      } else if (/^[0-9a-f]{1,4}$/.test(group)) {
        out.push(parseInt(group, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if (head === null || tail === null) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return null;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}
