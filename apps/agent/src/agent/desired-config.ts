import type { NetmapPeer, ReflectorInfo } from '@trellis/proto';
import type { Netmap } from '../control/netmap-tracker';
import { candidatesFromEndpoints, onLinkCandidates, type PathPeer, wgUpdateForEffect } from '../path';
import type { DesiredConfig } from '../wireguard/config-diff';
import type { WgConfigUpdate } from '../wireguard/types';
import { type ReachableVirtual, virtualAllowedIps } from './virtual-devices';

/** The WireGuard configuration a netmap asks for. Mesh peers' endpoints belong to the path logic. */
export function desiredConfigFromNetmap(
  netmap: Netmap,
  privateKey: string,
  listenPort: number,
  /** Prefixes a peer carries for us as a gateway (the route selector's choice), by peer id. */
  extraAllowedIps: (peerId: string) => string[] = () => [],
  /** Virtual devices reached through a peer (planVirtual): their /32s ride on its tunnel. */
  virtual: readonly ReachableVirtual[] = [],
): DesiredConfig {
  return {
    privateKey,
    listenPort,
    peers: [
      ...netmap.peers.map((p) => ({
        publicKey: p.publicKey,
        allowedIps: [
          ...(p.allowedIps.length > 0 ? p.allowedIps : [`${p.address}/32`]),
          ...extraAllowedIps(p.id),
          ...virtualAllowedIps(virtual, p.id),
        ],
      })),
      // The broker's reflectors: no routed addresses, only handshakes and keepalives from our port.
      ...(netmap.self.reflectors ?? []).map((r) => ({
        publicKey: r.publicKey,
        allowedIps: [],
        endpoint: r.endpoint,
      })),
    ],
  };
}

/** The path logic's view of the netmap's peers: typed candidates, LAN ones only when on our links. */
export function pathPeersFromNetmap(peers: readonly NetmapPeer[], subnets: readonly string[]): PathPeer[] {
  return peers.map((p) => ({
    peerId: p.id,
    publicKey: p.publicKey,
    candidates: p.candidates
      ? onLinkCandidates(p.candidates, subnets)
      : candidatesFromEndpoints(p.endpoints, subnets),
  }));
}

/** The same remove + re-add a path uses to start a fresh handshake, for the reflectors (which route nothing). */
export function reflectorReadd(reflectors: readonly ReflectorInfo[]): WgConfigUpdate {
  return {
    peers: reflectors.flatMap(
      (r) =>
        wgUpdateForEffect(
          { type: 'readd-peer', peerId: r.publicKey, publicKey: r.publicKey, endpoint: r.endpoint },
          [],
        ).peers,
    ),
  };
}
