import { randomUUID } from 'node:crypto';
import { generateKeyPair } from '@trellis/crypto';
import { CAPABILITY_VERSION } from '@trellis/proto';
import pino from 'pino';
import { BrokerRejectedError } from '../src/control/broker-call';
import { ControlClient, type ControlClientHandlers } from '../src/control/control-client';
import { startDeviceAuth } from '../src/control/device-auth-client';
import { enroll } from '../src/control/enroll-client';
import type { Netmap } from '../src/control/netmap-tracker';
import { withVersionFallback } from '../src/control/version-fallback';
import { createBrokerAgent } from '../src/trust/broker-trust';
import { waitFor } from '../src/util/wait';
import { BrokerDouble, type DoubleDevice } from './helpers/broker-double';
import { makeSelfSignedCert } from './helpers/self-signed-cert';

const logger = pino({ level: 'silent' });
const cert = makeSelfSignedCert();
const keys = generateKeyPair();

/** docs/capability-versions.md: an agent talks to a broker from before capability versions with 1. */
describe('capability version fallback', () => {
  let broker: BrokerDouble;
  let port: number;
  let clients: ControlClient[];
  let me: DoubleDevice;

  beforeEach(async () => {
    broker = new BrokerDouble(cert);
    port = await broker.listen(0);
    clients = [];
    me = { id: randomUUID(), name: 'me', publicKey: keys.publicKey, address: '100.64.0.1', endpoints: [] };
    broker.devices.set(me.id, me);
  });
  afterEach(async () => {
    for (const c of clients) c.stop();
    await broker.close();
  });

  /** As a broker of version 1 does: any other version refused (4426, HTTP 400), none announced. */
  function legacy(accepts: (v: number) => boolean = (v) => v === 1): void {
    broker.acceptsVersion = accepts;
    broker.capabilityVersion = undefined;
  }
  const helloVersions = () => broker.hellos.map((h) => h.protocolVersion);

  function client(backoffMs: number) {
    const netmaps: Netmap[] = [];
    const handlers: ControlClientHandlers = {
      onNetmap: (netmap) => netmaps.push(netmap),
      onConnected: () => undefined,
      onDisconnected: () => undefined,
      onDeviceRemoved: () => undefined,
    };
    const c = new ControlClient({
      brokerUrls: [`https://127.0.0.1:${port}`],
      agent: createBrokerAgent({ fingerprint: cert.fingerprint }),
      deviceId: me.id,
      keyPair: keys,
      brokerPublicKey: broker.keys.publicKey,
      handlers,
      logger,
      backoff: { initialMs: backoffMs, maxMs: backoffMs, random: () => 0.5 },
    });
    clients.push(c);
    return { c, netmaps };
  }

  it('connects to a broker of version 1 after one fallback, at once, and its netmap works', async () => {
    legacy();
    // A backoff this long would time the test out: the fallback must not wait for it.
    const { c, netmaps } = client(60_000);
    c.start();
    await waitFor(() => c.connected, 10_000, 5);
    expect(helloVersions()).toEqual([CAPABILITY_VERSION, 1]);
    const peer = {
      id: randomUUID(),
      name: 'peer',
      publicKey: generateKeyPair().publicKey,
      address: '100.64.0.2',
      endpoints: [],
    };
    broker.devices.set(peer.id, peer);
    broker.sendDelta(me.id, { upsert: [broker.peerOf(peer)], remove: [] });
    await waitFor(() => netmaps.length === 2, 10_000, 5);
    expect(netmaps[1]!.peers.map((p) => p.id)).toEqual([peer.id]);
  });

  it('keeps version 1 for that broker until it announces a newer one', async () => {
    legacy();
    const { c } = client(20);
    const reconnect = async (hellos: number) => {
      broker.dropAll();
      await waitFor(() => broker.hellos.length === hellos && c.connected, 10_000, 5);
    };
    c.start();
    await waitFor(() => c.connected, 10_000, 5);
    await reconnect(3);
    expect(helloVersions()).toEqual([CAPABILITY_VERSION, 1, 1]);
    // Upgraded: it takes 1 still and announces its own version, which the next connection speaks.
    broker.acceptsVersion = () => true;
    broker.capabilityVersion = CAPABILITY_VERSION;
    await reconnect(4);
    await reconnect(5);
    expect(helloVersions()).toEqual([CAPABILITY_VERSION, 1, 1, 1, CAPABILITY_VERSION]);
  });

  it('speaks its own version to a broker that takes it, and does not loop on one that refuses 1 too', async () => {
    const { c } = client(20);
    c.start();
    await waitFor(() => c.connected, 10_000, 5);
    expect(helloVersions()).toEqual([CAPABILITY_VERSION]);
    c.stop();
    broker.hellos.length = 0;
    legacy(() => false);
    const { c: other } = client(20);
    other.start();
    await waitFor(() => broker.hellos.length >= 4, 10_000, 5);
    expect(helloVersions().slice(0, 4)).toEqual([CAPABILITY_VERSION, 1, 1, 1]);
  });

  describe('enrollment', () => {
    const body = (protocolVersion = CAPABILITY_VERSION) => ({
      protocolVersion,
      setupKey: 'test-setup-key-0001',
      publicKey: generateKeyPair().publicKey,
      hostname: 'h',
      os: 'linux',
      endpoints: [],
    });
    const agent = () => createBrokerAgent({ fingerprint: cert.fingerprint });
    const seen: number[] = [];
    const recordingLegacy = (accepts: (v: number) => boolean) =>
      legacy((v) => {
        seen.push(v);
        return accepts(v);
      });
    beforeEach(() => {
      seen.length = 0;
    });

    it('enrolls with a broker of version 1 after one retry with 1', async () => {
      recordingLegacy((v) => v === 1);
      const k = generateKeyPair();
      const res = await enroll(
        `https://127.0.0.1:${port}`,
        agent(),
        { ...body(), publicKey: k.publicKey },
        k.privateKey,
      );
      expect(res.brokerPublicKey).toBe(broker.keys.publicKey);
      expect(seen).toEqual([CAPABILITY_VERSION, 1]);
    });

    it('starts a device sign-in with a broker of version 1 after one retry with 1', async () => {
      broker.signIns.acceptsVersion = (v) => {
        seen.push(v);
        return v === 1;
      };
      const k = generateKeyPair();
      const { setupKey: _, ...signIn } = { ...body(), publicKey: k.publicKey };
      const url = `https://127.0.0.1:${port}`;
      const { started } = await startDeviceAuth(url, signIn, k.privateKey, { agent: agent(), address: null });
      expect(started.userCode).toBe(broker.signIns.latest().userCode);
      expect(broker.signIns.latest().request.protocolVersion).toBe(1);
      expect(seen).toEqual([CAPABILITY_VERSION, 1]);
    });

    it('gives the refusal when the broker refuses 1 too, and retries nothing else', async () => {
      recordingLegacy(() => false);
      const k = generateKeyPair();
      const err = await enroll(
        `https://127.0.0.1:${port}`,
        agent(),
        { ...body(), publicKey: k.publicKey },
        k.privateKey,
      ).catch((e) => e);
      expect(err).toBeInstanceOf(BrokerRejectedError);
      expect((err as BrokerRejectedError).statusCode).toBe(400);
      expect(seen).toEqual([CAPABILITY_VERSION, 1]);
    });

    it('retries only a refusal of the version, only from a version above 1', async () => {
      const calls: number[] = [];
      const refuse =
        (status: number, message: string, code?: string) => async (b: { protocolVersion: number }) => {
          calls.push(b.protocolVersion);
          throw new BrokerRejectedError('enrollment', status, message, code);
        };
      await expect(withVersionFallback(body(), refuse(401, 'unknown setup key'))).rejects.toThrow(/401/);
      await expect(
        withVersionFallback(body(1), refuse(400, 'protocol version 1 not supported')),
      ).rejects.toThrow(/400/);
      expect(calls).toEqual([CAPABILITY_VERSION, 1]);
      calls.length = 0;
      const ok = await withVersionFallback(body(), async (b) => {
        calls.push(b.protocolVersion);
        if (b.protocolVersion !== 1) throw new BrokerRejectedError('sign-in', 400, 'x', 'protocol_mismatch');
        return 'signed in';
      });
      expect(ok).toBe('signed in');
      expect(calls).toEqual([CAPABILITY_VERSION, 1]);
    });
  });
});
