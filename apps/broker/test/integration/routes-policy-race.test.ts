import { eq } from 'drizzle-orm';
import { SYSTEM_ACTOR } from '../../src/audit/audit-events';
import { pgErrorCode, withConflictRetry } from '../../src/db/conflict-retry';
import { devices } from '../../src/db/schema';
import { currentPolicy } from '../../src/policy/policy-store';
import { readRoutes } from '../../src/routes/route-store';
import { type Backend, createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';

jest.setTimeout(120_000);

const APPROVED = '10.7.0.0/16';
const OTHER = '10.8.0.0/16';
const policyText = (approve: boolean) =>
  JSON.stringify({
    tagOwners: { 'tag:gw': [] },
    rules: [{ src: ['*'], dst: ['*'] }],
    autoApprovers: { routes: approve ? { [APPROVED]: ['tag:gw'] } : {} },
  });

/**
 * Review finding (issue 14): advertisements racing a policy apply took device and account rows in
 * different orders, and PostgreSQL aborted one of them as a deadlock. Timing triggers the race
 * here; the locks alone decide the outcome: no transaction may die of a deadlock, and the routes
 * must end as the last policy version says.
 */
describe('advertisements racing policy applies (PostgreSQL)', () => {
  let backend: Backend;
  let t: TestBroker;
  let accountId: string;
  const ids: string[] = [];

  beforeAll(async () => {
    backend = await createBackend('postgres');
    t = await startTestBroker(backend);
    accountId = (await t.broker.services.accounts.byName('default')).id;
    await t.broker.services.policy.apply(accountId, policyText(true), 'test');
    const owner = { email: 'owner@default.test', role: 'owner' as const };
    for (let i = 0; i < 4; i++) {
      const d = t.device();
      await d.enroll(t.setupKey, { name: `gw${i}` });
      ids.push(d.id);
      await t.broker.services.routes.setTags(accountId, 'default', `gw${i}`, ['tag:gw'], owner, SYSTEM_ACTOR);
    }
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  it('an advertisement and a policy apply at once both commit, without a deadlock, and the routes follow the last version', async () => {
    const { db, routes, policy } = t.broker.services;
    // Every transaction PostgreSQL aborted as a deadlock or serialization failure, retried or not.
    const aborted: string[] = [];
    const original = db.transaction.bind(db);
    const spy = jest.spyOn(db, 'transaction').mockImplementation((async (
      ...args: Parameters<typeof original>
    ) => {
      try {
        return await original(...args);
      } catch (err) {
        const code = pgErrorCode(err);
        if (code === '40P01' || code === '40001') aborted.push(code);
        throw err;
      }
    }) as typeof db.transaction);
    const advertise = (id: string, prefixes: string[]) =>
      routes.advertise(id, { type: 'advertise', routes: prefixes }, SYSTEM_ACTOR);
    try {
      for (let round = 0; round < 20; round++) {
        const approve = round % 2 === 0;
        // Each device's first advertisement (it owns no routes yet), then a change, while a policy
        // is applied: the apply must see the new owners without taking their rows after the account.
        await Promise.all([
          policy.apply(accountId, policyText(approve), 'test'),
          ...ids.map(async (id) => {
            await advertise(id, [APPROVED]);
            await advertise(id, [APPROVED, OTHER]);
          }),
        ]);
        const version = await currentPolicy(db, accountId);
        expect(version.text).toBe(policyText(approve));
        for (const id of ids) {
          const rows = await readRoutes(db, id);
          expect(rows.map((r) => [r.prefix, r.advertised, r.approved])).toEqual([
            [APPROVED, true, approve],
            [OTHER, true, false],
          ]);
        }
        // Back to owning nothing for the next round.
        await Promise.all(ids.map((id) => advertise(id, [])));
      }
    } finally {
      spy.mockRestore();
    }
    expect(aborted).toEqual([]);
  });

  it('a transaction PostgreSQL aborts as a deadlock victim is run again', async () => {
    const { db } = t.broker.services;
    const barrier = () => {
      let open!: () => void;
      const opened = new Promise<void>((r) => {
        open = r;
      });
      return { open, opened };
    };
    const [first, second] = [barrier(), barrier()];
    const victims: string[] = [];
    // Each locks one device row, waits until the other holds its own, then wants the other's: a
    // deadlock whatever the timing. The retry finds both barriers open and waits for the survivor.
    const crosswise = (mine: string, theirs: string, held: ReturnType<typeof barrier>, other: typeof held) =>
      withConflictRetry(async () => {
        try {
          return await db.transaction(async (tx) => {
            await tx.select().from(devices).where(eq(devices.id, mine)).for('update');
            held.open();
            await other.opened;
            await tx.select().from(devices).where(eq(devices.id, theirs)).for('update');
            return mine;
          });
        } catch (err) {
          victims.push(pgErrorCode(err) ?? 'other');
          throw err;
        }
      });
    const [a, b] = [ids[0]!, ids[1]!];
    await expect(
      Promise.all([crosswise(a, b, first, second), crosswise(b, a, second, first)]),
    ).resolves.toEqual([a, b]);
    expect(victims).toEqual(['40P01']);
  });
});
