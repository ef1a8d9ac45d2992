import pino from 'pino';
import { UserError } from '../../src/util/user-error';
import { type DesiredConfig, diffWireGuardConfig } from '../../src/wireguard/config-diff';
import { clampPrivateKey } from '../../src/wireguard/keys';
import { isEmptyUpdate } from '../../src/wireguard/types';
import { selectWindowsBackend, WireGuardNtBackend } from '../../src/wireguard/windows';
import { Win32Error } from '../../src/wireguard/wireguard-nt-api';
import { expectGolden } from './golden';
import { FakeWireGuardNt } from './wireguard-nt-fake';

// Nothing on this path may load koffi (or through it wireguard.dll) before a backend starts on Windows.
jest.mock('koffi', () => {
  throw new Error('koffi must not be loaded by these tests');
});

/** Fixed keys, so the recorded configuration buffers are the same on every run. */
const key = (byte: number) => Buffer.alloc(32, byte).toString('base64');
const SELF = key(0x41);
const PEER_A = key(0xa1);
const PEER_B = key(0xb2);
const PEER_C = key(0xc3);
const IFNAME = 'trellis0';
const logger = pino({ level: 'silent' });

const desired: DesiredConfig = {
  privateKey: SELF,
  listenPort: 51820,
  peers: [
    { publicKey: PEER_A, allowedIps: ['100.64.0.2/32'], endpoint: '198.51.100.7:51820' },
    { publicKey: PEER_B, allowedIps: ['100.64.0.3/32'] },
  ],
};

function setup() {
  const fake = new FakeWireGuardNt();
  let loads = 0;
  const backend = new WireGuardNtBackend({
    interfaceName: IFNAME,
    logger,
    loadApi: () => {
      loads++;
      return fake;
    },
  });
  return { fake, backend, loads: () => loads };
}

async function converge(backend: WireGuardNtBackend, want: DesiredConfig): Promise<void> {
  await backend.apply(diffWireGuardConfig(want, await backend.getState()));
  expect(isEmptyUpdate(diffWireGuardConfig(want, await backend.getState()))).toBe(true);
}

const golden = (name: string, fake: FakeWireGuardNt) => expectGolden(name, `${fake.log.join('\n')}\n`);

