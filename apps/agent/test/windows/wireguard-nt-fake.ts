import { publicKeyFromPrivate } from '@trellis/crypto';
import { clampPrivateKey } from '../../src/wireguard/keys';
import { AF_INET } from '../../src/wireguard/wireguard-nt-addr';
import {
  type AdapterHandle,
  type AdapterLogState,
  AdapterState,
  Win32Error,
  type WireGuardNtApi,
  WireGuardNtError,
  type WireGuardNtFunction,
} from '../../src/wireguard/wireguard-nt-api';
import { formatGuid, unixSecondsToHandshakeTicks } from '../../src/wireguard/wireguard-nt-config';
import {
  ALLOWED_IP_LAYOUT,
  INTERFACE_LAYOUT,
  InterfaceFlag,
  type NtAllowedIp,
  type NtPeer,
  PEER_LAYOUT,
  PeerFlag,
  packConfig,
  unpackConfig,
} from '../../src/wireguard/wireguard-nt-struct';

const ERROR_INVALID_PARAMETER = 87;
const ZERO_KEY = Buffer.alloc(32);

interface FakeAdapter {
  name: string;
  luidIndex: number;
  owner: 'us' | 'another process';
  up: boolean;
  logging: AdapterLogState;
  privateKey: Buffer | null;
  listenPort: number;
  peers: NtPeer[];
  removed: boolean;
}

interface HandleEntry {
  adapter: FakeAdapter;
  created: boolean;
}

/**
 * A recording stand-in for wireguard.dll and its driver. Configuration semantics follow
 * wireguard-nt's driver/ioctl.c (Set: per-field flags, REMOVE / UPDATE of unknown peers ignored,
 * REPLACE_ALLOWED_IPS only for existing peers, an allowed IP moves between peers; Get: flags as
 * the driver sets them). Adapter lifetime follows the DLL: closing the creating handle removes it.
 */
export class FakeWireGuardNt implements WireGuardNtApi {
  /** Every call, with its result, in order: what the golden files hold. */
  readonly log: string[] = [];
  private readonly adapters: FakeAdapter[] = [];
  private readonly handles = new Map<AdapterHandle, HandleEntry>();
  private readonly names = new Map<AdapterHandle, string>();
  private nextHandle = 1;
  private nextLuidIndex = 1;
  private readonly failures: Array<{ fn: WireGuardNtFunction; code: number }> = [];

  /** The next call of `fn` fails with `code`. */
  failNext(fn: WireGuardNtFunction, code: number): void {
    this.failures.push({ fn, code });
  }

  /** An adapter of that name set up by someone else, holding a listen port. */
  addForeignAdapter(name: string, listenPort: number): void {
    this.adapters.push({ ...this.blank(name, 'another process'), up: true, listenPort });
  }

  /**
   * The process holding the handles ends (killed, crashed): the driver removes every adapter it
   * created, as closing those handles would; its handles are gone.
   */
  processEnded(): void {
    for (const [handle, entry] of this.handles) {
      if (entry.created && !entry.adapter.removed)
        this.adapters.splice(this.adapters.indexOf(entry.adapter), 1);
      this.handles.delete(handle);
    }
    this.log.push('(the process ends)');
  }

  /** Removes an adapter as Device Manager or a driver reinstall would. */
  removeExternally(name: string): void {
    const a = this.find(name);
    if (!a) throw new Error(`no adapter ${name}`);
    a.removed = true;
    this.adapters.splice(this.adapters.indexOf(a), 1);
  }

  /** A handshake and traffic on a peer, as the driver would count them. */
  traffic(name: string, publicKey: string, handshakeUnixSec: number, rx: number, tx: number): void {
    const peer = this.find(name)?.peers.find((p) => p.publicKey.equals(Buffer.from(publicKey, 'base64')));
    if (!peer) throw new Error(`no peer ${publicKey}`);
    peer.lastHandshake = unixSecondsToHandshakeTicks(handshakeUnixSec);
    peer.rxBytes += BigInt(rx);
    peer.txBytes += BigInt(tx);
  }

  adapterNames(): string[] {
    return this.adapters.map((a) => `${a.name} (${a.owner}, ${a.up ? 'up' : 'down'}, port ${a.listenPort})`);
  }

  async createAdapter(name: string, tunnelType: string, guid: Buffer): Promise<AdapterHandle> {
    const call = `WireGuardCreateAdapter("${name}", "${tunnelType}", ${formatGuid(guid)})`;
    this.maybeFail('WireGuardCreateAdapter', call);
    // As WireGuardSetAdapterName: the new adapter gets the name, a holder of it gets a suffix.
    const holder = this.find(name);
    if (holder) holder.name = `${name} 1`;
    const adapter = this.blank(name, 'us');
    this.adapters.push(adapter);
    return this.handleFor(adapter, true, call);
  }

