import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publicKeyFromPrivate } from '@trellis/crypto';
import { Agent } from '../src/agent/agent';
import { STATE_FILES, StateStore } from '../src/state/state-store';
import { waitFor } from '../src/util/wait';
import { BrokerDouble } from './helpers/broker-double';
import { makeSelfSignedCert } from './helpers/self-signed-cert';
import { newTestAgent } from './helpers/test-agent';

jest.setTimeout(60_000);

const cert = makeSelfSignedCert();

describe('key rotation by the agent', () => {
  let broker: BrokerDouble;
  let url: string;
  let dir: string;
  const agents: Agent[] = [];
  const logs: string[] = [];

  beforeEach(async () => {
    broker = new BrokerDouble(cert);
    url = `https://127.0.0.1:${await broker.listen(0)}`;
    dir = mkdtempSync(join(tmpdir(), 'trl-keys-'));
    logs.length = 0;
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.shutdown();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function makeAgent() {
    const made = newTestAgent(dir, logs);
    agents.push(made.agent);
    return made;
  }

  /** A started agent, enrolled with the double and connected. */
  async function enrolled() {
    const made = makeAgent();
    await made.agent.start();
    const up = await made.agent.up({
      op: 'up',
      brokers: [url],
      setupKey: 'test-setup-key-0001',
      trust: { fingerprint: cert.fingerprint },
    });
    expect(up.message).toMatch(/connected/);
    return made;
  }

  const keyOnDisk = (file: string) => {
    const path = join(dir, file);
    return existsSync(path) ? publicKeyFromPrivate(readFileSync(path, 'utf8').trim()) : null;
  };
  const enrolledKey = () => JSON.parse(readFileSync(join(dir, STATE_FILES.enrollment), 'utf8')).publicKey;
  const device = () => [...broker.devices.values()][0]!;
  /** Connected to the broker under `key`, as status and the broker's last hello say. */
  async function connectedWith(agent: Agent, key: string): Promise<void> {
    await waitFor(
      async () => {
        const s = await agent.status();
        return s.broker.connected && s.interface.publicKey === key && broker.hellos.at(-1)?.publicKey === key;
      },
      20_000,
      20,
    );
  }

  it('writes the new key as pending before the broker hears of it, then makes it the device key and reconnects with it', async () => {
    const { agent, wg } = await enrolled();
    const oldKey = (await agent.status()).interface.publicKey!;
    await waitFor(() => wg.publicKey === oldKey, 10_000, 20);
    const atBroker: Array<{ pending: string | null; current: string | null }> = [];
    broker.onRotateKey = () =>
      atBroker.push({
        pending: keyOnDisk(STATE_FILES.pendingKey),
        current: keyOnDisk(STATE_FILES.privateKey),
      });
    const hellosBefore = broker.hellos.length;

    const res = await agent.rotateKey();
    expect(res.previousKey).toBe(oldKey);
    expect(res.publicKey).not.toBe(oldKey);
    expect(atBroker).toEqual([{ pending: res.publicKey, current: oldKey }]);
    expect(broker.rotations).toEqual([{ deviceId: device().id, newKey: res.publicKey, outcome: 'rotated' }]);

    expect(keyOnDisk(STATE_FILES.privateKey)).toBe(res.publicKey);
    expect(existsSync(join(dir, STATE_FILES.pendingKey))).toBe(false);
    expect(enrolledKey()).toBe(res.publicKey);
    await connectedWith(agent, res.publicKey);
    expect(wg.publicKey).toBe(res.publicKey);
    expect(broker.hellos.slice(hellosBefore).map((h) => h.publicKey)).toEqual([res.publicKey]);
  });

  it('a refused rotation drops the new key; the device keeps its key', async () => {
    const { agent, wg } = await enrolled();
    const oldKey = (await agent.status()).interface.publicKey!;
    broker.rotationMode = 'refuse';
    await expect(agent.rotateKey()).rejects.toThrow(/refused the key rotation: key rotation refused/);
    expect(existsSync(join(dir, STATE_FILES.pendingKey))).toBe(false);
    expect(keyOnDisk(STATE_FILES.privateKey)).toBe(oldKey);
    await connectedWith(agent, oldKey);
    expect(wg.publicKey).toBe(oldKey);
    expect(device().publicKey).toBe(oldKey);
  });

  it('committed by the broker but never answered: the next connection finds the new key at the broker and takes it', async () => {
    const { agent, wg } = await enrolled();
    const oldKey = (await agent.status()).interface.publicKey!;
    broker.rotationMode = 'commit-and-drop';
    await expect(agent.rotateKey()).rejects.toThrow(/did not confirm the key rotation/);
    const newKey = device().publicKey;
    expect(newKey).not.toBe(oldKey);
    await connectedWith(agent, newKey);
    await waitFor(
      () => !existsSync(join(dir, STATE_FILES.pendingKey)) && enrolledKey() === newKey,
      10_000,
      20,
    );
    expect(keyOnDisk(STATE_FILES.privateKey)).toBe(newKey);
    await waitFor(() => wg.publicKey === newKey, 10_000, 20);
    expect(logs.some((l) => l.includes('the broker holds the pending key'))).toBe(true);
  });

  it.each([
    ['accepted: it becomes the device key', true],
    ['never accepted: it is dropped', false],
  ])('a restart with a pending key the broker %s', async (_, accepted) => {
    const first = await enrolled();
    const oldKey = (await first.agent.status()).interface.publicKey!;
    await first.agent.shutdown();
    agents.splice(agents.indexOf(first.agent), 1);
    // What a crash between writing the pending key and the end of the rotation leaves.
    const pending = await new StateStore(dir).createPendingKey();
    if (accepted) device().publicKey = pending.publicKey;
    const expected = accepted ? pending.publicKey : oldKey;

    const from = broker.hellos.length;
    const { agent, wg } = makeAgent();
    await agent.start();
    await connectedWith(agent, expected);
    await waitFor(
      () => !existsSync(join(dir, STATE_FILES.pendingKey)) && enrolledKey() === expected,
      10_000,
      20,
    );
    expect(keyOnDisk(STATE_FILES.privateKey)).toBe(expected);
    await waitFor(() => wg.publicKey === expected, 10_000, 20);
    // The current key first; the pending one only once the broker refused the current one.
    const tried = broker.hellos.slice(from).map((h) => h.publicKey);
    expect(tried[0]).toBe(oldKey);
    if (accepted) expect(tried[1]).toBe(pending.publicKey);
    else expect(new Set(tried)).toEqual(new Set([oldKey]));
  });
});
