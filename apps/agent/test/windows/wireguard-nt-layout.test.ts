import { AF_INET, AF_INET6, parseIp } from '../../src/wireguard/wireguard-nt-addr';
import {
  AdapterLogState,
  AdapterState,
  guidFields,
  InterfaceFlag,
  PeerFlag,
  wireGuardNtTypes,
} from '../../src/wireguard/wireguard-nt-api';
import { adapterGuid } from '../../src/wireguard/wireguard-nt-config';
import {
  ALLOWED_IP_LAYOUT,
  INTERFACE_LAYOUT,
  PEER_LAYOUT,
  packConfig,
  SOCKADDR_INET_LAYOUT,
} from '../../src/wireguard/wireguard-nt-struct';

/**
 * The koffi declarations against the hand-computed layout of api/wireguard.h on 64-bit Windows.
 * Every member is a fixed-width type, so koffi computes the same layout here on Linux x64 as
 * MSVC does for Windows x64/arm64.
 */
const { koffi, t } = wireGuardNtTypes();

function layoutOf(type: Parameters<typeof koffi.introspect>[0]): Record<string, number> {
  const info = koffi.introspect(type);
  const out: Record<string, number> = { size: info.size };
  for (const m of Object.values(info.members ?? {})) out[m.name] = m.offset;
  return out;
}

