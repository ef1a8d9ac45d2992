import { API_PATHS, RelaySetupInfo } from '@trellis/proto';
import { createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';

jest.setTimeout(60_000);

/** What the relays page needs for a private relay's command line: admins only. */
describe('relay setup info', () => {
  let t: TestBroker;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    const backend = await createBackend('pglite');
    t = await startTestBroker(backend);
    dispose = async () => {
      await t.close();
      await backend.dispose();
    };
  });
  afterAll(() => dispose());

  // No public URL configured: the page uses the address it was opened at (dashboard-relays.test.ts).
  it("gives an admin the broker's certificate pin, and no URL when no public one is configured", async () => {
    const res = await t.api('GET', API_PATHS.relaySetup, { token: t.ownerToken });
    expect(res.status).toBe(200);
    expect(RelaySetupInfo.parse(res.json)).toEqual({
      brokerUrl: null,
      fingerprint: t.broker.fingerprint,
    });
  });

  it('refuses members and the signed-out', async () => {
    const member = await t.addMember('m@relay-setup.test');
    expect((await t.api('GET', API_PATHS.relaySetup, { token: member })).status).toBe(403);
    expect((await t.api('GET', API_PATHS.relaySetup)).status).toBe(401);
  });
});