  async openAdapter(name: string): Promise<AdapterHandle | null> {
    const call = `WireGuardOpenAdapter("${name}")`;
    this.maybeFail('WireGuardOpenAdapter', call);
    const adapter = this.find(name);
    if (!adapter) {
      this.log.push(`${call} = NULL`);
      return null;
    }
    return this.handleFor(adapter, false, call);
  }

  async closeAdapter(handle: AdapterHandle): Promise<void> {
    const entry = this.handles.get(handle);
    if (!entry) throw new Error(`WireGuardCloseAdapter on a handle that is not open: ${String(handle)}`);
    this.log.push(`WireGuardCloseAdapter(${this.names.get(handle)})`);
    this.handles.delete(handle);
    if (entry.created && !entry.adapter.removed)
      this.adapters.splice(this.adapters.indexOf(entry.adapter), 1);
  }

  async getAdapterLuid(handle: AdapterHandle): Promise<bigint> {
    const a = this.use(handle, 'WireGuardGetAdapterLUID');
    // NET_LUID: IfType 53 (IF_TYPE_PROP_VIRTUAL) in bits 48-63, NetLuidIndex in bits 24-47.
    const luid = (53n << 48n) | (BigInt(a.luidIndex) << 24n);
    this.log.push(`WireGuardGetAdapterLUID(${this.names.get(handle)}) = 0x${luid.toString(16)}`);
    return luid;
  }

  async setAdapterState(handle: AdapterHandle, state: AdapterState): Promise<void> {
    const a = this.use(handle, 'WireGuardSetAdapterState', `${this.names.get(handle)}, ${stateName(state)}`);
    a.up = state === AdapterState.UP;
  }

  async setAdapterLogging(handle: AdapterHandle, state: AdapterLogState): Promise<void> {
    const a = this.use(
      handle,
      'WireGuardSetAdapterLogging',
      `${this.names.get(handle)}, ${['OFF', 'ON', 'ON_WITH_PREFIX'][state]}`,
    );
    a.logging = state;
  }

  async setConfiguration(handle: AdapterHandle, config: Buffer): Promise<void> {
    const a = this.use(
      handle,
      'WireGuardSetConfiguration',
      `${this.names.get(handle)}, ${config.length} bytes`,
    );
    this.log.push(...dumpConfig(config));
    let parsed: ReturnType<typeof unpackConfig>;
    try {
      parsed = unpackConfig(config);
    } catch {
      throw new WireGuardNtError('WireGuardSetConfiguration', ERROR_INVALID_PARAMETER);
    }
    if (parsed.flags & InterfaceFlag.HAS_LISTEN_PORT) a.listenPort = parsed.listenPort;
    if (parsed.flags & InterfaceFlag.REPLACE_PEERS) a.peers = [];
    if (parsed.flags & InterfaceFlag.HAS_PRIVATE_KEY) this.setPrivateKey(a, parsed.privateKey);
    for (const peer of parsed.peers) this.setPeer(a, peer);
  }

  async getConfiguration(handle: AdapterHandle): Promise<Buffer> {
    const a = this.use(handle, 'WireGuardGetConfiguration');
    const own = a.privateKey
      ? Buffer.from(publicKeyFromPrivate(a.privateKey.toString('base64')), 'base64')
      : ZERO_KEY;
    const buf = packConfig({
      flags:
        (a.listenPort !== 0 ? InterfaceFlag.HAS_LISTEN_PORT : 0) |
        (a.privateKey ? InterfaceFlag.HAS_PRIVATE_KEY | InterfaceFlag.HAS_PUBLIC_KEY : 0),
      listenPort: a.listenPort,
      privateKey: a.privateKey ?? ZERO_KEY,
      publicKey: own,
      peers: a.peers.map((p) => ({
        ...p,
        flags:
          PeerFlag.HAS_PUBLIC_KEY |
          PeerFlag.HAS_PERSISTENT_KEEPALIVE |
          (p.endpoint ? PeerFlag.HAS_ENDPOINT : 0),
      })),
    });
    this.log.push(`WireGuardGetConfiguration(${this.names.get(handle)}) = ${buf.length} bytes`);
    return buf;
  }

  private setPrivateKey(a: FakeAdapter, key: Buffer): void {
    if (key.equals(ZERO_KEY)) {
      a.privateKey = null;
      return;
    }
    a.privateKey = Buffer.from(clampPrivateKey(key.toString('base64')), 'base64');
    const own = Buffer.from(publicKeyFromPrivate(a.privateKey.toString('base64')), 'base64');
    a.peers = a.peers.filter((p) => !p.publicKey.equals(own));
  }