describe('wireguard-nt struct layouts', () => {
  it('WIREGUARD_INTERFACE: 80 bytes, 8-aligned, offsets as the encoder writes them', () => {
    expect(layoutOf(t.WIREGUARD_INTERFACE)).toEqual(INTERFACE_LAYOUT);
    expect(koffi.alignof(t.WIREGUARD_INTERFACE)).toBe(8);
    // Hand-computed: Flags 4 + ListenPort 2 + two keys 64 = 70, PeersCount at 72, padded to 80.
    expect(INTERFACE_LAYOUT).toEqual({
      size: 80,
      Flags: 0,
      ListenPort: 4,
      PrivateKey: 6,
      PublicKey: 38,
      PeersCount: 72,
    });
  });

  it('WIREGUARD_PEER: 136 bytes with the endpoint 4-aligned at 76 and the counters 8-aligned', () => {
    expect(layoutOf(t.WIREGUARD_PEER)).toEqual(PEER_LAYOUT);
    expect(koffi.alignof(t.WIREGUARD_PEER)).toBe(8);
    expect(PEER_LAYOUT).toEqual({
      size: 136,
      Flags: 0,
      Reserved: 4,
      PublicKey: 8,
      PresharedKey: 40,
      PersistentKeepalive: 72,
      Endpoint: 76,
      TxBytes: 104,
      RxBytes: 112,
      LastHandshake: 120,
      AllowedIPsCount: 128,
    });
  });

  it('WIREGUARD_ALLOWED_IP: a 16-byte address union, family, prefix length, padded to 24', () => {
    expect(layoutOf(t.WIREGUARD_ALLOWED_IP)).toEqual({
      size: ALLOWED_IP_LAYOUT.size,
      Address: ALLOWED_IP_LAYOUT.Address,
      AddressFamily: ALLOWED_IP_LAYOUT.AddressFamily,
      Cidr: ALLOWED_IP_LAYOUT.Cidr,
    });
    expect(koffi.alignof(t.WIREGUARD_ALLOWED_IP)).toBe(8);
    expect(ALLOWED_IP_LAYOUT).toEqual({ size: 24, Address: 0, AddressFamily: 16, Cidr: 18 });
  });

  it('SOCKADDR_INET: the 28-byte union of sockaddr_in and sockaddr_in6', () => {
    expect(koffi.sizeof(t.SOCKADDR_INET)).toBe(SOCKADDR_INET_LAYOUT.size);
    expect(koffi.alignof(t.SOCKADDR_INET)).toBe(4);
    const v4 = layoutOf(koffi.introspect(t.SOCKADDR_INET).members!.Ipv4!.type);
    const v6 = layoutOf(koffi.introspect(t.SOCKADDR_INET).members!.Ipv6!.type);
    expect(v4).toEqual({
      size: 16,
      sin_family: 0,
      sin_port: 2,
      sin_addr: SOCKADDR_INET_LAYOUT.v4Address,
      sin_zero: 8,
    });
    expect(v6).toEqual({
      size: 28,
      sin6_family: 0,
      sin6_port: 2,
      sin6_flowinfo: SOCKADDR_INET_LAYOUT.v6FlowInfo,
      sin6_addr: SOCKADDR_INET_LAYOUT.v6Address,
      sin6_scope_id: SOCKADDR_INET_LAYOUT.v6ScopeId,
    });
  });

  it('koffi lays out a whole configuration byte for byte as packConfig does', () => {
    const key = (b: number) => Buffer.alloc(32, b);
    const v6 = parseIp('fd00::1').bytes;
    const packed = packConfig({
      flags: InterfaceFlag.HAS_PRIVATE_KEY | InterfaceFlag.HAS_LISTEN_PORT,
      listenPort: 51820,
      privateKey: key(1),
      publicKey: key(2),
      peers: [
        {
          flags: PeerFlag.HAS_PUBLIC_KEY | PeerFlag.HAS_ENDPOINT | PeerFlag.REPLACE_ALLOWED_IPS,
          publicKey: key(3),
          presharedKey: key(0),
          persistentKeepalive: 25,
          endpoint: { family: AF_INET6, address: v6, port: 51820, scopeId: 3, flowInfo: 0 },
          txBytes: 1n,
          rxBytes: 2n,
          lastHandshake: 3n,
          allowedIps: [
            { family: AF_INET, address: Buffer.from([100, 64, 0, 2]), cidr: 32 },
            { family: AF_INET6, address: v6, cidr: 128 },
          ],
        },
      ],
    });
    const viaKoffi = Buffer.alloc(packed.length);
    koffi.encode(viaKoffi, 0, t.WIREGUARD_INTERFACE, {
      Flags: InterfaceFlag.HAS_PRIVATE_KEY | InterfaceFlag.HAS_LISTEN_PORT,
      ListenPort: 51820,
      PrivateKey: [...key(1)],
      PublicKey: [...key(2)],
      PeersCount: 1,
    });
    const peerAt = INTERFACE_LAYOUT.size;
    koffi.encode(viaKoffi, peerAt, t.WIREGUARD_PEER, {
      Flags: PeerFlag.HAS_PUBLIC_KEY | PeerFlag.HAS_ENDPOINT | PeerFlag.REPLACE_ALLOWED_IPS,
      Reserved: 0,
      PublicKey: [...key(3)],
      PresharedKey: [...key(0)],
      PersistentKeepalive: 25,
      // sin6_port is in network order: 51820 is 0xca6c, stored as the bytes ca 6c.
      Endpoint: {
        Ipv6: {
          sin6_family: AF_INET6,
          sin6_port: 0x6cca,
          sin6_flowinfo: 0,
          sin6_addr: { Byte: [...v6] },
          sin6_scope_id: 3,
        },
      },
      TxBytes: 1,
      RxBytes: 2,
      LastHandshake: 3,
      AllowedIPsCount: 2,
    });
    const ipAt = peerAt + PEER_LAYOUT.size;
    koffi.encode(viaKoffi, ipAt, t.WIREGUARD_ALLOWED_IP, {
      Address: { V4: { S_un_b: [100, 64, 0, 2] } },
      AddressFamily: AF_INET,
      Cidr: 32,
    });
    koffi.encode(viaKoffi, ipAt + ALLOWED_IP_LAYOUT.size, t.WIREGUARD_ALLOWED_IP, {
      Address: { V6: { Byte: [...v6] } },
      AddressFamily: AF_INET6,
      Cidr: 128,
    });
    expect(viaKoffi.toString('hex')).toBe(packed.toString('hex'));
  });

  it('the GUID fields koffi is given encode to the GUID bytes', () => {
    const guid = adapterGuid('trellis0');
    const buf = Buffer.alloc(16);
    koffi.encode(buf, t.GUID, guidFields(guid));
    expect(buf).toEqual(guid);
  });

  it('every function prototype has the argument and result types of wireguard.h', () => {
    // A function object per prototype without wireguard.dll: koffi decodes any code pointer
    // (here libc's abs) as that prototype; it is only inspected, never called.
    const libc = koffi.load('libc.so.6');
    const code = libc.func('void *dlsym(void *handle, const char *name)')(null, 'abs');
    const shapes: Record<string, string> = {};
    for (const [name, proto] of Object.entries(t.prototypes)) {
      const fn = koffi.decode(code, koffi.proto(proto.replace(`${name}(`, `Proto${name}(`)));
      const args = (fn.info.arguments as Parameters<typeof koffi.introspect>[0][]).map(
        (a) => koffi.introspect(a).name,
      );
      shapes[name] = `${koffi.introspect(fn.info.result).name} (${args.join(', ')})`;
    }
    const H = 'WIREGUARD_ADAPTER_HANDLE';
    expect(shapes).toEqual({
      WireGuardCreateAdapter: `${H} (char16_t *, char16_t *, GUID *)`,
      WireGuardOpenAdapter: `${H} (char16_t *)`,
      WireGuardCloseAdapter: `void (${H})`,
      WireGuardGetAdapterLUID: `void (${H}, uint64_t *)`,
      WireGuardSetAdapterState: `int (${H}, int)`,
      WireGuardSetAdapterLogging: `int (${H}, int)`,
      WireGuardSetConfiguration: `int (${H}, WIREGUARD_INTERFACE *, uint32_t)`,
      WireGuardGetConfiguration: `int (${H}, WIREGUARD_INTERFACE *, uint32_t *)`,
      WireGuardSetLogger: 'void (WIREGUARD_LOGGER_CALLBACK *)',
    });
  });

  it('flag and state values match the header', () => {
    expect(InterfaceFlag).toEqual({
      HAS_PUBLIC_KEY: 1,
      HAS_PRIVATE_KEY: 2,
      HAS_LISTEN_PORT: 4,
      REPLACE_PEERS: 8,
    });
    expect(PeerFlag).toEqual({
      HAS_PUBLIC_KEY: 1,
      HAS_PRESHARED_KEY: 2,
      HAS_PERSISTENT_KEEPALIVE: 4,
      HAS_ENDPOINT: 8,
      REPLACE_ALLOWED_IPS: 32,
      REMOVE: 64,
      UPDATE: 128,
    });
    expect(AdapterState).toEqual({ DOWN: 0, UP: 1 });
    expect(AdapterLogState).toEqual({ OFF: 0, ON: 1, ON_WITH_PREFIX: 2 });
  });
});
