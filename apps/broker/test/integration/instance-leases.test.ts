import type { BrokerEvent } from '@trellis/proto';
import { InstanceLeases, type Repeat } from '../../src/instances/instance-leases';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import {
  counterValue,
  type LeaseWorld,
  logLines,
  never,
  newInstanceId,
  openWorld,
} from '../support/lease-world';

jest.setTimeout(60_000);

const upserts = (events: BrokerEvent[]) => events.flatMap((e) => (e.kind === 'device-upsert' ? [e] : []));

/**
 * Instance leases against a real database. Time is driven by hand: the timer never fires, tests
 * call tick(), and a dead instance is one whose expires_at the test set in the past.
 */
describe.each(BACKENDS)('instance leases on %s', (kind) => {
  let backend: Backend;
  let world: LeaseWorld;

  beforeAll(async () => {
    backend = await createBackend(kind);
    world = await openWorld(backend);
  });
  afterEach(() => world.clearLeases());
  afterAll(async () => {
    await world?.close();
    await backend?.dispose();
  });

  it('registers on start, takes over a dead predecessor at once, and renews on its timer', async () => {
    const node = await world.node();
    const dead = newInstanceId();
    const { ids } = await world.account(1);
    await (await world.node()).leases(dead).start();
    await world.online(ids[0]!, dead);
    await world.expire(dead);

    let timer: { ms: number; fn: () => void } | undefined;
    const repeat: Repeat = (ms, fn) => {
      timer = { ms, fn };
      return () => {};
    };
    const leases = node.leases(undefined, { repeat });
    expect([leases.renewMs, leases.leaseMs]).toEqual([1000, 3000]);
    await leases.start();

    expect(timer?.ms).toBe(1000);
    const row = await world.leaseRow(leases.instanceId);
    // started_at and expires_at come from one statement's now(): the lease is exactly 3 s long.
    expect(row!.expiresAt.getTime() - row!.startedAt.getTime()).toBe(3000);
    expect(row!.url).toBe(`https://${leases.instanceId}.test:8443`);
    expect(await world.leaseRow(dead)).toBeUndefined();
    expect(await world.connectionOf(ids[0]!)).toBeNull();

    const listed = await node.services.instances.list();
    expect(listed).toEqual([expect.objectContaining({ id: leases.instanceId, version: 'test', live: true })]);

    await world.expire(leases.instanceId);
    expect((await node.services.instances.list())[0]!.live).toBe(false);
    timer!.fn();
    await leases.tick();
    expect((await node.services.instances.list())[0]!.live).toBe(true);
    expect(await counterValue(node.metrics.instanceLeaseLost)).toBe(0);
  });

  it('rejects a lease no longer than its renew interval', () => {
    const make = (renewMs: number, leaseMs: number) =>
      new InstanceLeases({
        instanceId: 'x',
        url: 'https://x',
        version: 'test',
        instances: {} as never,
        devices: {} as never,
        metrics: {} as never,
        logger: {} as never,
        renewMs,
        leaseMs,
        repeat: never,
      });
    expect(() => make(3000, 3000)).toThrow(/longer than its renew interval/);
    expect(() => make(0, 3000)).toThrow();
    expect(make(500, 1500).leaseMs).toBe(1500);
  });

  it('two survivors sweeping at once take each dead instance over exactly once', async () => {
    const [s1, s2] = [await world.node(), await world.node()];
    const l1 = s1.leases();
    const l2 = s2.leases();
    await l1.start();
    await l2.start();
    const deadIds = [newInstanceId(), newInstanceId(), newInstanceId()];
    const one = await world.account(3);
    const two = await world.account(2);
    const onDead = new Map<string, string>();
    for (const id of deadIds) await (await world.node()).leases(id).start();
    const place = [deadIds[0], deadIds[0], deadIds[1], deadIds[1], deadIds[2]] as string[];
    const devices = [...one.ids, ...two.ids];
    for (const [i, id] of devices.entries()) {
      await world.online(id, place[i]!);
      onDead.set(id, place[i]!);
    }
    const serialsBefore = [await world.serialOf(one.accountId), await world.serialOf(two.accountId)];
    for (const id of deadIds) await world.expire(id);

    await Promise.all([l1.tick(), l2.tick()]);

    const taken = [...logLines(s1.logs, 'instance taken over'), ...logLines(s2.logs, 'instance taken over')];
    expect(taken.map((l) => l.deadInstanceId).sort()).toEqual([...deadIds].sort());
    expect(taken.map((l) => [l.deadInstanceId, l.devices]).sort()).toEqual(
      [
        [deadIds[0], 2],
        [deadIds[1], 2],
        [deadIds[2], 1],
      ].sort(),
    );
    expect(
      (await counterValue(s1.metrics.instanceTakeovers)) + (await counterValue(s2.metrics.instanceTakeovers)),
    ).toBe(3);
    for (const id of deadIds) expect(await world.leaseRow(id)).toBeUndefined();
    for (const id of devices) expect(await world.connectionOf(id)).toBeNull();
    // The two survivors are the live ones.
    expect(await counterValue(s1.metrics.instancesLive)).toBe(2);
    expect(await counterValue(s2.metrics.instancesLive)).toBe(2);

    // One device-upsert per device, offline, each with its own serial, as markOffline gives them.
    const events = upserts([...s1.bus.published, ...s2.bus.published]);
    expect(events.map((e) => e.device.id).sort()).toEqual([...devices].sort());
    expect(events.every((e) => !e.device.online)).toBe(true);
    const serialsAfter = [await world.serialOf(one.accountId), await world.serialOf(two.accountId)];
    expect(serialsAfter).toEqual([serialsBefore[0]! + 3, serialsBefore[1]! + 2]);
    const serialsIn = (accountId: string) =>
      events
        .filter((e) => e.accountId === accountId)
        .map((e) => e.serial)
        .sort((a, b) => a - b);
    expect(serialsIn(one.accountId)).toEqual([1, 2, 3].map((n) => serialsBefore[0]! + n));
    expect(serialsIn(two.accountId)).toEqual([1, 2].map((n) => serialsBefore[1]! + n));

    // Nothing left to take over.
    await Promise.all([l1.tick(), l2.tick()]);
    expect(upserts([...s1.bus.published, ...s2.bus.published])).toHaveLength(5);
  });

  it("leaves alone devices that reconnected to another instance, and ids that only look like the dead one's", async () => {
    const survivor = await world.node();
    const leases = survivor.leases();
    await leases.start();
    const dead = newInstanceId();
    await (await world.node()).leases(dead).start();
    const { accountId, ids } = await world.account(3);
    const [stays, moved, lookalike] = ids as [string, string, string];
    await world.online(stays, dead);
    await world.online(moved, dead);
    // `moved` reconnected to the survivor before the sweep: its connection id is the survivor's now.
    const movedConnection = await world.online(moved, leases.instanceId);
    const lookalikeConnection = await world.online(lookalike, `${dead}0`);
    const before = await world.serialOf(accountId);
    await world.expire(dead);

    await leases.tick();

    expect(await world.connectionOf(stays)).toBeNull();
    expect(await world.connectionOf(moved)).toBe(movedConnection);
    expect(await world.connectionOf(lookalike)).toBe(lookalikeConnection);
    expect(await world.serialOf(accountId)).toBe(before + 1);
    expect(upserts(survivor.bus.published).map((e) => [e.device.id, e.device.online, e.serial])).toEqual([
      [stays, false, before + 1],
    ]);
    expect(logLines(survivor.logs, 'instance taken over')).toEqual([
      expect.objectContaining({ deadInstanceId: dead, devices: 1 }),
    ]);
  });

  it('an instance that renews before the sweep keeps its lease and its devices', async () => {
    const survivor = await world.node();
    const leases = survivor.leases();
    await leases.start();
    const slow = (await world.node()).leases();
    await slow.start();
    const { ids } = await world.account(1);
    const connection = await world.online(ids[0]!, slow.instanceId);
    await world.expire(slow.instanceId);

    await slow.tick();
    await leases.tick();
    // The conditional delete: a survivor that read the lease as expired before it was renewed.
    expect(await survivor.services.instances.takeOver(slow.instanceId)).toBeNull();

    expect(await world.leaseRow(slow.instanceId)).toBeDefined();
    expect(await world.connectionOf(ids[0]!)).toBe(connection);
    expect(await counterValue(survivor.metrics.instanceTakeovers)).toBe(0);
    expect(upserts(survivor.bus.published)).toEqual([]);
  });

  it('a taken-over instance notices on its next renew, fires its handlers once and registers again', async () => {
    const survivor = await world.node();
    const sLeases = survivor.leases();
    await sLeases.start();
    const paused = await world.node();
    const pLeases = paused.leases();
    await pLeases.start();
    const lostCalls: string[] = [];
    pLeases.onLost(async () => {
      // The handler runs while the lease is still gone (the broker closes its connections here).
      lostCalls.push((await world.leaseRow(pLeases.instanceId)) ? 'present' : 'gone');
    });
    const { ids } = await world.account(2);
    const [before, straggler] = ids as [string, string];
    await world.online(before, pLeases.instanceId);
    await world.expire(pLeases.instanceId);
    await sLeases.tick();
    expect(await world.connectionOf(before)).toBeNull();
    // The paused instance still accepted a connection after it was taken over.
    await world.online(straggler, pLeases.instanceId);

    await pLeases.tick();

    expect(lostCalls).toEqual(['gone']);
    expect(await counterValue(paused.metrics.instanceLeaseLost)).toBe(1);
    expect(
      logLines(
        paused.logs,
        'instance lease lost (taken over by another instance): closing control connections',
      ),
    ).toHaveLength(1);
    expect(await world.connectionOf(straggler)).toBeNull();
    expect(upserts(paused.bus.published).map((e) => [e.device.id, e.device.online])).toEqual([
      [straggler, false],
    ]);
    expect((await paused.services.instances.list()).find((i) => i.id === pLeases.instanceId)?.live).toBe(
      true,
    );

    await pLeases.tick();
    expect(lostCalls).toHaveLength(1);
  });

  it('a failing renewal is retried, not taken for a lost lease', async () => {
    const node = await world.node();
    let failing = true;
    const real = node.services.instances;
    const flaky = Object.create(real) as typeof real;
    flaky.renew = async (id, ms) => {
      if (failing) throw new Error('connection refused');
      return real.renew(id, ms);
    };
    const leases = node.leases(undefined, { instances: flaky });
    await leases.start();
    let lost = 0;
    leases.onLost(() => {
      lost += 1;
    });
    await leases.tick();
    await leases.tick();
    expect(logLines(node.logs, 'instance lease renewal failed')).toHaveLength(1);
    failing = false;
    await world.expire(leases.instanceId);
    await leases.tick();
    expect(lost).toBe(0);
    expect(logLines(node.logs, 'instance lease renewed again')).toHaveLength(1);
    expect((await node.services.instances.list())[0]).toMatchObject({ id: leases.instanceId, live: true });
  });

  it('keeps renewing while a takeover is still running (a slow sweep does not expire the sweeper)', async () => {
    const node = await world.node();
    const real = node.services.instances;
    const slow = Object.create(real) as typeof real;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let entered!: () => void;
    const inTakeover = new Promise<void>((r) => {
      entered = r;
    });
    slow.takeOver = async (id) => {
      entered();
      await gate;
      return real.takeOver(id);
    };
    const renewals: Array<Promise<boolean>> = [];
    slow.renew = (id, ms) => {
      const p = real.renew(id, ms);
      renewals.push(p);
      return p;
    };
    const leases = node.leases(undefined, { instances: slow });
    await leases.start();
    const dead = newInstanceId();
    await (await world.node()).leases(dead).start();
    await world.expire(dead);

    const first = leases.tick();
    await inTakeover;
    // The sweep hangs in the takeover; the next round's renewal goes out at once regardless.
    const second = leases.tick();
    expect(renewals).toHaveLength(2);
    expect(await renewals[1]).toBe(true);
    release();
    await Promise.all([first, second]);
    expect(await world.leaseRow(dead)).toBeUndefined();
    expect(await counterValue(node.metrics.instanceTakeovers)).toBe(1);
  });

  it('clean shutdown takes its own devices offline and deletes its lease', async () => {
    const survivor = await world.node();
    const sLeases = survivor.leases();
    await sLeases.start();
    const leaving = await world.node();
    const lLeases = leaving.leases();
    await lLeases.start();
    const { ids } = await world.account(2);
    const [mine, theirs] = ids as [string, string];
    await world.online(mine, lLeases.instanceId);
    const theirConnection = await world.online(theirs, sLeases.instanceId);

    await lLeases.stop();

    expect(await world.leaseRow(lLeases.instanceId)).toBeUndefined();
    expect(await world.connectionOf(mine)).toBeNull();
    expect(await world.connectionOf(theirs)).toBe(theirConnection);
    expect(upserts(leaving.bus.published).map((e) => [e.device.id, e.device.online])).toEqual([
      [mine, false],
    ]);
    // Nothing for a survivor to take over, and a stopped instance does not renew again.
    await sLeases.tick();
    await lLeases.tick();
    expect(await counterValue(survivor.metrics.instanceTakeovers)).toBe(0);
    expect(await world.leaseRow(lLeases.instanceId)).toBeUndefined();
    expect(await counterValue(survivor.metrics.instancesLive)).toBe(1);
  });
});
