import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@trellis/crypto';
import type { Agent } from '../src/agent/agent';
import { waitFor } from '../src/util/wait';
import { BrokerDouble } from './helpers/broker-double';
import { makeSelfSignedCert } from './helpers/self-signed-cert';
import { newTestAgent } from './helpers/test-agent';

jest.setTimeout(60_000);

const cert = makeSelfSignedCert();

/** The agent tells the broker its peers' paths over the real control client (for the dashboard topology). */
describe('the agent reports its peers’ paths', () => {
  let broker: BrokerDouble;
  let url: string;
  let dir: string;
  let agent: Agent | null = null;
  const logs: string[] = [];

  beforeEach(async () => {
    broker = new BrokerDouble(cert);
    url = `https://127.0.0.1:${await broker.listen(0)}`;
    dir = mkdtempSync(join(tmpdir(), 'trl-paths-'));
  });
  afterEach(async () => {
    await agent?.shutdown();
    agent = null;
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('in full on connect, then on change (a punch being tried, then given up), and in full again after a reconnect', async () => {
    const peer = {
      id: randomUUID(),
      name: 'peer',
      publicKey: generateKeyPair().publicKey,
      address: '100.64.0.9',
    };
    broker.devices.set(peer.id, { ...peer, endpoints: ['192.0.2.9:51820'] });
    const made = newTestAgent(dir, logs);
    agent = made.agent;
    await agent.start();
    const up = await agent.up({
      op: 'up',
      brokers: [url],
      setupKey: 'test-setup-key-0001',
      trust: { fingerprint: cert.fingerprint },
    });
    expect(up.message).toMatch(/connected/);
    const me = [...broker.devices.values()].find((d) => d.id !== peer.id)!;

    // Connected: one full report; the peer has no path in use (dormant), so it lists none.
    await waitFor(() => broker.pathStates.length > 0, 10_000, 20);
    expect(broker.pathStates[0]).toEqual({
      deviceId: me.id,
      msg: { type: 'path-state', full: true, paths: [] },
    });

    // The broker asks for a punch: the path is being tried, and the report says so (only that peer).
    broker.sendMessage(me.id, {
      type: 'punch',
      attemptId: 'punch:test',
      peerId: peer.id,
      peerPublicKey: peer.publicKey,
      candidates: [{ endpoint: '192.0.2.9:51820', kind: 'reflexive', priority: 1 }],
      startAt: Date.now() + 50,
      // Longer than the reporter's interval: an attempt over within it is never worth a report.
      deadlineMs: 2_500,
    });
    const connecting = () =>
      broker.pathStates.find((r) => r.msg.paths.some((p) => p.peerId === peer.id && p.path === 'connecting'));
    await waitFor(() => connecting() !== undefined, 10_000, 20);
    expect(connecting()!.msg.full).toBeUndefined();
    expect(connecting()!.msg.paths).toHaveLength(1);

    // No handshake ever comes (nobody is there): the attempt fails, and the path is reported gone.
    await waitFor(
      () => broker.pathStates.some((r) => r.msg.paths.some((p) => p.peerId === peer.id && p.path === 'none')),
      10_000,
      20,
    );
    const reports = broker.pathStates.length;

    // The connection drops; after the reconnect the broker gets everything again, as a full report.
    broker.dropAll();
    await waitFor(() => broker.pathStates.slice(reports).some((r) => r.msg.full === true), 10_000, 20);
    // Nothing changed meanwhile: nothing was sent but the full report.
    expect(broker.pathStates.slice(reports).every((r) => r.msg.full === true)).toBe(true);
  });

  it('sends none to a broker from before `path-state` (it would close the connection on one)', async () => {
    broker.features = [];
    const made = newTestAgent(dir, logs);
    agent = made.agent;
    await agent.start();
    const up = await agent.up({
      op: 'up',
      brokers: [url],
      setupKey: 'test-setup-key-0001',
      trust: { fingerprint: cert.fingerprint },
    });
    expect(up.message).toMatch(/connected/);
    const hellos = broker.hellos.length;
    // Past the report's settle time and a reconnect's worth of backoff: still the one connection.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(broker.pathStates).toEqual([]);
    expect(broker.hellos.length).toBe(hellos);
    expect(broker.connectedDevices()).toHaveLength(1);
  });
});
