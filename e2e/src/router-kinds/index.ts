export { CgnatChain } from './cgnat';
export {
  AddressRestrictedNat,
  FullConeNat,
  type HairpinOption,
  PortRestrictedNat,
} from './endpoint-independent';
export { PortForwardRouter, type UdpForward } from './port-forward';
export { RoutedRouter } from './routed';
export type { CarrierNat, RouterContext, RouterKind, RouterServiceHost } from './router-kind';
export { SymmetricNat } from './symmetric';
export { UdpBlockedNat } from './udp-blocked';
export { UpnpNat } from './upnp';
