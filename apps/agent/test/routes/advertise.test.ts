import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BROKER_FEATURES } from '@trellis/proto';
import type { Agent } from '../../src/agent/agent';
import { waitFor } from '../../src/util/wait';
import { BrokerDouble } from '../helpers/broker-double';
import { makeSelfSignedCert } from '../helpers/self-signed-cert';
import { newTestAgent } from '../helpers/test-agent';

jest.setTimeout(60_000);

const cert = makeSelfSignedCert();

/** The agent's `advertise` over the real control client, and `set` changing it at once. */
describe('the agent advertises its routes', () => {
  let broker: BrokerDouble;
  let url: string;
  let dir: string;
  let agent: Agent | null = null;
  const logs: string[] = [];

  beforeEach(async () => {
    broker = new BrokerDouble(cert);
    url = `https://127.0.0.1:${await broker.listen(0)}`;
    dir = mkdtempSync(join(tmpdir(), 'trl-adv-'));
  });
  afterEach(async () => {
    await agent?.shutdown();
    agent = null;
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const up = (prefs?: Parameters<Agent['set']>[0]) =>
    agent!.up({
      op: 'up',
      brokers: [url],
      setupKey: 'test-setup-key-0001',
      trust: { fingerprint: cert.fingerprint },
      ...(prefs ? { prefs } : {}),
    });

  it('after authenticating and on every change, keeping the settings across a restart', async () => {
    broker.features = [BROKER_FEATURES.pathState, BROKER_FEATURES.routes];
    agent = newTestAgent(dir, logs).agent;
    await agent.start();
    expect(await agent.set({ advertiseRoutes: ['192.168.7.0/24'] })).toBe(
      'settings saved (applied on `trellis up`)',
    );
    expect((await up()).message).toMatch(/connected/);
    await waitFor(() => broker.advertisements.length > 0, 10_000, 20);
    expect(broker.advertisements[0]!.msg).toEqual({ type: 'advertise', routes: ['192.168.7.0/24'] });

    expect(await agent.set({ advertiseExitNode: true })).toBe('settings saved and applied');
    await waitFor(() => broker.advertisements.length > 1, 10_000, 20);
    expect(broker.advertisements[1]!.msg).toEqual({
      type: 'advertise',
      routes: ['192.168.7.0/24', '0.0.0.0/0'],
    });
    expect(await agent.set({ advertiseExitNode: true })).toBe('settings unchanged');
    const status = await agent.status();
    expect(status.gateway?.prefs).toMatchObject({
      advertiseRoutes: ['192.168.7.0/24'],
      advertiseExitNode: true,
    });
    expect(status.gateway?.advertised.map((a) => a.prefix)).toEqual(['192.168.7.0/24', '0.0.0.0/0']);

    // A restarted agent advertises the saved settings again.
    await agent.shutdown();
    const before = broker.advertisements.length;
    agent = newTestAgent(dir, logs).agent;
    await agent.start();
    await waitFor(() => broker.advertisements.length > before, 10_000, 20);
    expect(broker.advertisements.at(-1)!.msg.routes).toEqual(['192.168.7.0/24', '0.0.0.0/0']);
  });

  it('sends none to a broker without `routes` (it would close the connection on one)', async () => {
    agent = newTestAgent(dir, logs).agent;
    await agent.start();
    expect((await up({ advertiseRoutes: ['10.20.0.0/16'] })).message).toMatch(/connected/);
    const hellos = broker.hellos.length;
    await agent.set({ acceptRoutes: false });
    await new Promise((r) => setTimeout(r, 500));
    expect(broker.advertisements).toEqual([]);
    expect(broker.hellos.length).toBe(hellos);
    expect((await agent.status()).gateway?.prefs.acceptRoutes).toBe(false);
  });
});