  private setPeer(a: FakeAdapter, change: NtPeer): void {
    if (!(change.flags & PeerFlag.HAS_PUBLIC_KEY)) {
      throw new WireGuardNtError('WireGuardSetConfiguration', ERROR_INVALID_PARAMETER);
    }
    let peer = a.peers.find((p) => p.publicKey.equals(change.publicKey));
    if (!peer) {
      if (change.flags & (PeerFlag.REMOVE | PeerFlag.UPDATE)) return;
      peer = { ...change, flags: 0, endpoint: null, persistentKeepalive: 0, allowedIps: [] };
      peer.txBytes = peer.rxBytes = peer.lastHandshake = 0n;
      a.peers.push(peer);
    } else if (change.flags & PeerFlag.REPLACE_ALLOWED_IPS) {
      peer.allowedIps = [];
    }
    if (change.flags & PeerFlag.REMOVE) {
      a.peers.splice(a.peers.indexOf(peer), 1);
      return;
    }
    if (change.flags & PeerFlag.HAS_ENDPOINT && change.endpoint) peer.endpoint = change.endpoint;
    for (const ip of change.allowedIps) insertAllowedIp(a, peer, ip);
    if (change.flags & PeerFlag.HAS_PERSISTENT_KEEPALIVE)
      peer.persistentKeepalive = change.persistentKeepalive;
  }

  private use(handle: AdapterHandle, fn: WireGuardNtFunction, args?: string): FakeAdapter {
    const call = `${fn}(${args ?? this.names.get(handle)})`;
    const entry = this.handles.get(handle);
    if (!entry) throw new Error(`${call} on a handle that is not open`);
    this.maybeFail(fn, call);
    if (entry.adapter.removed) {
      this.log.push(`${call} = error ${Win32Error.FILE_NOT_FOUND}`);
      throw new WireGuardNtError(fn, Win32Error.FILE_NOT_FOUND);
    }
    if (fn !== 'WireGuardGetConfiguration' && fn !== 'WireGuardGetAdapterLUID') this.log.push(call);
    return entry.adapter;
  }

  private maybeFail(fn: WireGuardNtFunction, call: string): void {
    const i = this.failures.findIndex((f) => f.fn === fn);
    if (i < 0) return;
    const [failure] = this.failures.splice(i, 1);
    this.log.push(`${call} = error ${failure!.code}`);
    throw new WireGuardNtError(fn, failure!.code);
  }

  private handleFor(adapter: FakeAdapter, created: boolean, call: string): AdapterHandle {
    const handle = { id: this.nextHandle } as unknown as AdapterHandle;
    const label = `#${this.nextHandle++}`;
    this.handles.set(handle, { adapter, created });
    this.names.set(handle, label);
    this.log.push(`${call} = ${label}`);
    return handle;
  }

  private find(name: string): FakeAdapter | undefined {
    return this.adapters.find((a) => a.name.toLowerCase() === name.toLowerCase());
  }

  private blank(name: string, owner: FakeAdapter['owner']): FakeAdapter {
    const luidIndex = this.nextLuidIndex++;
    return {
      name,
      luidIndex,
      owner,
      up: false,
      logging: 0,
      privateKey: null,
      listenPort: 0,
      peers: [],
      removed: false,
    };
  }
}

/** An allowed IP belongs to one peer: inserting it for one takes it from any other (the trie's rule). */
function insertAllowedIp(a: FakeAdapter, peer: NtPeer, ip: NtAllowedIp): void {
  const masked = maskAddress(ip);
  const same = (x: NtAllowedIp) => x.family === ip.family && x.cidr === ip.cidr && x.address.equals(masked);
  for (const other of a.peers) other.allowedIps = other.allowedIps.filter((x) => !same(x));
  peer.allowedIps.push({ family: ip.family, address: masked, cidr: ip.cidr });
}

function maskAddress(ip: NtAllowedIp): Buffer {
  const out = Buffer.from(ip.address.subarray(0, ip.family === AF_INET ? 4 : 16));
  for (let bit = ip.cidr; bit < out.length * 8; bit++) out[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return out;
}

function stateName(state: AdapterState): string {
  return state === AdapterState.UP ? 'UP' : 'DOWN';
}

/** The configuration buffer one struct a line, hex, for the golden files. */
export function dumpConfig(buf: Buffer): string[] {
  const lines: string[] = [];
  const hex = (from: number, len: number) => buf.subarray(from, from + len).toString('hex');
  lines.push(`  interface  ${hex(0, INTERFACE_LAYOUT.size)}`);
  let at = INTERFACE_LAYOUT.size;
  const peers = buf.readUInt32LE(INTERFACE_LAYOUT.PeersCount);
  for (let i = 0; i < peers && at + PEER_LAYOUT.size <= buf.length; i++) {
    lines.push(`  peer       ${hex(at, PEER_LAYOUT.size)}`);
    const ips = buf.readUInt32LE(at + PEER_LAYOUT.AllowedIPsCount);
    at += PEER_LAYOUT.size;
    for (let j = 0; j < ips && at + ALLOWED_IP_LAYOUT.size <= buf.length; j++, at += ALLOWED_IP_LAYOUT.size) {
      lines.push(`  allowed-ip ${hex(at, ALLOWED_IP_LAYOUT.size)}`);
    }
  }
  return lines;
}
