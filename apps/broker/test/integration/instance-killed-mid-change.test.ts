import { API_PATHS, CloseCode, type DeviceInfo, type SetupKeyInfo } from '@trellis/proto';
import { prng } from '../../../../packages/portmap/test/support/fuzz';
import { type Backend, createBackend, tempDir } from '../support/backends';
import { serveProcess } from '../support/broker-process';
import { startTestBroker, type TestBroker } from '../support/fixture';
import { httpClient } from '../support/http-client';
import { TestDevice } from '../support/test-device';

jest.setTimeout(180_000);

/**
 * Two instances on one PostgreSQL: devices connected to B, removals and enrollments sent to A, and
 * A killed (SIGKILL) in the middle of them, at a different point each round. Whatever committed
 * must reach B's devices, whatever did not must leave no trace (a spent setup-key use without a
 * device), and B's devices must agree with the database.
 */
describe('an instance killed in the middle of removals and enrollments (PostgreSQL)', () => {
  let backend: Backend;
  let b: TestBroker;
  const open: TestDevice[] = [];

  beforeAll(async () => {
    backend = await createBackend('postgres');
    b = await startTestBroker(backend);
  });
  afterAll(async () => {
    for (const d of open) d.close();
    await b?.close();
    await backend?.dispose();
  });

  async function onB(name: string): Promise<TestDevice> {
    const d = b.device();
    open.push(d);
    await d.enroll(b.setupKey, { hostname: name });
    await d.connect();
    return d;
  }

  const devicesInDb = async () =>
    (await b.api('GET', API_PATHS.devices, { token: b.ownerToken })).json as DeviceInfo[];
  const keyUses = async () =>
    ((await b.api('GET', API_PATHS.setupKeys, { token: b.ownerToken })).json as SetupKeyInfo[])[0]!.usedCount;

  it('3 rounds: every committed change reaches every device on B, nothing is half-done', async () => {
    const random = prng(7);
    const watchers = [await onB('watch-1'), await onB('watch-2')];
    for (let round = 0; round < 3; round++) {
      const victims = [await onB(`victim-${round}-a`), await onB(`victim-${round}-b`)];
      const usesBefore = await keyUses();
      const enrolledBefore = (await devicesInDb()).length;
      const a = serveProcess(tempDir(), backend.databaseUrl);
      const ready = await a.outcome();
      if (!('ready' in ready)) throw new Error(`instance A did not start: ${ready.output}`);
      const certFile = /certificate: (\S+)/.exec(a.output())![1]!;
      const api = httpClient(ready.ready, certFile);

      // A stream of changes through A; the kill lands somewhere in it.
      const ops: Array<Promise<unknown>> = [];
      const stop = { now: false };
      const stream = (async () => {
        for (let i = 0; !stop.now; i++) {
          const d = new TestDevice(ready.ready, certFile);
          ops.push(d.postEnroll(b.setupKey, { hostname: `x-${round}-${i}` }).catch(() => undefined));
          const victim = victims[i];
          if (victim) {
            ops.push(
              api('DELETE', `${API_PATHS.devices}/${victim.id}`, { token: b.ownerToken }).catch(
                () => undefined,
              ),
            );
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      await new Promise((r) => setTimeout(r, 50 + Math.floor(random() * 400)));
      a.child.kill('SIGKILL');
      await a.exited;
      stop.now = true;
      await stream;
      await Promise.all(ops);

      // What the database holds now is the truth; B's devices converge on it within seconds.
      const db = await devicesInDb();
      const ids = new Set(db.map((d) => d.id));
      for (const w of watchers) {
        await w.waitForPeers(
          (peers) => peers.size === ids.size - 1 && [...peers.keys()].every((id) => ids.has(id)),
          20_000,
        );
      }
      for (const v of victims) {
        if (!ids.has(v.id)) expect(await v.waitForClose()).toBe(CloseCode.deviceRemoved);
      }
      // Each spent use of the setup key is an enrollment that exists (none are removed here).
      const enrolledHere = db.length - enrolledBefore + victims.filter((v) => !ids.has(v.id)).length;
      expect((await keyUses()) - usesBefore).toBe(enrolledHere);
      process.stdout.write(
        `round ${round}: ${enrolledHere} enrollments and ${victims.filter((v) => !ids.has(v.id)).length} removals committed before the kill\n`,
      );
    }
  });
});
