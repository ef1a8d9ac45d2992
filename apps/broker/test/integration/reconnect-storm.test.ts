import { API_PATHS } from '@trellis/proto';
import { DEFAULT_OFFLINE_GRACE_MS } from '../../src/defaults';
import { createLogger } from '../../src/logger';
import { type Backend, createBackend } from '../support/backends';
import { LogSink, startTestBroker, type TestBroker } from '../support/fixture';
import { checkOpenFileLimit, StormFleet, summary } from '../support/storm-fleet';

/**
 * A reconnection storm at a size CI affords (issue 15): N devices of one account connected as
 * agents, a few changes made, and while they fan out every connection drops and every device
 * reconnects at once with the netmap it holds (lastSerial + resume). Each device keeps its netmap
 * as an agent does and checks every frame (storm-netmap.ts). At the end, after one more change,
 * every device must hold the account the test knows, and none may have been sent a stale or
 * backwards frame, or have given up. No timing is asserted: waits are conditions polled against
 * generous deadlines, which fail naming the devices that did not get there.
 *
 * PostgreSQL, as a production broker runs: a storm's online marks are a thousand concurrent writes.
 * STORM_DEVICES sets N (default 1,000).
 */
const N = Number(process.env.STORM_DEVICES ?? 1000);
/** How long any one phase may take before the test fails with what is missing. */
const PHASE_MS = 240_000;

jest.setTimeout(6 * PHASE_MS);

describe('reconnection storm (PostgreSQL)', () => {
  let backend: Backend;
  let t: TestBroker;
  let fleet: StormFleet;
  const logs = new LogSink();

  beforeAll(async () => {
    checkOpenFileLimit(N);
    backend = await createBackend('postgres');
    t = await startTestBroker(backend, {
      // Every simulated device connects from 127.0.0.1.
      maxConnectionsPerAddress: 0,
      // As in production: devices back within the grace resume instead of going offline.
      offlineGraceMs: DEFAULT_OFFLINE_GRACE_MS,
      // The broker's default (the fixture's 10 ms is for small tests that wait on one change).
      coalesceMs: 25,
      // A thousand devices' info lines (connected, resumed) would fill the sink; warnings are kept.
      logger: createLogger('warn', logs),
    });
    fleet = new StormFleet(t, t.broker.brokerPublicKey);
  });
  afterAll(async () => {
    fleet?.close();
    await t?.close();
    await backend?.dispose();
  });

  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await t.api(method, path, { token: t.ownerToken, ...(body ? { body } : {}) });
    if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
    return res;
  };
  const rename = async (deviceId: string, name: string) => {
    await admin('PUT', `${API_PATHS.devices}/${deviceId}/name`, { name });
    fleet.clients.get(deviceId)!.device.name = name;
  };
  const phase = (name: string, since: number) =>
    console.log(`storm ${N}: ${name} in ${Date.now() - since} ms`);

  it(`${N} devices reconnecting at once each end with the account's netmap, never a stale one`, async () => {
    const started = Date.now();
    let at = started;
    await fleet.enrollMany(Array.from({ length: N }, (_, i) => `storm-${i}`));
    phase('enrolled', at);

    at = Date.now();
    await fleet.connectAll(at + PHASE_MS);
    await fleet.waitConverged(at + PHASE_MS, 'after connecting');
    phase('connected, every netmap complete', at);

    const [victim, renamed] = [...fleet.clients.values()];
    const victimId = victim!.device.deviceId;
    // The changes are under way (committing, fanning out) when every connection drops.
    const changes = [
      fleet.enroll('storm-added'),
      admin('DELETE', `${API_PATHS.devices}/${victimId}`).then(() => fleet.removed(victimId)),
      rename(renamed!.device.deviceId, 'storm-renamed'),
    ];
    await Promise.race(changes);
    at = Date.now();
    fleet.dropAll();
    await Promise.all([fleet.reconnectAll(at + PHASE_MS), ...changes]);
    // The added device comes up like any other (it may have enrolled after the drop).
    await fleet.connectAll(at + PHASE_MS);
    phase('storm: every device reconnected', at);

    // The final known change: once every device holds it, each must hold everything before it.
    at = Date.now();
    await rename(renamed!.device.deviceId, 'storm-final');
    await fleet.waitConverged(at + PHASE_MS, 'after the storm and a final rename');
    phase('converged after the final change', at);

    const violations = fleet.violations();
    if (violations.length > 0)
      throw new Error(
        `${violations.length} devices were sent stale or backwards frames:\n${summary(violations)}`,
      );
    const stats = fleet.stats();
    console.log(`storm ${N}: ${JSON.stringify(stats)}; total ${Date.now() - started} ms`);
    expect(stats.devices).toBe(N);
    expect(fleet.clients.has(victimId)).toBe(false);
  });
});
