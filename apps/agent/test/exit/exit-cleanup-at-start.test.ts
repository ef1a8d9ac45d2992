import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Agent } from '../../src/agent/agent';
import { StateStore } from '../../src/state/state-store';
import { FakeWireGuard } from '../helpers/fake-wireguard';

describe('Agent start while staying down', () => {
  it('removes exit routing a crashed run left', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trellis-exit-start-'));
    const calls: string[] = [];
    const wg = new FakeWireGuard();
    const agent = new Agent({
      store: new StateStore(dir),
      backend: wg,
      network: { apply: async () => {}, remove: async () => {}, setRoutes: async () => {} },
      logger: pino({ level: 'silent' }),
      interfaceName: wg.interfaceName,
      listenPort: 51820,
      readCandidates: () => [],
      watchCandidates: () => () => undefined,
      exitNode: {
        apply: async () => {
          calls.push('apply');
        },
        remove: async () => {
          calls.push('remove');
        },
        status: () => null,
      },
    });
    await agent.start();
    expect(calls).toEqual(['remove']);
    await rm(dir, { recursive: true });
  });
});
