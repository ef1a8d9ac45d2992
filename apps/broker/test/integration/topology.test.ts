import { randomUUID } from 'node:crypto';
import {
  API_PATHS,
  type EnrollResponse,
  PathChangedEvent,
  type PathStateMessage,
  PROTOCOL_VERSION,
  TopologyResponse,
} from '@trellis/proto';
import { type Backend, createBackend, tempDir } from '../support/backends';
import { type EventStream, openEventStream } from '../support/event-stream';
import { type LogSink, startTestBroker, type TestBroker } from '../support/fixture';
import { type TestDevice, waitUntil } from '../support/test-device';

jest.setTimeout(60_000);

const report = (d: TestDevice, paths: PathStateMessage['paths'], full = false) =>
  d.send({ type: 'path-state', ...(full ? { full: true } : {}), paths } satisfies PathStateMessage);

async function topology(t: TestBroker, token: string): Promise<TopologyResponse> {
  const res = await t.api('GET', API_PATHS.topology, { token });
  if (res.status !== 200) throw new Error(`topology: ${res.status} ${res.text}`);
  return TopologyResponse.parse(res.json);
}

const pathEvents = (s: EventStream) =>
  s.events.filter((e) => e.event === 'path').map((e) => PathChangedEvent.parse(e.data));

/** Polls the topology seen with `token` until it satisfies `pred`, and returns it. */
async function waitTopology(
  t: TestBroker,
  token: string,
  pred: (x: TopologyResponse) => boolean,
  what: string,
): Promise<TopologyResponse> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const last = await topology(t, token);
    if (pred(last)) return last;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the live topology (GET topology, path events)', () => {
  let backend: Backend;
  let t: TestBroker & { logs: LogSink };
  beforeAll(async () => {
    backend = await createBackend('pglite');
    t = await startTestBroker(backend, { eventsHeartbeatMs: 500 });
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  it('shows what devices report, to whom it may, live; drops reports about non-peers; forgets a device that goes', async () => {
    const memberToken = await t.addMember('viewer@default.test');
    const other = await t.addAccount('elsewhere');
    const a = t.device();
    await a.enroll(t.setupKey, { name: 'alpha' });
    const b = t.device();
    await b.enroll(t.setupKey, { name: 'bravo' });
    // The member's own device, through the sign-in flow they approve.
    const m = t.device();
    const started = await t.api('POST', API_PATHS.deviceAuth, {
      body: { protocolVersion: PROTOCOL_VERSION, publicKey: m.keys.publicKey, hostname: 'mine', os: 'linux' },
    });
    const approved = await t.api('POST', API_PATHS.deviceAuthRequests, {
      token: memberToken,
      body: { userCode: started.json.userCode, approve: true },
    });
    expect(approved.status).toBe(200);
    // Enrolled as its agent would be; the connection needs only the id and the broker key.
    m.enrollment = { ...a.enrollment!, deviceId: approved.json.deviceId } as EnrollResponse;
    const x = t.device();
    await x.enroll(other.setupKey, { name: 'xray' });

    const ownerStream = await openEventStream(t, { authorization: `Bearer ${t.ownerToken}` });
    const memberStream = await openEventStream(t, { authorization: `Bearer ${memberToken}` });
    expect(ownerStream.status).toBe(200);
    for (const d of [a, b, m, x]) await d.connect();
    await a.waitForPeers((p) => p.get(b.id)?.online === true && p.get(m.id)?.online === true);

    report(
      a,
      [
        { peerId: b.id, path: 'direct', forMs: 5_000 },
        { peerId: m.id, path: 'relayed', relay: 'relay-1', forMs: 0 },
        // Not its peers: another account's device, and one that does not exist.
        { peerId: x.id, path: 'direct', forMs: 0 },
        { peerId: randomUUID(), path: 'relayed', relay: 'made-up', forMs: 0 },
      ],
      true,
    );
    report(b, [{ peerId: a.id, path: 'connecting', forMs: 0 }], true);

    const owner = await waitTopology(t, t.ownerToken, (s) => s.edges.length === 2, 'two edges');
    expect(owner.nodes.map((n) => n.id).sort()).toEqual([a.id, b.id, m.id].sort());
    expect(owner.nodes.every((n) => n.online && !n.peerOnly)).toBe(true);
    const ab = owner.edges.find((e) => [e.a, e.b].sort().join() === [a.id, b.id].sort().join())!;
    // The better side wins (a sees handshakes already), with a's start of it.
    expect(ab).toMatchObject({ kind: 'direct', relay: null, a: [a.id, b.id].sort()[0] });
    expect(Date.now() - Date.parse(ab.since)).toBeGreaterThanOrEqual(5_000);
    expect(owner.edges.find((e) => e.a === m.id || e.b === m.id)).toMatchObject({
      kind: 'relayed',
      relay: 'relay-1',
    });
    expect(
      t.logs.lines.some((l) => l.msg === 'path state about devices that are not its peers dropped'),
    ).toBe(true);

    // The member: their device, the path touching it, its far end without its owner; nothing else.
    const member = await topology(t, memberToken);
    expect(member.edges).toHaveLength(1);
    expect(member.nodes).toHaveLength(2);
    expect(member.nodes.find((n) => n.id === m.id)).toMatchObject({
      peerOnly: false,
      owner: 'viewer@default.test',
    });
    expect(member.nodes.find((n) => n.id === a.id)).toMatchObject({
      peerOnly: true,
      owner: null,
      name: 'alpha',
    });
    // The other account sees its own device and no path at all (xray reported nothing; alpha's report about it was dropped).
    const theirs = await topology(t, other.token);
    expect(theirs).toEqual({ nodes: [expect.objectContaining({ id: x.id })], edges: [] });

    // Live: the owner was told of both paths, the member only of theirs.
    await waitUntil(
      () => (pathEvents(ownerStream).flatMap((e) => e.edges).length >= 2 ? true : undefined),
      5_000,
      'owner path events',
    );
    await waitUntil(
      () => (pathEvents(memberStream).length > 0 ? true : undefined),
      5_000,
      'member path event',
    );
    const seenByMember = pathEvents(memberStream).flatMap((e) => [...e.edges, ...e.gone]);
    expect(seenByMember.every((e) => e.a === m.id || e.b === m.id)).toBe(true);

    // A change: a's path to m turns direct; only the changed pair is sent.
    const before = pathEvents(ownerStream).length;
    report(a, [{ peerId: m.id, path: 'direct', forMs: 0 }]);
    await waitUntil(() => (pathEvents(ownerStream).length > before ? true : undefined), 5_000, 'the change');
    expect(pathEvents(ownerStream).slice(before)[0]!.edges).toEqual([
      expect.objectContaining({ kind: 'direct', relay: null }),
    ]);

    // b goes away: its path is gone, from its own report and from a's about it.
    const beforeGone = pathEvents(ownerStream).length;
    b.close();
    await waitUntil(
      () =>
        pathEvents(ownerStream)
          .slice(beforeGone)
          .some((e) => e.gone.length > 0)
          ? true
          : undefined,
      10_000,
      'the path to the departed device gone',
    );
    const after = await topology(t, t.ownerToken);
    expect(after.edges).toHaveLength(1);
    expect(after.nodes.find((n) => n.id === b.id)?.online).toBe(false);

    // A full report replaces what the device said before: no paths at all.
    report(a, [], true);
    await waitTopology(t, t.ownerToken, (s) => s.edges.length === 0, 'no edges');
    for (const d of [a, m, x]) d.close();
    ownerStream.close();
    memberStream.close();
  });

  it('needs a session', async () => {
    expect((await t.api('GET', API_PATHS.topology)).status).toBe(401);
  });
});

