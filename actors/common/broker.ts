/** Small typed helpers over Moleculer APIs whose typings lag the runtime. */
import type { ServiceBroker } from "moleculer";

interface RegistryRuntime {
  hasService(fullName: string, nodeID?: string): boolean;
}

/** True when some available node (this one included) runs `service`. */
export function serviceAvailable(broker: ServiceBroker, service: string): boolean {
  return (broker.registry as unknown as RegistryRuntime).hasService(service);
}
