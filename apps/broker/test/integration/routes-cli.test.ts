import { API_PATHS, AuditPage } from '@trellis/proto';
import { createBackend } from '../support/backends';
import { cli } from '../support/cli';
import { startTestBroker, type TestBroker } from '../support/fixture';
import type { TestDevice } from '../support/test-device';

jest.setTimeout(60_000);

/** `trellis-broker routes` through the serving broker's admin socket: peers follow at once. */
describe('routes admin commands', () => {
  let t: TestBroker;
  let gw: TestDevice;
  let client: TestDevice;
  let dispose: () => Promise<void>;

  beforeAll(async () => {
    const backend = await createBackend('pglite');
    t = await startTestBroker(backend);
    gw = t.device();
    await gw.enroll(t.setupKey, { name: 'gw' });
    client = t.device();
    await client.enroll(t.setupKey, { name: 'laptop' });
    await gw.connect();
    await client.connect();
    dispose = async () => {
      gw.close();
      client.close();
      await t.close();
      await backend.dispose();
    };
    const dd = ['--data-dir', backend.dataDir, '--account', 'default'];
    run = (...args: string[]) => cli(['routes', ...args, ...dd]);
  });
  afterAll(() => dispose());
  let run: (...args: string[]) => ReturnType<typeof cli>;

  it('lists, approves and unapproves; a bad prefix is refused with its reason', async () => {
    gw.send({ type: 'advertise', routes: ['10.7.0.0/16', '0.0.0.0/0'] });
    await gw.waitFor(
      (m) => (m.type === 'delta' || m.type === 'netmap') && (m.self?.routes?.length ?? 0) === 2,
    );
    const listed = await run('list');
    expect(listed.code).toBe(0);
    expect(listed.out).toMatch(/gw\s+0\.0\.0\.0\/0 \(exit node\)\s+true\s+false\s+online\s+false/);
    expect(listed.out).toMatch(/gw\s+10\.7\.0\.0\/16\s+true\s+false/);

    const approved = await run('approve', 'gw', '10.7.0.0/16', '0.0.0.0/0');
    expect(approved.code).toBe(0);
    expect(approved.out).toMatch(/10\.7\.0\.0\/16\s+true\s+true\s+online\s+true/);
    await client.waitForPeers((p) => p.get(gw.id)?.routes?.length === 2);

    const unapproved = await run('unapprove', 'gw', '0.0.0.0/0', '--json');
    expect(
      JSON.parse(unapproved.out).map((r: { prefix: string; approved: boolean }) => [r.prefix, r.approved]),
    ).toEqual([
      ['0.0.0.0/0', false],
      ['10.7.0.0/16', true],
    ]);
    await client.waitForPeers((p) => p.get(gw.id)?.routes?.length === 1);

    const bad = await run('approve', 'gw', '10.7.0.1/16');
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/host bits/);

    const log = AuditPage.parse(
      (await t.api('GET', `${API_PATHS.audit}?action=routes.approved`, { token: t.ownerToken })).json,
    );
    expect(log.events.map((e) => [e.actor.kind, e.details])).toEqual([
      ['cli', { before: ['0.0.0.0/0', '10.7.0.0/16'], after: ['10.7.0.0/16'] }],
      ['cli', { before: [], after: ['0.0.0.0/0', '10.7.0.0/16'] }],
    ]);
  });
});