describe('the topology across two broker instances', () => {
  let backend: Backend;
  let one: TestBroker;
  let two: TestBroker;
  beforeAll(async () => {
    backend = await createBackend('postgres');
    one = await startTestBroker(backend);
    two = await startTestBroker({ ...backend, dataDir: tempDir() });
  });
  afterAll(async () => {
    await two?.close();
    await one?.close();
    await backend?.dispose();
  });

  it("a report to one instance reaches the other's dashboard, and its event stream", async () => {
    const a = one.device();
    await a.enroll(one.setupKey, { name: 'on-one' });
    const b = two.device();
    await b.enroll(one.setupKey, { name: 'on-two' });
    await a.connect();
    await b.connect();
    await a.waitForPeers((p) => p.get(b.id)?.online === true);
    const stream = await openEventStream(two, { authorization: `Bearer ${one.ownerToken}` });
    report(a, [{ peerId: b.id, path: 'relayed', relay: 'shared-relay', forMs: 0 }], true);
    const seen = await waitTopology(
      two,
      one.ownerToken,
      (s) => s.edges.length === 1,
      'the edge on instance two',
    );
    expect(seen.edges[0]).toMatchObject({ kind: 'relayed', relay: 'shared-relay' });
    await waitUntil(() => (pathEvents(stream).length > 0 ? true : undefined), 5_000, 'the path event on two');
    stream.close();
    a.close();
    b.close();
  });
});
