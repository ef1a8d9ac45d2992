import { randomBytes } from 'node:crypto';
import {
  API_PATHS,
  compareNames,
  type DeviceInfo,
  DeviceListPage,
  type DeviceListQuery,
  deviceMatches,
} from '@trellis/proto';
import fc from 'fast-check';
import { type Database, openDatabase } from '../../src/db/database';
import { accounts, devices } from '../../src/db/schema';
import { devicePage } from '../../src/services/device-list';
import { type Backend, createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';

jest.setTimeout(120_000);

const NAME_CHARS = ['a', 'b', 'z', '0', '9', '-'];
const TEXT_CHARS = ['a', 'B', '%', '_', '\\', '.', '1', '-'];
const word = (chars: string[], min: number, max: number) =>
  fc.array(fc.constantFrom(...chars), { minLength: min, maxLength: max }).map((c) => c.join(''));

/** Device rows of every shape the filter looks at: names that sort differently in "C" and en_US, LIKE's own characters in the text. */
const deviceArb = fc.record({
  name: word(['a', 'b', 'z', '0', '9'], 1, 3).chain((head) =>
    word(NAME_CHARS, 0, 4).map((tail) => `${head}${tail.replace(/-+$/, '')}`),
  ),
  hostname: word(TEXT_CHARS, 1, 6),
  user: fc.option(
    word(TEXT_CHARS, 1, 6).map((u) => `${u}@x.test`),
    { nil: null },
  ),
  tags: fc.array(word(TEXT_CHARS, 1, 5), { maxLength: 2 }),
  online: fc.boolean(),
  approved: fc.boolean(),
});
const queryArb = fc.record({
  q: fc.option(word(TEXT_CHARS, 0, 3), { nil: undefined }),
  status: fc.constantFrom(undefined, 'online' as const, 'offline' as const, 'pending' as const),
  limit: fc.integer({ min: 1, max: 7 }),
});

describe.each(['pglite', 'postgres'] as const)(
  'the device list on %s, a page at a time: SQL filter and the dashboard’s predicate agree',
  (kind) => {
    let database: Database;
    let backend: Backend;
    beforeAll(async () => {
      backend = await createBackend(kind);
      database = await openDatabase(backend);
    });
    afterAll(async () => {
      await database.close();
      await backend.dispose();
    });

    it('paging through any filter gives exactly the matching devices, in byte order of names, each once', async () => {
      const db = database.db;
      const [account] = await db.insert(accounts).values({ name: 'paging' }).returning();
      const seen = new Set<string>();
      const generated = fc.sample(fc.array(deviceArb, { minLength: 30, maxLength: 30 }), {
        numRuns: 1,
        seed: 7,
      })[0]!;
      const rows = generated.filter((d) => !seen.has(d.name) && seen.add(d.name));
      await db.insert(devices).values(
        rows.map((d, i) => ({
          accountId: account!.id,
          name: d.name,
          hostname: d.hostname,
          os: 'linux',
          publicKey: randomBytes(32).toString('base64'),
          address: `100.64.1.${i + 1}`,
          userEmail: d.user,
          tags: d.tags,
          connectionId: d.online && d.approved ? `c${i}` : null,
          approved: d.approved,
        })),
      );
      const toInfo = (r: typeof devices.$inferSelect): DeviceInfo => ({
        id: r.id,
        name: r.name,
        dnsName: `${r.name}.paging.test`,
        hostname: r.hostname,
        os: r.os,
        publicKey: r.publicKey,
        address: r.address,
        via: r.viaDeviceId,
        lanAddress: r.lanAddress,
        endpoints: [],
        online: r.connectionId !== null,
        lastSeen: null,
        createdAt: r.createdAt.toISOString(),
        tags: r.tags,
        user: r.userEmail,
        approved: r.approved,
      });
      const all = (await db.select().from(devices)).map(toInfo);
      await fc.assert(
        fc.asyncProperty(queryArb, async ({ q, status, limit }) => {
          const want = all
            .filter((d) => deviceMatches({ q, status }, d))
            .map((d) => d.name)
            .sort(compareNames);
          const got: string[] = [];
          let after: string | undefined;
          for (let pages = 0; pages <= all.length; pages += 1) {
            const query: DeviceListQuery = {
              limit,
              ...(q !== undefined ? { q } : {}),
              ...(status ? { status } : {}),
            };
            const page = await devicePage(
              db,
              account!.id,
              after === undefined ? query : { ...query, after },
              undefined,
              toInfo,
            );
            expect(page.matched).toBe(want.length);
            expect(page.devices.length).toBeLessThanOrEqual(limit);
            got.push(...page.devices.map((d) => d.name));
            if (page.next === null) break;
            after = page.next;
          }
          expect(got).toEqual(want);
        }),
        { numRuns: 60, seed: 42 },
      );
    });
  },
);

describe('GET device-list and GET devices/:idOrName over HTTP', () => {
  let t: TestBroker;
  let dispose: () => Promise<void>;
  let memberToken: string;
  beforeAll(async () => {
    const backend = await createBackend('pglite');
    t = await startTestBroker(backend);
    dispose = async () => {
      await t.close();
      await backend.dispose();
    };
    memberToken = await t.addMember('member@list.test');
  });
  afterAll(() => dispose());

  const page = async (query: string, token = t.ownerToken) => {
    const res = await t.api('GET', `${API_PATHS.deviceList}${query}`, { token });
    if (res.status !== 200) throw new Error(`${res.status} ${res.text}`);
    return DeviceListPage.parse(res.json);
  };

  it('pages an account by name; the member sees only their own; another account nothing', async () => {
    for (const name of ['web-1', 'web-2', 'db-1', 'cache']) await t.device().enroll(t.setupKey, { name });
    const other = await t.addAccount('elsewhere');
    await t.device().enroll(other.setupKey, { name: 'web-9' });

    const first = await page('?limit=2');
    expect(first.devices.map((d) => d.name)).toEqual(['cache', 'db-1']);
    expect(first).toMatchObject({ matched: 4, next: 'db-1' });
    const second = await page('?limit=2&after=db-1');
    expect(second.devices.map((d) => d.name)).toEqual(['web-1', 'web-2']);
    expect(second.next).toBeNull();
    expect((await page('?q=WEB')).devices.map((d) => d.name)).toEqual(['web-1', 'web-2']);
    expect((await page('?status=online')).matched).toBe(0);
    expect((await page('', other.token)).devices.map((d) => d.name)).toEqual(['web-9']);
    expect(await page('', memberToken)).toEqual({ devices: [], matched: 0, next: null });
  });

  it('one device by name or id; another account’s or, for a member, another user’s is not found', async () => {
    const one = await t.api('GET', `${API_PATHS.devices}/web-1`, { token: t.ownerToken });
    expect(one.status).toBe(200);
    const byId = await t.api('GET', `${API_PATHS.devices}/${one.json.id}`, { token: t.ownerToken });
    expect(byId.json).toEqual(one.json);
    expect((await t.api('GET', `${API_PATHS.devices}/web-9`, { token: t.ownerToken })).status).toBe(404);
    expect((await t.api('GET', `${API_PATHS.devices}/web-1`, { token: memberToken })).status).toBe(404);
    expect((await t.api('GET', `${API_PATHS.devices}/Not_A_Name`, { token: t.ownerToken })).status).toBe(400);
  });

  it('refuses a query it does not understand with a message naming the parameter', async () => {
    for (const [query, field] of [
      ['?limit=0', 'limit'],
      ['?limit=501', 'limit'],
      ['?limit=ten', 'limit'],
      ['?status=asleep', 'status'],
      ['?after=Bad_Name', 'after'],
      ['?sort=name', 'query'],
      ['?q=a&q=b', 'q'],
    ] as const) {
      const res = await t.api('GET', `${API_PATHS.deviceList}${query}`, { token: t.ownerToken });
      expect(res.status).toBe(400);
      expect(res.json.message).toMatch(new RegExp(`^${field}`));
    }
    expect((await t.api('GET', API_PATHS.deviceList)).status).toBe(401);
  });
});
