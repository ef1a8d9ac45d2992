import { API_PATHS, ErrorBody, MAX_DEVICE_ROUTES } from '@trellis/proto';
import { eq, sql } from 'drizzle-orm';
import { SYSTEM_ACTOR } from '../../src/audit/audit-events';
import { accounts, policies } from '../../src/db/schema';
import type { EventBus } from '../../src/events/event-bus';
import { PolicyService } from '../../src/policy/policy.service';
import { currentPolicy } from '../../src/policy/policy-store';
import { type AutoApprover, policyAutoApprover } from '../../src/routes/auto-approval';
import { readRoutes } from '../../src/routes/route-store';
import { RoutesService } from '../../src/routes/routes.service';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';

jest.setTimeout(60_000);

const policyText = (approved: string[]) =>
  JSON.stringify({
    tagOwners: { 'tag:gw': [] },
    rules: [{ src: ['*'], dst: ['*'] }],
    autoApprovers: { routes: Object.fromEntries(approved.map((p) => [p, ['tag:gw']])) },
  });

/** Review findings on routes and the policy (issue 14): atomic re-plans, locks, cheap reconnects. */
describe.each(BACKENDS)('routes and the policy on %s', (kind) => {
  let backend: Backend;
  let t: TestBroker;
  let accountId: string;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    backend = await createBackend(kind);
    t = await startTestBroker(backend);
    accountId = (await t.broker.services.accounts.byName('default')).id;
    for (const name of ['gw', 'gw2', 'plain', 'big']) {
      const d = t.device();
      await d.enroll(t.setupKey, { name });
      ids[name] = d.id;
    }
    await t.broker.services.policy.apply(accountId, policyText(['10.7.0.0/16']), 'test');
    for (const name of ['gw', 'gw2']) {
      const res = await t.api('PUT', `${API_PATHS.devices}/${name}/tags`, {
        token: t.ownerToken,
        body: { tags: ['tag:gw'] },
      });
      expect(res.status).toBe(200);
    }
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  const services = () => t.broker.services;
  const advertise = (name: string, routes: string[]) =>
    services().routes.advertise(ids[name]!, { type: 'advertise', routes }, SYSTEM_ACTOR);
  const approvedOf = async (name: string) =>
    (await readRoutes(services().db, ids[name]!)).filter((r) => r.approved).map((r) => r.prefix);

  it('a policy version and the route changes it makes commit together, or neither does', async () => {
    await advertise('gw', ['10.7.0.0/16']);
    expect(await approvedOf('gw')).toEqual(['10.7.0.0/16']);
    const before = (await currentPolicy(services().db, accountId)).version;
    // A broker dying after the re-plan, before the commit.
    const dying = new PolicyService(
      services().db,
      Reflect.get(services().policy, 'bus') as EventBus,
      undefined,
      {
        lockForPolicy: async (tx, id) => {
          const routes = await services().routes.lockForPolicy(tx, id);
          return {
            apply: async (policy, by) => {
              await routes.apply(policy, by);
              throw new Error('crash');
            },
          };
        },
      },
    );
    await expect(dying.apply(accountId, policyText([]), 'test')).rejects.toThrow('crash');
    expect((await currentPolicy(services().db, accountId)).version).toBe(before);
    expect(await approvedOf('gw')).toEqual(['10.7.0.0/16']);
    // The apply that commits withdraws it in the same transaction.
    await services().policy.apply(accountId, policyText([]), 'test');
    expect(await approvedOf('gw')).toEqual([]);
    await services().policy.apply(accountId, policyText(['10.7.0.0/16']), 'test');
    expect(await approvedOf('gw')).toEqual(['10.7.0.0/16']);
  });

  it('an empty advertisement of a device without routes opens no transaction; an admin-approved prefix needs no policy', async () => {
    const db = services().db;
    const spy = jest.spyOn(db, 'transaction');
    try {
      expect(await advertise('plain', [])).toBe(false);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
    let asked = 0;
    const counting: AutoApprover = (...args) => {
      const decide = policyAutoApprover(...args);
      return (prefix) => {
        asked += 1;
        return decide(prefix);
      };
    };
    const routes = new RoutesService(db, services().devices, counting);
    await routes.setApproved(accountId, 'default', 'plain', ['10.9.0.0/24'], SYSTEM_ACTOR);
    await routes.advertise(ids.plain!, { type: 'advertise', routes: ['10.9.0.0/24'] }, SYSTEM_ACTOR);
    await routes.advertise(ids.plain!, { type: 'advertise', routes: ['10.9.0.0/24'] }, SYSTEM_ACTOR);
    expect(asked).toBe(0);
    await routes.advertise(
      ids.plain!,
      { type: 'advertise', routes: ['10.9.0.0/24', '10.7.1.0/24'] },
      SYSTEM_ACTOR,
    );
    expect(asked).toBe(1);
  });

  it('a tag change and the approvals it makes are one transaction', async () => {
    const spy = jest.spyOn(services().db, 'transaction');
    try {
      const owner = { email: 'owner@default.test', role: 'owner' as const };
      const info = await services().routes.setTags(
        accountId,
        'default',
        'plain',
        ['tag:gw'],
        owner,
        SYSTEM_ACTOR,
      );
      expect(info.tags).toEqual(['tag:gw']);
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
    expect(await approvedOf('plain')).toEqual(['10.7.1.0/24', '10.9.0.0/24']);
  });

  it('unapproving a prefix the policy approved is refused with what to do', async () => {
    const res = await t.api('PUT', `${API_PATHS.devices}/gw/routes`, {
      token: t.ownerToken,
      body: { approved: [] },
    });
    expect(res.status).toBe(409);
    expect(ErrorBody.parse(res.json).message).toMatch(
      /10\.7\.0\.0\/16 approved by the policy's autoApprovers: change the policy/,
    );
    await expect(
      services().routes.changeApproved(accountId, 'default', 'gw', { remove: ['10.7.0.0/16'] }, SYSTEM_ACTOR),
    ).rejects.toThrow(/autoApprovers/);
    expect(await approvedOf('gw')).toEqual(['10.7.0.0/16']);
  });

  it('approving ahead of advertisements stops at the per-device maximum', async () => {
    const many = Array.from({ length: MAX_DEVICE_ROUTES + 1 }, (_, i) => `10.20.${i}.0/24`);
    const change = (add: string[]) =>
      services().routes.changeApproved(accountId, 'default', 'big', { add }, SYSTEM_ACTOR);
    await change(many.slice(0, MAX_DEVICE_ROUTES));
    await expect(change(many.slice(MAX_DEVICE_ROUTES))).rejects.toThrow(
      `a device has at most ${MAX_DEVICE_ROUTES} routes (advertised or approved); big would have ${MAX_DEVICE_ROUTES + 1}`,
    );
    expect((await approvedOf('big')).length).toBe(MAX_DEVICE_ROUTES);
  });

  it('policy plan sees the routes gateways serve', async () => {
    const narrowed = JSON.stringify({
      tagOwners: { 'tag:gw': [] },
      rules: [{ src: ['*'], dst: ['tag:gw', 'plain', 'big'] }],
      autoApprovers: { routes: { '10.7.0.0/16': ['tag:gw'] } },
    });
    const plan = await services().policy.plan(accountId, narrowed);
    const gw = plan.devices.find((d) => d.device === 'gw');
    // `*` opened each served route by name, never as 0.0.0.0/0.
    expect(gw?.losses.map((l) => l.text)).toEqual(
      expect.arrayContaining(['via 10.7.0.0/16: all', 'via 10.7.1.0/24: all', 'via 10.9.0.0/24: all']),
    );
    expect(gw?.losses.map((l) => l.text)).not.toContain('via 0.0.0.0/0: all');
  });

  if (kind === 'postgres') {
    it('an advertisement during a policy apply waits for it and follows the new version', async () => {
      const db = services().db;
      let release!: () => void;
      const released = new Promise<void>((r) => {
        release = r;
      });
      let locked!: () => void;
      const holding = new Promise<void>((r) => {
        locked = r;
      });
      // An apply in progress: the account locked, the new version (approving nothing) inserted.
      const apply = db.transaction(async (tx) => {
        await tx.select().from(accounts).where(eq(accounts.id, accountId)).for('update');
        const v = (await currentPolicy(tx, accountId)).version + 1;
        await tx
          .insert(policies)
          .values({ accountId, version: v, text: policyText([]), appliedBy: 't', rollbackOf: null });
        locked();
        await released;
      });
      await holding;
      const advertised = advertise('gw2', ['10.7.0.0/16']);
      // Released once the advertisement waits on a lock (device row taken, policy not yet read).
      for (;;) {
        const waiting = (await db.execute(
          sql`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock'`,
        )) as unknown as { rows: { n: number }[] };
        if (waiting.rows[0]!.n > 0) break;
        await new Promise((r) => setImmediate(r));
      }
      release();
      await apply;
      await advertised;
      expect(await approvedOf('gw2')).toEqual([]);
    });
  }
});
