import type {
  AgentState,
  GuardStatus,
  NetmapSelf,
  PeerStatus,
  StatusResponse,
  VirtualStatus,
} from '@trellis/proto';
import { type Netmap, rulesOf } from '../control/netmap-tracker';
import type { PeerPathStatus } from '../path';
import type { FullGatewayPrefs } from '../routes/gateway-prefs';
import type { WgDeviceState } from '../wireguard/types';
import type { MeshSession } from './mesh-session';

export interface StatusInputs {
  state: AgentState;
  self: NetmapSelf | null;
  /** The URL connected to (or last tried), else the first. */
  brokerUrl: string | null;
  brokerUrls?: readonly string[];
  /** The address of `brokerUrl`'s host name the agent picked; null: not resolved by the agent. */
  brokerAddress?: string | null;
  brokerConnected: boolean;
  lastError: string | null;
  interfaceName: string;
  listenPort: number;
  publicKey: string | null;
  backend: string;
  netmap: Netmap | null;
  netmapSource: 'broker' | 'disk' | 'none';
  /** What WireGuard reports now; null when the interface is down. */
  device: WgDeviceState | null;
  /** The path logic's view of each peer (empty without it). */
  paths?: PeerPathStatus[];
  netinfo?: StatusResponse['netinfo'];
  /** Pins and firewall; absent without them. */
  guard?: GuardStatus;
  dns?: StatusResponse['dns'];
  /** A sign-in waiting for the user's approval. */
  signIn?: StatusResponse['signIn'];
  gateway?: StatusResponse['gateway'];
  /** The netmap's virtual devices, reachable or why not. */
  virtual?: VirtualStatus[];
}

/** What the status takes from the mesh session (or says without one). */
export function sessionStatusInputs(
  s: MeshSession | null,
  prefs: FullGatewayPrefs,
): Pick<
  StatusInputs,
  | 'self'
  | 'brokerAddress'
  | 'brokerConnected'
  | 'netmap'
  | 'netmapSource'
  | 'paths'
  | 'dns'
  | 'gateway'
  | 'netinfo'
  | 'virtual'
> {
  const dns = s?.dnsStatus();
  return {
    self: s?.netmap?.self ?? null,
    brokerAddress: s?.control.brokers.current?.address ?? null,
    brokerConnected: s?.control.connected ?? false,
    netmap: s?.netmap ?? null,
    netmapSource: s?.netmapSource ?? 'none',
    paths: s?.pathStatus() ?? [],
    ...(dns ? { dns } : {}),
    gateway: s ? s.routing.status(s.netmap) : { prefs, advertised: [], routes: [], exitNode: null },
    netinfo: s?.netinfo() ?? { reflexive: [], mappingType: null, portMapped: null, brokerRttMs: null },
    virtual: s?.virtual.status(s.netmap) ?? [],
  };
}

function accessOf(netmap: Netmap, peerId: string) {
  const r = rulesOf(netmap, peerId);
  return { in: r.in, out: r.out };
}

/** The netmap merged with what WireGuard itself reports (endpoint in use, handshake, counters). */
export function buildStatus(i: StatusInputs): StatusResponse {
  const live = new Map((i.device?.peers ?? []).map((p) => [p.publicKey, p]));
  const paths = new Map((i.paths ?? []).map((p) => [p.peerId, p]));
  const refused = new Set((i.guard?.refused ?? []).map((r) => `${r.address} ${r.offeredKey}`));
  const peers: PeerStatus[] = (i.netmap?.peers ?? []).map((p) => {
    const wg = live.get(p.publicKey);
    const path = paths.get(p.id);
    const pathFields = path
      ? {
          path: path.path,
          pathSince: new Date(path.since).toISOString(),
          pathPhase: path.phase,
          ...(path.relayName !== null ? { relayName: path.relayName } : {}),
        }
      : {};
    return {
      ...pathFields,
      id: p.id,
      name: p.name,
      dnsName: p.dnsName,
      address: p.address,
      publicKey: p.publicKey,
      online: p.online,
      endpoint: wg?.endpoint ?? null,
      candidates: p.endpoints,
      lastHandshake:
        wg && wg.lastHandshakeSec > 0 ? new Date(wg.lastHandshakeSec * 1000).toISOString() : null,
      rxBytes: wg?.rxBytes ?? 0,
      txBytes: wg?.txBytes ?? 0,
      ...(i.netmap ? { access: accessOf(i.netmap, p.id) } : {}),
      ...(refused.has(`${p.address} ${p.publicKey}`) ? { refused: true } : {}),
    };
  });
  return {
    ok: true,
    state: i.state,
    self: i.self,
    broker: {
      url: i.brokerUrl,
      connected: i.brokerConnected,
      lastError: i.lastError,
      urls: [...(i.brokerUrls ?? [])],
      address: i.brokerAddress ?? null,
    },
    interface: {
      name: i.interfaceName,
      listenPort: i.listenPort,
      publicKey: i.publicKey,
      backend: i.backend,
    },
    netmapSerial: i.netmap?.serial ?? null,
    netmapSource: i.netmapSource,
    peers,
    ...(i.netinfo ? { netinfo: i.netinfo } : {}),
    ...(i.guard ? { guard: i.guard } : {}),
    ...(i.virtual && i.virtual.length > 0 ? { virtual: i.virtual } : {}),
    ...(i.dns ? { dns: i.dns } : {}),
    ...(i.signIn ? { signIn: i.signIn } : {}),
    ...(i.gateway ? { gateway: i.gateway } : {}),
  };
}
