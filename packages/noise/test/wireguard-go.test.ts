import { join } from 'node:path';
import { generateKeyPair } from '@trellis/noise';
import { type JsonLine, NetnsLab, type NodeChild, waitFor } from './support/netns-lab';

// Interop with the real wireguard-go: it initiates to our responder, which must recover its key,
// answer with a response wireguard-go accepts, and then authenticate its keepalives.

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const ifname = `tn${process.pid}`;
const responderPort = 51900;
const wgPort = 51820;

describe('noise against wireguard-go', () => {
  let lab: NetnsLab;
  let responder: NodeChild;
  const responderKeys = generateKeyPair();
  const wgKeys = generateKeyPair();

  beforeAll(async () => {
    lab = await NetnsLab.create('noise');
    responder = await lab.startNode(
      join(__dirname, 'support/responder-child.ts'),
      [String(responderPort), b64(responderKeys.privateKey)],
      { '@trellis/noise': join(__dirname, '../src/index.ts') },
    );
    await responder.next((l) => l.event === 'listening');
    await lab.startWireguard(ifname);
    await lab.configureWireguard(ifname, {
      privateKey: b64(wgKeys.privateKey),
      listenPort: wgPort,
      peers: [
        { publicKey: b64(responderKeys.publicKey), endpoint: `127.0.0.1:${responderPort}`, keepalive: 1 },
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await lab?.destroy();
  });

  it('decodes the initiator key and a plausible TAI64N stamp from a real initiation', async () => {
    const init = await responder.next((l) => l.event === 'initiation');
    expect(init.initiatorStatic).toBe(b64(wgKeys.publicKey));
    expect(init.source).toBe(`127.0.0.1:${wgPort}`);
    // TAI64 label 2^62 + 10 + unix seconds: within a day of now (the namespace shares our clock).
    const seconds = BigInt(`0x${String(init.timestamp).slice(0, 16)}`) - 0x400000000000000an;
    expect(Math.abs(Number(seconds) - Date.now() / 1000)).toBeLessThan(86_400);
    expect(responder.lines.some((l) => l.event === 'initiation-refused')).toBe(false);
  }, 60_000);

  it('completes the handshake: wireguard-go reports it and sends authenticated keepalives', async () => {
    const at = await waitFor('wireguard-go to report the handshake', async () => {
      const seconds = await lab.latestHandshake(ifname, b64(responderKeys.publicKey));
      return seconds > 0 ? seconds : undefined;
    });
    expect(Math.abs(at - Date.now() / 1000)).toBeLessThan(3600);
    const first = await responder.next((l) => l.event === 'transport');
    const second = await responder.next(
      (l: JsonLine) => l.event === 'transport' && Number(l.counter) > Number(first.counter),
    );
    for (const keepalive of [first, second]) {
      expect(keepalive).toMatchObject({ payloadLength: 0, fresh: true, source: `127.0.0.1:${wgPort}` });
    }
    expect(responder.lines.some((l) => l.event === 'transport-refused')).toBe(false);
  }, 60_000);
});
