export type { DefaultRoute, GatewayDiscovery } from './gateway/gateway-discovery';
export { LinuxGatewayDiscovery, parseProcNetRoute } from './gateway/linux-gateway';
export { NatPmpMapper } from './natpmp/natpmp-mapper';
export { PcpMapper } from './pcp/pcp-mapper';
export {
  defaultMappers,
  type PortMappedCandidate,
  PortMappingClient,
  type PortMappingClientEvents,
  type PortMappingClientOptions,
} from './port-mapping-client';
export { DEFAULT_TIMEOUTS, type MapperTimeouts } from './retry';
export { type MappingProtocol, PortMapError, type PortMapper, type PortMapping } from './types';
export { UpnpMapper } from './upnp/upnp-mapper';