describe('WireGuardNtBackend (recorded wireguard-nt fake)', () => {
  it('up: creates the adapter, applies the netmap, reads it back, a second diff is empty', async () => {
    const { fake, backend, loads } = setup();
    expect(loads()).toBe(0);
    await backend.start();
    expect(loads()).toBe(1);
    await converge(backend, desired);
    const state = await backend.getState();
    expect(state.privateKey).toBe(clampPrivateKey(SELF));
    expect(state.listenPort).toBe(51820);
    expect(state.fwmark).toBeUndefined();
    const byKey = new Map(state.peers.map((p) => [p.publicKey, p]));
    expect(byKey.get(PEER_A)).toEqual({
      publicKey: PEER_A,
      endpoint: '198.51.100.7:51820',
      allowedIps: ['100.64.0.2/32'],
      persistentKeepalive: 25,
      lastHandshakeSec: 0,
      rxBytes: 0,
      txBytes: 0,
    });
    expect(byKey.get(PEER_B)).toMatchObject({
      endpoint: null,
      allowedIps: ['100.64.0.3/32'],
      persistentKeepalive: 0,
    });
    expect(await backend.luid()).toBe(0x35000001000000n);
    golden('wireguard-nt-up.txt', fake);
  });

  it('netmap change: removes a peer, adds one, re-keys allowed IPs, and converges', async () => {
    const { fake, backend } = setup();
    await backend.start();
    await converge(backend, desired);
    fake.log.length = 0;
    const changed: DesiredConfig = {
      ...desired,
      peers: [
        { publicKey: PEER_A, allowedIps: ['100.64.0.2/32', '10.5.0.0/16'], endpoint: '198.51.100.7:51820' },
        { publicKey: PEER_C, allowedIps: ['100.64.0.4/32', 'fd7a:115c:a1e0::4/128'] },
      ],
    };
    await converge(backend, changed);
    const state = await backend.getState();
    expect(state.peers.map((p) => p.publicKey).sort()).toEqual([PEER_A, PEER_C].sort());
    expect(state.peers.find((p) => p.publicKey === PEER_A)!.allowedIps.sort()).toEqual([
      '10.5.0.0/16',
      '100.64.0.2/32',
    ]);
    expect(state.peers.find((p) => p.publicKey === PEER_C)!.allowedIps).toEqual([
      '100.64.0.4/32',
      'fd7a:115c:a1e0::4/128',
    ]);
    golden('wireguard-nt-netmap-change.txt', fake);
  });

  it('roam: a new endpoint (IPv6) touches only the endpoint; handshakes and counters are read back', async () => {
    const { fake, backend } = setup();
    await backend.start();
    await converge(backend, desired);
    fake.log.length = 0;
    await backend.apply({
      peers: [{ publicKey: PEER_B, endpoint: '[2001:db8::5]:41641', persistentKeepalive: 25 }],
    });
    fake.traffic(IFNAME, PEER_B, 1_700_000_123, 2224, 38333);
    const b = (await backend.getState()).peers.find((p) => p.publicKey === PEER_B);
    expect(b).toEqual({
      publicKey: PEER_B,
      endpoint: '[2001:db8::5]:41641',
      allowedIps: ['100.64.0.3/32'],
      persistentKeepalive: 25,
      lastHandshakeSec: 1_700_000_123,
      rxBytes: 2224,
      txBytes: 38333,
    });
    golden('wireguard-nt-roam.txt', fake);
  });

  it('exit node: the default route goes to the exit peer; fwmark alone makes no driver call', async () => {
    const { fake, backend } = setup();
    await backend.start();
    await converge(backend, desired);
    fake.log.length = 0;
    // The driver keeps its own UDP off its adapter; there is no mark to set on Windows.
    await backend.apply({ fwmark: 0x7472, peers: [] });
    expect(fake.log).toEqual([]);
    await backend.apply({
      peers: [{ publicKey: PEER_A, allowedIps: ['100.64.0.2/32', '0.0.0.0/0', '::/0'] }],
    });
    const a = (await backend.getState()).peers.find((p) => p.publicKey === PEER_A)!;
    expect(a.allowedIps).toEqual(['100.64.0.2/32', '0.0.0.0/0', '::/0']);
    // Leaving the exit node puts the netmap's allowed IPs back.
    await converge(backend, desired);
    golden('wireguard-nt-exit-node.txt', fake);
  });

  it('down: closing the handle removes the adapter; stopping twice is safe', async () => {
    const { fake, backend } = setup();
    await backend.start();
    await converge(backend, desired);
    fake.log.length = 0;
    await backend.stop();
    await backend.stop();
    expect(fake.adapterNames()).toEqual([]);
    await expect(backend.getState()).rejects.toThrow(/not started/);
    golden('wireguard-nt-down.txt', fake);
  });

  it('crash recovery: the adapter went with the crashed run; a vanished adapter is re-created', async () => {
    const { fake, backend: crashed } = setup();
    await crashed.start();
    await converge(crashed, desired);
    // Killed: wireguard-nt removes the adapter its handle created. The next run finds none.
    fake.processEnded();
    expect(fake.adapterNames()).toEqual([]);
    const backend = new WireGuardNtBackend({ interfaceName: IFNAME, logger, loadApi: () => fake });
    let recreated = 0;
    backend.onRecreated(() => {
      recreated++;
    });
    await backend.start();
    expect(fake.adapterNames()).toEqual([`${IFNAME} (us, up, port 0)`]);
    await converge(backend, desired);
    // The adapter disappears under us (removed in Device Manager, driver reinstalled).
    fake.removeExternally(IFNAME);
    await expect(backend.getState()).rejects.toMatchObject({ code: Win32Error.FILE_NOT_FOUND });
    expect(recreated).toBe(1);
    expect((await backend.getState()).peers).toEqual([]); // a fresh adapter: the agent re-applies
    await converge(backend, desired);
    await backend.stop();
    expect(fake.adapterNames()).toEqual([]);
    golden('wireguard-nt-crash-recovery.txt', fake);
  });

  it("an adapter of our name is another program's: start refuses and leaves it as it is", async () => {
    const { fake, backend } = setup();
    // A WireGuard for Windows tunnel named as our --interface, up, on a port.
    fake.addForeignAdapter(IFNAME, 51820);
    const failure = backend.start();
    await expect(failure).rejects.toThrow(UserError);
    await expect(failure).rejects.toThrow(
      `an adapter named ${IFNAME} already exists (another WireGuard program?): choose another --interface`,
    );
    expect(fake.adapterNames()).toEqual([`${IFNAME} (another process, up, port 51820)`]);
    golden('wireguard-nt-name-taken.txt', fake);
  });

  it('a name taken while our adapter was gone: no re-creation, the other adapter left alone', async () => {
    const { fake, backend } = setup();
    let recreated = 0;
    backend.onRecreated(() => {
      recreated++;
    });
    await backend.start();
    fake.removeExternally(IFNAME);
    fake.addForeignAdapter(IFNAME, 51820);
    await expect(backend.getState()).rejects.toMatchObject({ code: Win32Error.FILE_NOT_FOUND });
    expect(recreated).toBe(0);
    expect(fake.adapterNames()).toEqual([`${IFNAME} (another process, up, port 51820)`]);
    await expect(backend.getState()).rejects.toThrow(/not started/);
    await backend.stop();
  });

  it('a failed start closes the adapter it created and reports the Win32 error', async () => {
    const { fake, backend } = setup();
    fake.failNext('WireGuardSetAdapterState', 5);
    await expect(backend.start()).rejects.toThrow('WireGuardSetAdapterState failed: Win32 error 5');
    expect(fake.adapterNames()).toEqual([]);
    await backend.start();
    expect(fake.adapterNames()).toEqual([`${IFNAME} (us, up, port 0)`]);
    await backend.stop();
  });

  it('start on a live adapter keeps it; on a dead handle starts afresh', async () => {
    const { fake, backend } = setup();
    await backend.start();
    await converge(backend, desired);
    await backend.start();
    expect((await backend.getState()).peers).toHaveLength(2);
    fake.removeExternally(IFNAME);
    await backend.start();
    expect(fake.adapterNames()).toEqual([`${IFNAME} (us, up, port 0)`]);
    expect((await backend.getState()).peers).toEqual([]);
    await backend.stop();
  });

  it('refuses unsafe values before any driver call, as the UAPI path does', async () => {
    const { fake, backend } = setup();
    await backend.start();
    fake.log.length = 0;
    await expect(
      backend.apply({ peers: [{ publicKey: PEER_A, allowedIps: ['100.64.0.2/33'] }] }),
    ).rejects.toThrow(/refusing to write/);
    await expect(backend.apply({ listenPort: 70000, peers: [] })).rejects.toThrow(/listen port/);
    expect(fake.log).toEqual([]);
    await backend.stop();
  });
});

describe('selectWindowsBackend', () => {
  it('serves auto and kernel with wireguard-nt and loads nothing until start', () => {
    const load = jest.fn(() => new FakeWireGuardNt());
    for (const mode of ['auto', 'kernel'] as const) {
      const b = selectWindowsBackend(mode, IFNAME, logger, load);
      expect(b).toBeInstanceOf(WireGuardNtBackend);
      expect(b.kind).toBe('wireguard-nt');
    }
    expect(load).not.toHaveBeenCalled();
  });

  it('refuses userspace mode with a message for people', () => {
    expect(() => selectWindowsBackend('userspace', IFNAME, logger)).toThrow(UserError);
  });
});
