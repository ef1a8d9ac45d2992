import { join } from 'node:path';
import { generateKeyPair } from '@trellis/noise';
import type { ReflectorCounters } from '@trellis/reflector';
import { type JsonLine, NetnsLab, type NodeChild, waitFor } from '../../noise/test/support/netns-lab';

// The reflector against real wireguard-go devices in a private network namespace: it must learn the
// right key and ip:port, complete the handshake, follow the device when its port changes, and stay
// silent towards a device that is not enrolled.

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const enrolledIf = `tr${process.pid}`;
const strangerIf = `ts${process.pid}`;
const reflectorPort = 51900;

describe('EndpointReflector against wireguard-go', () => {
  let lab: NetnsLab;
  let reflector: NodeChild;
  const reflectorKeys = generateKeyPair();
  const device = generateKeyPair();
  const stranger = generateKeyPair();

  const observedAt = (endpoint: string, from = 0) =>
    reflector.next((l) => l.event === 'observed' && l.endpoint === endpoint, from);

  async function counters(): Promise<ReflectorCounters> {
    const from = reflector.lines.length;
    reflector.send({ cmd: 'counters' });
    const line = await reflector.next((l) => l.event === 'counters', from);
    return line.counters as ReflectorCounters;
  }

  async function startDevice(ifname: string, keys: typeof device, listenPort: number) {
    const wg = await lab.startWireguard(ifname);
    await lab.configureWireguard(ifname, {
      privateKey: b64(keys.privateKey),
      listenPort,
      peers: [
        { publicKey: b64(reflectorKeys.publicKey), endpoint: `127.0.0.1:${reflectorPort}`, keepalive: 1 },
      ],
    });
    return wg;
  }

  beforeAll(async () => {
    lab = await NetnsLab.create('refl');
    reflector = await lab.startNode(
      join(__dirname, 'support/reflector-child.ts'),
      [String(reflectorPort), b64(reflectorKeys.privateKey), b64(device.publicKey)],
      {
        '@trellis/noise': join(__dirname, '../../noise/src/index.ts'),
        '@trellis/reflector': join(__dirname, '../src/index.ts'),
      },
    );
    const listening = await reflector.next((l) => l.event === 'listening');
    expect(listening.publicKey).toBe(b64(reflectorKeys.publicKey));
  }, 60_000);

  afterAll(async () => {
    await lab?.destroy();
  });

  it('learns the device key and its ip:port, and wireguard-go completes the handshake', async () => {
    await startDevice(enrolledIf, device, 51820);
    const observed = await observedAt('127.0.0.1:51820');
    expect(observed).toMatchObject({ publicKey: b64(device.publicKey), via: 'initiation', port: 51820 });
    await waitFor('wireguard-go to report a handshake with the reflector', async () =>
      (await lab.latestHandshake(enrolledIf, b64(reflectorKeys.publicKey))) > 0 ? true : undefined,
    );
    await waitFor('authenticated keepalives', async () =>
      (await counters()).keepalives >= 2 ? true : undefined,
    );
  }, 60_000);

  it('follows the device when its WireGuard port changes under a live session (roaming)', async () => {
    const from = reflector.lines.length;
    await lab.exec('wg', ['set', enrolledIf, 'listen-port', '51821']);
    const observed = await observedAt('127.0.0.1:51821', from);
    expect(observed.publicKey).toBe(b64(device.publicKey));
    // The old session's keepalives now come from the new port: seen on a keepalive, not a new handshake.
    expect(observed.via).toBe('keepalive');
  }, 60_000);

  it('observes the new endpoint after wireguard-go restarts on another port', async () => {
    const from = reflector.lines.length;
    const running = await waitFor('the running device', () => lab.wireguard(enrolledIf));
    await running.stop();
    await waitFor('the old UAPI socket to go', () => (lab.hasUapiSocket(enrolledIf) ? undefined : true));
    await startDevice(enrolledIf, device, 51822);
    const observed = await observedAt('127.0.0.1:51822', from);
    expect(observed).toMatchObject({ publicKey: b64(device.publicKey), via: 'initiation' });
  }, 60_000);

  it('never answers a device that is not enrolled, and counts it', async () => {
    await startDevice(strangerIf, stranger, 51830);
    await waitFor('unknown-key drops', async () =>
      (await counters()).dropped['unknown-key'] >= 2 ? true : undefined,
    );
    expect(await lab.latestHandshake(strangerIf, b64(reflectorKeys.publicKey))).toBe(0);
    expect(
      reflector.lines.some(
        (l: JsonLine) => l.event === 'observed' && l.publicKey === b64(stranger.publicKey),
      ),
    ).toBe(false);
    const c = await counters();
    for (const reason of [
      'bad-mac1',
      'decrypt-failed',
      'malformed',
      'bad-keepalive',
      'internal-error',
    ] as const) {
      expect(c.dropped[reason]).toBe(0);
    }
    expect(c.handshakes).toBeGreaterThanOrEqual(2);
  }, 60_000);
});
