import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@trellis/crypto';
import { ALLOW_ALL } from '@trellis/proto';
import type { Agent } from '../../src/agent/agent';
import { STATE_FILES } from '../../src/state/state-store';
import { waitFor } from '../../src/util/wait';
import { BrokerDouble } from '../helpers/broker-double';
import type { FakeWireGuard } from '../helpers/fake-wireguard';
import { makeSelfSignedCert } from '../helpers/self-signed-cert';
import { newTestAgent } from '../helpers/test-agent';
import { id } from './fixtures';

jest.setTimeout(60_000);

const cert = makeSelfSignedCert();

/** The whole agent: a virtual device in a delta reaches WireGuard, status and the saved netmap. */
describe('the agent with a virtual device behind a peer', () => {
  let broker: BrokerDouble;
  let dir: string;
  let agent: Agent | null = null;
  let wg: FakeWireGuard;

  beforeEach(async () => {
    broker = new BrokerDouble(cert);
    dir = mkdtempSync(join(tmpdir(), 'trl-vd-'));
  });
  afterEach(async () => {
    await agent?.shutdown();
    agent = null;
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("routes its address through the gateway's tunnel, shows it, saves it, and drops it on `remove`", async () => {
    const url = `https://127.0.0.1:${await broker.listen(0)}`;
    const gwKey = generateKeyPair().publicKey;
    const gw = broker.enrollDevice({ publicKey: gwKey, name: 'gw', endpoints: ['192.0.2.10:51820'] });
    ({ agent, wg } = newTestAgent(dir, []));
    await agent.start();
    await agent.up({
      op: 'up',
      brokers: [url],
      setupKey: 'test-setup-key-0001',
      trust: { fingerprint: cert.fingerprint },
    });
    const allowedOfGateway = async () =>
      (await wg.getState()).peers.find((p) => p.publicKey === gwKey)?.allowedIps ?? [];
    await waitFor(async () => (await allowedOfGateway()).length > 0, 10_000, 20);
    const self = (await agent.status()).self!;

    const printer = {
      id: id(10),
      name: 'printer',
      dnsName: 'printer.acme.trellis.test',
      address: '100.64.0.200',
      via: gw.deviceId,
    };
    broker.sendDelta(self.id, {
      upsert: [],
      remove: [],
      virtualUpsert: [printer],
      access: [{ peers: [printer.id], in: [], out: ALLOW_ALL }],
    });
    await waitFor(async () => (await allowedOfGateway()).includes('100.64.0.200/32'), 10_000, 20);
    expect(await allowedOfGateway()).toEqual([`${gw.address}/32`, '100.64.0.200/32']);
    const status = await agent.status();
    expect(status.virtual).toEqual([
      expect.objectContaining({ name: 'printer', address: '100.64.0.200', via: 'gw' }),
    ]);
    await waitFor(() => readFileSync(join(dir, STATE_FILES.netmap), 'utf8').includes('printer'), 10_000, 20);

    broker.sendDelta(self.id, { upsert: [], remove: [printer.id] });
    await waitFor(async () => !(await allowedOfGateway()).includes('100.64.0.200/32'), 10_000, 20);
    expect((await agent.status()).virtual).toBeUndefined();
  });
});
