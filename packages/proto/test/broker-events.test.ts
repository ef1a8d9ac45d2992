import { randomBytes, randomUUID } from 'node:crypto';
import {
  BROKER_EVENT_VERSION,
  type BrokerEvent,
  type DeviceState,
  decodeBrokerEvent,
  encodeBrokerEvent,
  MAX_BROKER_EVENT_BYTES,
  MAX_DEVICE_ROUTES,
  MAX_ENDPOINTS,
} from '../src';

function device(extra: Partial<DeviceState> = {}): DeviceState {
  return {
    id: randomUUID(),
    name: 'laptop',
    publicKey: randomBytes(32).toString('base64'),
    address: '100.64.0.7',
    endpoints: ['192.168.1.10:51820', '[2001:db8::1]:51820'],
    online: true,
    learned: [{ endpoint: '203.0.113.9:40001', kind: 'reflexive', priority: 0 }],
    mappingType: 'endpoint-independent',
    ...extra,
  };
}

const accountId = randomUUID();

/** One event of each kind, and the optional fields of a device both present and absent. */
const validEvents: BrokerEvent[] = [
  { kind: 'device-upsert', accountId, serial: 42, device: device() },
  {
    kind: 'device-upsert',
    accountId,
    serial: 0,
    device: device({ learned: undefined, mappingType: null, endpoints: [], online: false }),
  },
  { kind: 'device-remove', accountId, serial: 43, deviceId: randomUUID() },
  {
    kind: 'device-connected',
    accountId,
    deviceId: randomUUID(),
    connectionId: `a1b2c3d4e5f6:${randomUUID()}`,
  },
];

/** A payload as a broker of this version would send it, with `mutate` applied to the JSON object. */
function payload(mutate: (o: Record<string, unknown>) => void, event: BrokerEvent = validEvents[0]!): string {
  const o = JSON.parse(encodeBrokerEvent(event)) as Record<string, unknown>;
  mutate(o);
  return JSON.stringify(o);
}

function rejection(p: string) {
  const decoded = decodeBrokerEvent(p);
  if (decoded.ok) throw new Error(`accepted ${p}`);
  return decoded;
}

