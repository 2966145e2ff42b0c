import { it } from "vitest";
import { runSessionClients, startCluster, waitForCluster } from "../support/cluster";
it("debug", async () => {
  const cluster = await startCluster(["d1", "d2", "d3"]);
  try {
    await waitForCluster([...cluster.nodes.values()]);
    await new Promise((r) => setTimeout(r, 1500));
    let stop = false;
    const clients = runSessionClients({ sessions: 500, eventsPerBatch: 4, edges: () => [...cluster.nodes.values()], until: () => stop, pauseMs: 50 });
    await new Promise((r) => setTimeout(r, 4000));
    stop = true;
    const stats = await clients;
    for (const n of cluster.nodes.values()) console.log(n.output().split("\n").filter((l) => l.includes("DEBUG")).slice(0, 3).join("\n"));
    console.log("acked", stats.acked.length, "failures", JSON.stringify(stats.failures), "maxAck", stats.maxAckMs);
    const m = await (await fetch([...cluster.nodes.values()][0]!.url + "/metrics")).text();
    console.log(m.split("\n").filter((l) => /ratelimit|rejected/.test(l) && !l.startsWith("#")).join("\n"));
  } finally {
    await cluster.stop();
  }
}, 120_000);
