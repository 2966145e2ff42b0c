/**
 * A consistent-hash ring over the nodes that currently run one Moleculer service, kept in step
 * with the registry. Every node computes the same ring from the same membership, so every edge
 * sends a given session (or rate-limit key) to the same owner. Nodes can be excluded for a
 * while (a node that announced it is draining, or one that just failed a call) so traffic
 * moves to the next owner without waiting for the heartbeat timeout.
 */
import type { ServiceBroker } from "moleculer";
import { HashRing } from "../session/hash-ring";

interface RegistryService {
  name: string;
  nodeID: string;
  available?: boolean;
}

export class ServiceRing {
  private readonly ring = new HashRing();
  private readonly excludedUntil = new Map<string, number>();
  private readonly onChange = () => this.refresh();

  constructor(
    private readonly broker: ServiceBroker,
    private readonly service: string,
  ) {
    broker.localBus.on("$services.changed", this.onChange);
    broker.localBus.on("$node.disconnected", this.onChange);
    broker.localBus.on("$node.connected", this.onChange);
    this.refresh();
  }

  /** The owner of `key`, or undefined when no node runs the service. */
  owner(key: string): string | undefined {
    if (this.excludedUntil.size > 0) this.expireExclusions();
    return this.ring.owner(key);
  }

  ownerOf(tenantId: string, sessionId: string): string | undefined {
    if (this.excludedUntil.size > 0) this.expireExclusions();
    return this.ring.ownerOf(tenantId, sessionId);
  }

  nodes(): string[] {
    return this.ring.nodes();
  }

  /** Each member's share of the keys (see HashRing.shares). */
  shares(): Map<string, number> {
    if (this.excludedUntil.size > 0) this.expireExclusions();
    return this.ring.shares();
  }

  /** Leaves `nodeID` out of the ring for `ms` (or until it disappears from the registry). */
  exclude(nodeID: string, ms: number): void {
    this.excludedUntil.set(nodeID, Date.now() + ms);
    this.refresh();
  }

  close(): void {
    this.broker.localBus.off("$services.changed", this.onChange);
    this.broker.localBus.off("$node.disconnected", this.onChange);
    this.broker.localBus.off("$node.connected", this.onChange);
  }

  refresh(): void {
    const services = this.broker.registry.getServiceList({ onlyAvailable: true }) as unknown as RegistryService[];
    const now = Date.now();
    const members = new Set<string>();
    for (const svc of services) {
      if (svc.name !== this.service) continue;
      const until = this.excludedUntil.get(svc.nodeID);
      if (until !== undefined && until > now) continue;
      members.add(svc.nodeID);
    }
    this.ring.setNodes(members);
  }

  private expireExclusions(): void {
    const now = Date.now();
    let changed = false;
    for (const [node, until] of this.excludedUntil) {
      if (until <= now) {
        this.excludedUntil.delete(node);
        changed = true;
      }
    }
    if (changed) this.refresh();
  }
}
