/**
 * API key → tenant lookup. Keys are held only as SHA-256 digests, and the presented key's
 * digest is compared with `timingSafeEqual`, which needs equal lengths: comparing digests
 * (always 32 bytes) rather than raw keys satisfies that and leaks nothing about key length.
 * Entries may arrive as plaintext keys (INGEST_API_KEYS, API_KEYS_FILE) or as digests already
 * (API_KEYS_FILE `sha256`), so an operator never has to store a plaintext key.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { ApiKeyEntry } from "../../config/env";
import { KEY_SCOPES, type KeyScope } from "../../config/keys-file";

export interface Principal {
  tenant: string;
  /** A stable, non-secret id of the key (digest prefix), for rate limits and logs. */
  keyId: string;
  /** What the key may do (API_KEYS_FILE `scopes`; every scope by default). */
  scopes: ReadonlySet<KeyScope>;
}

function digest(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

export class ApiKeyStore {
  private byDigest = new Map<string, { digest: Buffer; principal: Principal }>();

  constructor(entries: readonly ApiKeyEntry[]) {
    this.replace(entries);
  }

  /**
   * Swaps in a new set of keys at once (a reload): a request sees the old set or the new one,
   * never a mix. A key in both keeps working without a gap.
   */
  replace(entries: readonly ApiKeyEntry[]): void {
    const byDigest = new Map<string, { digest: Buffer; principal: Principal }>();
    for (const entry of entries) {
      const d = "key" in entry ? digest(entry.key) : Buffer.from(entry.sha256, "hex");
      const hex = d.toString("hex");
      const scopes = new Set<KeyScope>(entry.scopes ?? KEY_SCOPES);
      byDigest.set(hex, { digest: d, principal: { tenant: entry.tenant, keyId: hex.slice(0, 16), scopes } });
    }
    this.byDigest = byDigest;
  }

  /** Every key's principal (for per-key settings, built at start-up and on each reload). */
  principals(): Principal[] {
    return [...this.byDigest.values()].map((e) => e.principal);
  }

  get size(): number {
    return this.byDigest.size;
  }

  authenticate(presented: string | undefined): Principal | null {
    if (!presented || presented.length > 1024) return null;
    const d = digest(presented);
    const entry = this.byDigest.get(d.toString("hex"));
    if (!entry || !timingSafeEqual(entry.digest, d)) return null;
    return entry.principal;
  }
}

/** The key from `X-API-Key`, or from `Authorization: Bearer <key>`. */
export function presentedKey(headers: Record<string, string>): string | undefined {
  const direct = headers["x-api-key"];
  if (direct) return direct.trim();
  const auth = headers["authorization"];
  if (auth && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, "").trim();
  return undefined;
}
