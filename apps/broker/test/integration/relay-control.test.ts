import { generateKeyPair } from '@trellis/crypto';
import {
  CAPABILITY_VERSION,
  CloseCode,
  MIN_CAPABILITY_VERSION,
  RelayCloseCode,
  type RelayServerMessage,
} from '@trellis/proto';
import type { RelayAllocationRecord } from '../../src';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import { LogSink, startTestBroker, type TestBroker } from '../support/fixture';
import { heldAllocation } from '../support/held-allocation';
import { waitUntil } from '../support/test-device';
import { TestRelay } from '../support/test-relay';

jest.setTimeout(60_000);

const keyA = generateKeyPair().publicKey;
const keyB = generateKeyPair().publicKey;

describe.each(BACKENDS)('relay control channel on %s', (kind) => {
  let backend: Backend;
  let t: TestBroker;
  const logs = new LogSink();
  let defaultId: string;
  const open: TestRelay[] = [];
  const down: Array<{ relayId: string; lost: RelayAllocationRecord[] }> = [];
  const ups: string[] = [];

  beforeAll(async () => {
    backend = await createBackend(kind);
    // Short timeouts so the timeout paths are reachable in a test.
    t = await startTestBroker(
      backend,
      {
        authTimeoutMs: 500,
        heartbeatIntervalMs: 500,
        relayDownGraceMs: 3_000,
        relayAllocateTimeoutMs: 1_500,
      },
      logs,
    );
    defaultId = (await t.broker.services.accounts.byName('default')).id;
    t.broker.relays.on('relay-down', (relayId, lost) => down.push({ relayId, lost }));
    t.broker.relays.on('relay-up', (relay) => ups.push(relay.id));
  });
  afterEach(() => {
    for (const r of open.splice(0)) r.close();
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  async function newToken(accountId: string | null = null, name = 'r'): Promise<string> {
    return (await t.broker.services.relayTokens.create(accountId, name)).token;
  }

  function relay(token: string, name = 'relay-1'): TestRelay {
    const r = new TestRelay(t.broker.url, t.broker.certFile, token, name);
    open.push(r);
    return r;
  }

  it('welcomes a shared relay, records it and marks its token used', async () => {
    const token = await newToken(null, 'shared');
    const r = relay(token, 'shared-1');
    const welcome = await r.connect({
      tcp: { url: 'wss://relay.example:8443', fingerprint: Array(32).fill('0F').join(':') },
    });
    expect(welcome).toEqual({
      type: 'relay-welcome',
      relayId: expect.any(String),
      scope: 'shared',
      allocations: [],
      heartbeatIntervalMs: 500,
      capabilityVersion: CAPABILITY_VERSION,
    });
    const listed = (await t.broker.services.relays.list()).find((x) => x.id === welcome.relayId);
    expect(listed).toMatchObject({
      name: 'shared-1',
      accountName: null,
      publicAddress: '198.51.100.7',
      online: true,
    });
    const tokens = await t.broker.services.relayTokens.list();
    expect(tokens.find((x) => x.name === 'shared')?.lastUsedAt).toEqual(expect.any(String));
    expect(t.broker.relays.netmapRelays(defaultId).map((x) => x.id)).toContain(welcome.relayId);
    r.send({ type: 'ping', t: 42 });
    const pong = await r.waitFor((m) => m.type === 'pong');
    expect(pong).toMatchObject({ type: 'pong', t: 42 });
    // The relay answers WebSocket pings in its library: the broker measures its round trip.
    await waitUntil(
      () =>
        t.broker.relays
          .relaysFor(defaultId)
          .find((x) => x.id === welcome.relayId)
          ?.rttMs() ?? undefined,
      15_000,
      'rtt',
    );
  });

  it('scopes a private relay to its token’s account, whatever the hello says', async () => {
    const r = relay(await newToken(defaultId, 'private'), 'private-1');
    const welcome = await r.connect();
    expect(welcome).toMatchObject({ scope: 'account', accountName: 'default' });
    expect(t.broker.relays.relaysFor(defaultId).map((x) => x.id)).toEqual([welcome.relayId]);
    const other = await t.addAccount('relay-other');
    expect(t.broker.relays.relaysFor(other.accountId).map((x) => x.id)).not.toContain(welcome.relayId);
    await expect(
      t.broker.relays.allocate(welcome.relayId, other.accountId, [keyA, keyB], 1_000),
    ).rejects.toThrow(/private to another account/);
  });

  it('keeps an account with a private relay off the shared ones, across instances and revocation', async () => {
    const acc = await t.addAccount('private-only');
    const shared = relay(await newToken(null, 'shared-p'), 'shared-p');
    const sharedId = (await shared.connect()).relayId;
    expect(t.broker.relays.relaysFor(acc.accountId).map((x) => x.id)).toContain(sharedId);
    const created = await t.broker.services.relayTokens.create(acc.accountId, 'own');
    const own = relay(created.token, 'own-1');
    const ownId = (await own.connect()).relayId;
    expect(t.broker.relays.relaysFor(acc.accountId).map((x) => x.id)).toEqual([ownId]);
    // What another instance (or this one after a restart) reads from the database.
    expect(await t.broker.services.relays.accountsWithPrivateRelays()).toContain(acc.accountId);
    own.close();
    // Offline, its account gets no relay at all rather than the shared one.
    await waitUntil(
      () => (t.broker.relays.relaysFor(acc.accountId).length === 0 ? true : undefined),
      5_000,
      'own relay offline',
    );
    // Revoking the account's only relay token gives it the shared relays again.
    await t.broker.services.relayTokens.revoke(created.relayToken.id);
    expect(await t.broker.services.relays.accountsWithPrivateRelays()).not.toContain(acc.accountId);
    await waitUntil(
      () => (t.broker.relays.relaysFor(acc.accountId).some((x) => x.id === sharedId) ? true : undefined),
      5_000,
      'shared relays again',
    );
  });

  it.each([1, 2, 7])('welcomes a relay of capability version %i and logs its version', async (version) => {
    const r = relay(await newToken(null, `v${version}`), `relay-v${version}`);
    const before = logs.lines.length;
    const welcome = await r.connect({ protocolVersion: version });
    expect(welcome.capabilityVersion).toBe(CAPABILITY_VERSION);
    const line = logs.lines.slice(before).find((l) => l.msg === 'relay connected');
    expect(line?.capabilityVersion).toBe(version);
  });

  const badCases: Array<[string, (r: TestRelay) => unknown[], number]> = [
    ['malformed JSON', () => ['{"type": "relay-hello",'], CloseCode.badMessage],
    ['a JSON non-object', () => ['42'], CloseCode.badMessage],
    ['an unknown message type', () => [{ type: 'launch-missiles' }], CloseCode.badMessage],
    ['unknown fields in the hello', (r) => [{ ...r.hello(), extra: 1 }], CloseCode.badMessage],
    ['a malformed token', (r) => [r.hello({ token: 'trl_short' })], CloseCode.badMessage],
    [
      'allocated before the hello',
      () => [{ type: 'allocated', allocationId: crypto.randomUUID(), port: 1 }],
      CloseCode.badMessage,
    ],
    ['a second hello', (r) => [r.hello(), r.hello()], CloseCode.badMessage],
    [
      'a protocol mismatch',
      (r) => [r.hello({ protocolVersion: MIN_CAPABILITY_VERSION - 1 })],
      CloseCode.protocolMismatch,
    ],
    ['an unknown token', (r) => [r.hello({ token: `trl_${'A'.repeat(43)}` })], RelayCloseCode.badToken],
  ];

  it.each(badCases)('%s closes with the matching code and logs it', async (_name, frames, code) => {
    const r = relay(await newToken());
    await r.open();
    const before = logs.lines.length;
    for (const f of frames(r)) r.send(typeof f === 'string' ? f : JSON.stringify(f));
    expect(await r.waitForClose()).toBe(code);
    expect(logs.lines.slice(before).some((l) => l.level === 40)).toBe(true);
  });

  it('closes a binary frame and a relay that never says hello', async () => {
    const binary = relay(await newToken());
    await binary.open();
    binary.ws!.send(Buffer.from([1, 2, 3]));
    expect(await binary.waitForClose()).toBe(CloseCode.badMessage);
    const silent = relay(await newToken());
    await silent.open();
    expect(await silent.waitForClose()).toBe(CloseCode.authTimeout);
  });

  it('closes a relay that goes silent after its welcome', async () => {
    const r = relay(await newToken());
    r.keepAlive = false;
    await r.connect();
    expect(await r.waitForClose()).toBe(CloseCode.heartbeatTimeout);
  });

  it('refuses a revoked token, and revoking disconnects a connected relay at once', async () => {
    const created = await t.broker.services.relayTokens.create(null, 'to-revoke');
    const r = relay(created.token, 'revoked-1');
    r.answerPortsFrom = 41_000;
    const welcome = await r.connect();
    const record = await t.broker.relays.allocate(welcome.relayId, defaultId, [keyA, keyB], 60_000);
    await t.broker.services.relayTokens.revoke(created.relayToken.id);
    expect(await r.waitForClose()).toBe(RelayCloseCode.revoked);
    const gone = down.find((d) => d.relayId === welcome.relayId);
    expect(gone?.lost).toEqual([record]);
    const again = relay(created.token, 'revoked-1');
    await again.open();
    again.send(again.hello());
    expect(await again.waitForClose()).toBe(RelayCloseCode.revoked);
  });

  it('replaces the first connection of a token by the second', async () => {
    const token = await newToken();
    const first = relay(token, 'twice');
    const w1 = await first.connect();
    const second = relay(token, 'twice');
    const w2 = await second.connect();
    expect(await first.waitForClose()).toBe(RelayCloseCode.replaced);
    expect(w2.relayId).toBe(w1.relayId);
    second.send({ type: 'ping', t: 1 });
    await second.waitFor((m) => m.type === 'pong');
    expect(second.closeCode).toBeUndefined();
  });

  it('allocates through the relay, fails on allocate-failed and on silence', async () => {
    const r = relay(await newToken(defaultId, 'alloc'), 'alloc-1');
    const { relayId } = await r.connect();
    r.answerPortsFrom = 42_000;
    const record = await t.broker.relays.allocate(relayId, defaultId, [keyA, keyB], 60_000);
    expect(record).toMatchObject({ relayId, accountId: defaultId, port: 42_000 });
    expect(record.sides.map((s) => s.publicKey)).toEqual([keyA, keyB]);

    r.answerPortsFrom = undefined;
    const refused = t.broker.relays.allocate(relayId, defaultId, [keyA, keyB], 60_000);
    const ask = await r.waitFor(
      (m) => m.type === 'allocate' && m.allocation.allocationId !== record.allocationId,
    );
    if (ask.type !== 'allocate') throw new Error('expected allocate');
    r.send({ type: 'allocate-failed', allocationId: ask.allocation.allocationId, reason: 'no free port' });
    await expect(refused).rejects.toThrow(/no free port/);

    const from = r.messages.length;
    await expect(t.broker.relays.allocate(relayId, defaultId, [keyA, keyB], 60_000)).rejects.toThrow(
      /did not answer/,
    );
    await r.waitFor((m) => m.type === 'release', from);
    t.broker.relays.release(record.allocationId);
    await r.waitFor((m) => m.type === 'release' && m.allocationId === record.allocationId);
    expect(t.broker.relays.relaysFor(defaultId)[0]?.allocations()).toBe(0);
  });

  it('resumes allocations with their bindings after a quick reconnect, reports them lost after a long one', async () => {
    const token = await newToken(null, 'resume');
    const r = relay(token, 'resume-1');
    r.answerPortsFrom = 43_000;
    const { relayId } = await r.connect();
    const record = await t.broker.relays.allocate(relayId, defaultId, [keyA, keyB], 60_000);
    const bound: unknown[] = [];
    t.broker.relays.on('bound', (...args) => bound.push(args));
    const binding = { transport: 'udp', endpoint: '203.0.113.9:51820' } as const;
    r.send({ type: 'bound', allocationId: record.allocationId, publicKey: keyB, binding });
    await waitUntil(() => bound[0], 15_000, 'bound event');
    expect(bound).toEqual([[record.allocationId, keyB, binding]]);

    r.close();
    await r.waitForClose();
    const upsBefore = ups.length;
    const back = relay(token, 'resume-1');
    back.answerPortsFrom = 43_100;
    const welcome = await back.connect();
    expect(welcome.allocations).toEqual([
      {
        allocationId: record.allocationId,
        accountId: defaultId,
        port: 43_000,
        sides: [
          { publicKey: keyA, bound: null },
          { publicKey: keyB, bound: binding },
        ],
        idleTimeoutMs: 60_000,
      },
    ]);
    expect(ups.length).toBe(upsBefore + 1);
    expect(down.some((d) => d.relayId === relayId)).toBe(false);

    back.send({ type: 'expired', allocationId: record.allocationId });
    const second = await t.broker.relays.allocate(relayId, defaultId, [keyA, keyB], 60_000);
    back.close();
    const lost = await waitUntil(() => down.find((d) => d.relayId === relayId), 15_000, 'relay-down');
    expect(lost.lost).toEqual([second]);
  });

  it('adopts what a relay reports holding in relay-held frames (the broker restarted); more than announced closes it', async () => {
    // The account's private relay (an earlier test gave it one: shared relays no longer serve it).
    const token = await newToken(defaultId, 'adopt');
    const r = relay(token, 'adopt-1');
    const held = (port: number, keys: [string, string]) => heldAllocation(defaultId, port, keys);
    const a = held(44_000, [keyA, keyB]);
    const b = held(44_001, [keyB, generateKeyPair().publicKey]);
    await r.open();
    r.send(r.hello({ held: 2 }));
    r.send({ type: 'relay-held', allocations: [a] });
    r.send({ type: 'relay-held', allocations: [b] });
    const welcome = (await r.waitFor((m) => m.type === 'relay-welcome')) as Extract<
      RelayServerMessage,
      { type: 'relay-welcome' }
    >;
    expect(welcome.allocations).toEqual([a, b]);
    const claimed = await t.broker.relays.claimAdopted(defaultId, [keyB, keyA]);
    expect(claimed?.record).toEqual({
      allocationId: a.allocationId,
      relayId: welcome.relayId,
      accountId: defaultId,
      port: 44_000,
      sides: a.sides,
    });
    // It was online: a broker starting now would wait for it to report again.
    expect(await t.broker.services.relays.onlineAtLastSighting()).toContainEqual({
      id: welcome.relayId,
      accountId: defaultId,
    });

    const liar = relay(await newToken(null, 'adopt-liar'), 'adopt-2');
    await liar.open();
    liar.send(liar.hello({ held: 1 }));
    liar.send({ type: 'relay-held', allocations: [held(44_010, [keyA, keyB]), held(44_011, [keyA, keyB])] });
    expect(await liar.waitForClose()).toBe(CloseCode.badMessage);
    expect(liar.messages.some((m) => m.type === 'relay-welcome')).toBe(false);
  });

  it('lists the account’s and the shared relays over HTTP, not other accounts’', async () => {
    const other = await t.addAccount('relay-http');
    const r = relay(await newToken(other.accountId, 'theirs'), 'theirs-1');
    const { relayId } = await r.connect();
    const mine = await t.api('GET', '/api/v1/relays', { token: t.ownerToken });
    expect(mine.status).toBe(200);
    expect(mine.json.map((x: { id: string }) => x.id)).not.toContain(relayId);
    expect(mine.json.some((x: { accountName: string | null }) => x.accountName === null)).toBe(true);
    const theirs = await t.api('GET', '/api/v1/relays', { token: other.token });
    expect(theirs.json.find((x: { id: string }) => x.id === relayId)).toMatchObject({
      name: 'theirs-1',
      accountName: 'relay-http',
      online: true,
      allocations: 0,
    });
  });
});