describe('broker events', () => {
  it.each(validEvents.map((e, i) => [i, e.kind, e] as const))(
    '%i (%s) round-trips through its payload',
    (_, __, event) => {
      const p = encodeBrokerEvent(event);
      expect(JSON.parse(p)).toMatchObject({ v: BROKER_EVENT_VERSION, kind: event.kind });
      expect(decodeBrokerEvent(p)).toEqual({ ok: true, event: JSON.parse(JSON.stringify(event)) });
    },
  );

  it('carries a device with as many endpoints and learned addresses as a broker keeps', () => {
    const kinds = ['lan', 'reflexive', 'portmapped', 'observed'] as const;
    const big = device({
      endpoints: Array.from(
        { length: MAX_ENDPOINTS },
        (_, i) => `[2001:db8:ffff:ffff:ffff:ffff:ffff:${i}]:65535`,
      ),
      learned: kinds.flatMap((kind) =>
        Array.from({ length: MAX_ENDPOINTS }, (_, i) => ({
          endpoint: `198.51.100.${i}:65535`,
          kind,
          priority: 0,
        })),
      ),
    });
    const decoded = decodeBrokerEvent(
      encodeBrokerEvent({ kind: 'device-upsert', accountId, serial: 1, device: big }),
    );
    expect(decoded.ok).toBe(true);
  });

  it('carries a gateway with as many routes as it may advertise beside the most candidates', () => {
    const kinds = ['lan', 'reflexive', 'portmapped', 'observed'] as const;
    const gateway = device({
      endpoints: Array.from(
        { length: MAX_ENDPOINTS },
        (_, i) => `[2001:db8:ffff:ffff:ffff:ffff:ffff:${i}]:65535`,
      ),
      learned: kinds.flatMap((kind) =>
        Array.from({ length: MAX_ENDPOINTS }, (_, i) => ({
          endpoint: `198.51.100.${i}:65535`,
          kind,
          priority: 0,
        })),
      ),
      // The longest prefixes there are, every flag at its longest.
      routes: Array.from({ length: MAX_DEVICE_ROUTES }, (_, i) => ({
        prefix: `223.255.255.${200 + i}/32`,
        approved: true,
        since: Number.MAX_SAFE_INTEGER,
        down: true as const,
      })),
    });
    const payload = encodeBrokerEvent({ kind: 'device-upsert', accountId, serial: 1, device: gateway });
    expect(payload.length).toBeLessThanOrEqual(MAX_BROKER_EVENT_BYTES);
    expect(decodeBrokerEvent(payload).ok).toBe(true);
  });

  it('rejects what is not JSON', () => {
    for (const p of ['', '{"v":1,', 'device-upsert', '\u0000']) expect(rejection(p).reason).toBe('bad_json');
  });

  it('rejects JSON that is not an object', () => {
    for (const p of ['null', '[]', '1', '"device-upsert"', '[{"v":1}]'])
      expect(rejection(p).reason).toBe('bad_event');
  });

  it('rejects another version; one without `v` is a broker from before the field (version 1)', () => {
    const other = BROKER_EVENT_VERSION + 1;
    const next = rejection(payload((o) => (o.v = other)));
    expect(next).toMatchObject({ reason: 'version' });
    expect(next.error).toContain(`event version ${other} (this broker speaks ${BROKER_EVENT_VERSION})`);
    // Version 2 added the events between instances (cluster-events): version 1 is refused.
    expect(rejection(payload((o) => delete o.v)).error).toContain('event version 1');
    expect(rejection(payload((o) => (o.v = '1'))).reason).toBe('version');
  });

  it('rejects an unknown kind', () => {
    const r = rejection(payload((o) => (o.kind = 'device-explode')));
    expect(r.reason).toBe('bad_event');
    expect(r.error).toMatch(/^kind: /);
  });

  it.each([
    ['accountId', (o: Record<string, unknown>) => delete o.accountId],
    ['serial', (o: Record<string, unknown>) => delete o.serial],
    ['device', (o: Record<string, unknown>) => delete o.device],
    [
      'device.publicKey',
      (o: Record<string, unknown>) => delete (o.device as Record<string, unknown>).publicKey,
    ],
    ['device.online', (o: Record<string, unknown>) => delete (o.device as Record<string, unknown>).online],
  ])('rejects an upsert without %s, naming it', (field, mutate) => {
    const r = rejection(payload(mutate));
    expect(r.reason).toBe('bad_event');
    expect(r.error.startsWith(`${field}: `)).toBe(true);
  });

  it('rejects fields of the wrong type or out of range', () => {
    const cases: Array<[string, (o: Record<string, unknown>) => void]> = [
      ['serial', (o) => (o.serial = -1)],
      ['serial', (o) => (o.serial = 1.5)],
      ['serial', (o) => (o.serial = '42')],
      ['accountId', (o) => (o.accountId = 'acme')],
      ['device.address', (o) => ((o.device as Record<string, unknown>).address = '100.64.0.300')],
      ['device.name', (o) => ((o.device as Record<string, unknown>).name = 'Laptop\nwith newline')],
      ['device.endpoints.0', (o) => ((o.device as Record<string, unknown>).endpoints = ['nowhere'])],
      ['device.mappingType', (o) => ((o.device as Record<string, unknown>).mappingType = 'cone')],
    ];
    for (const [field, mutate] of cases) {
      const r = rejection(payload(mutate));
      expect({ field, reason: r.reason, at: r.error.split(': ')[0] }).toEqual({
        field,
        reason: 'bad_event',
        at: field,
      });
    }
  });

  it('rejects fields it does not know, at any level (the shape changed without a version bump)', () => {
    expect(rejection(payload((o) => (o.extra = true))).reason).toBe('bad_event');
    expect(rejection(payload((o) => ((o.device as Record<string, unknown>).hostname = 'x'))).reason).toBe(
      'bad_event',
    );
    // a remove's fields on a connected event: each kind has exactly its own fields
    const connected = validEvents[3]!;
    expect(rejection(payload((o) => (o.serial = 1), connected)).reason).toBe('bad_event');
  });

  it('rejects an oversized payload before parsing it', () => {
    const huge = payload((o) => (o.padding = 'x'.repeat(MAX_BROKER_EVENT_BYTES)));
    const r = rejection(huge);
    expect(r.reason).toBe('oversized');
    expect(r.error).toContain(`more than ${MAX_BROKER_EVENT_BYTES}`);
    // bytes, not characters: 3000 three-byte characters are 9000 bytes
    expect(rejection(`"${'€'.repeat(3000)}"`).reason).toBe('oversized');
  });

  it('refuses to encode an invalid or oversized event, so the publisher learns of it', () => {
    const bad = { kind: 'device-remove', accountId, serial: 1, deviceId: 'not-a-uuid' } as BrokerEvent;
    expect(() => encodeBrokerEvent(bad)).toThrow('broker event device-remove is invalid: deviceId: ');
    const tooMany = device({
      endpoints: Array.from({ length: MAX_ENDPOINTS + 1 }, (_, i) => `192.0.2.${i}:1`),
    });
    expect(() => encodeBrokerEvent({ kind: 'device-upsert', accountId, serial: 1, device: tooMany })).toThrow(
      'device.endpoints',
    );
    // schema-valid, but PostgreSQL would refuse it: every learned address as long as an endpoint may be
    const longest = (i: number) => `[${'0:'.repeat(27)}${i.toString(16).padStart(2, '0')}]:65535`;
    expect(longest(1)).toHaveLength(64);
    const huge = device({
      endpoints: Array.from({ length: MAX_ENDPOINTS }, (_, i) => longest(i)),
      learned: Array.from({ length: MAX_ENDPOINTS * 4 }, (_, i) => ({
        endpoint: longest(i),
        kind: 'portmapped' as const,
        priority: 0,
      })),
    });
    expect(() => encodeBrokerEvent({ kind: 'device-upsert', accountId, serial: 1, device: huge })).toThrow(
      `more than ${MAX_BROKER_EVENT_BYTES}`,
    );
  });
});
