import type { PortMappedCandidate } from '@trellis/portmap';

/** What the agent uses of @trellis/portmap's PortMappingClient (an interface so tests need no gateway). */
export interface GatewayPortMapping {
  on(event: 'candidate', listener: (c: PortMappedCandidate | null) => void): unknown;
  start(): void;
  refresh(): void;
  stop(): Promise<void>;
}
