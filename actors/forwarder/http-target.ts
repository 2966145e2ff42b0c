/** POSTs one batch of events as JSON; any non-2xx answer or network error is a failure to retry. */
import type { IngestEvent } from "../common/event";

export async function postJsonBatch(url: string, events: readonly IngestEvent[], timeoutMs: number): Promise<void> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ events }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  // Drain the body so the connection can be reused.
  await response.arrayBuffer().catch(() => undefined);
  if (!response.ok) throw new Error(`forward target answered ${response.status}`);
}
