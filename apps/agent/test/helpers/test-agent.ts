import pino from 'pino';
import { Agent } from '../../src/agent/agent';
import { StateStore } from '../../src/state/state-store';
import { FakeWireGuard } from './fake-wireguard';

/** An agent over a fake WireGuard, its state in `dir` and its log lines in `logs`; fast reconnects. */
export function newTestAgent(
  dir: string,
  logs: string[],
  opts: { interfaceName?: string; candidates?: string[] } = {},
): { agent: Agent; wg: FakeWireGuard } {
  const wg = new FakeWireGuard(opts.interfaceName);
  const agent = new Agent({
    store: new StateStore(dir),
    backend: wg,
    network: { apply: async () => {}, remove: async () => {}, setRoutes: async () => {} },
    logger: pino({ level: 'info' }, { write: (line: string) => logs.push(line) }),
    interfaceName: wg.interfaceName,
    listenPort: 51820,
    readCandidates: () => opts.candidates ?? [],
    watchCandidates: () => () => undefined,
    controlOptions: { backoff: { initialMs: 20, maxMs: 200, random: () => 0.5 } },
  });
  return { agent, wg };
}
