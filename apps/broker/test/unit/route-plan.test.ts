import {
  advertisedRows,
  approvedPrefixes,
  approvedRows,
  type RouteRec,
  sameRows,
  stateRoutes,
} from '../../src/routes/route-plan';
import { primaryOf } from '../../src/routes/route-primary';

const T0 = new Date(1_000);
const T1 = new Date(2_000);
const none = () => false;
const rec = (prefix: string, over: Partial<RouteRec> = {}): RouteRec => ({
  prefix,
  advertised: true,
  approved: false,
  autoApproved: false,
  down: false,
  advertisedAt: T0,
  ...over,
});

describe('advertisedRows', () => {
  it('adds new prefixes pending, with the time of their first advertisement', () => {
    expect(advertisedRows([], ['10.1.0.0/24'], [], T1, none)).toEqual([
      rec('10.1.0.0/24', { advertisedAt: T1 }),
    ]);
  });

  it('an identical re-advertisement changes nothing, keeping the first time', () => {
    const current = [rec('10.1.0.0/24', { approved: true }), rec('10.2.0.0/24')];
    const next = advertisedRows(current, ['10.2.0.0/24', '10.1.0.0/24'], [], T1, none);
    expect(sameRows(current, next)).toBe(true);
  });

  it("withdrawn: an admin's approval is kept unadvertised, anything else is dropped", () => {
    const current = [
      rec('10.1.0.0/24', { approved: true }),
      rec('10.2.0.0/24'),
      rec('10.3.0.0/24', { approved: true, autoApproved: true }),
    ];
    expect(advertisedRows(current, [], [], T1, none)).toEqual([
      rec('10.1.0.0/24', { approved: true, advertised: false, advertisedAt: null }),
    ]);
  });

  it('a prefix approved before it was advertised starts its time when it comes', () => {
    const current = [rec('10.1.0.0/24', { approved: true, advertised: false, advertisedAt: null })];
    expect(advertisedRows(current, ['10.1.0.0/24'], [], T1, none)).toEqual([
      rec('10.1.0.0/24', { approved: true, advertisedAt: T1 }),
    ]);
  });

  it('auto-approves what the policy approves and follows the policy when it stops', () => {
    const auto = (p: string) => p === '0.0.0.0/0';
    const first = advertisedRows([], ['0.0.0.0/0', '10.1.0.0/24'], [], T0, auto);
    expect(first).toEqual([rec('0.0.0.0/0', { approved: true, autoApproved: true }), rec('10.1.0.0/24')]);
    expect(advertisedRows(first, ['0.0.0.0/0', '10.1.0.0/24'], [], T1, none)).toEqual([
      rec('0.0.0.0/0'),
      rec('10.1.0.0/24'),
    ]);
    // An admin's approval does not depend on the policy.
    const byAdmin = [rec('10.1.0.0/24', { approved: true })];
    expect(advertisedRows(byAdmin, ['10.1.0.0/24'], [], T1, () => true)).toEqual(byAdmin);
  });

  it('marks down the prefixes reported down, and ignores down ones not advertised', () => {
    expect(
      advertisedRows([rec('10.1.0.0/24')], ['10.1.0.0/24'], ['10.1.0.0/24', '10.9.0.0/24'], T1, none),
    ).toEqual([rec('10.1.0.0/24', { down: true })]);
  });
});

describe('approvedRows', () => {
  it('approves, keeps how an approved one was approved, unapproves, and drops an unapproved unadvertised row', () => {
    const current = [
      rec('10.1.0.0/24'),
      rec('10.2.0.0/24', { approved: true, autoApproved: true }),
      rec('10.3.0.0/24', { approved: true }),
      rec('10.4.0.0/24', { approved: true, advertised: false, advertisedAt: null }),
    ];
    const next = approvedRows(current, ['10.1.0.0/24', '10.2.0.0/24', '10.5.0.0/24']);
    expect(next).toEqual([
      rec('10.1.0.0/24', { approved: true }),
      rec('10.2.0.0/24', { approved: true, autoApproved: true }),
      rec('10.3.0.0/24'),
      rec('10.5.0.0/24', { approved: true, advertised: false, advertisedAt: null }),
    ]);
    expect(approvedPrefixes(current)).toEqual(['10.2.0.0/24', '10.3.0.0/24', '10.4.0.0/24']);
    expect(approvedPrefixes(next)).toEqual(['10.1.0.0/24', '10.2.0.0/24', '10.5.0.0/24']);
  });
});

describe('stateRoutes', () => {
  it('lists advertised rows only, with since in ms and down when down; absent when none', () => {
    expect(
      stateRoutes([rec('10.1.0.0/24', { approved: true, advertised: false, advertisedAt: null })]),
    ).toBeUndefined();
    expect(stateRoutes([rec('10.2.0.0/24', { down: true }), rec('10.1.0.0/24', { approved: true })])).toEqual(
      [
        { prefix: '10.1.0.0/24', approved: true, since: 1_000 },
        { prefix: '10.2.0.0/24', approved: false, since: 1_000, down: true },
      ],
    );
  });
});

describe('primaryOf', () => {
  it('picks per prefix the eligible gateway serving longest, then the lowest id', () => {
    const p = primaryOf([
      { deviceId: 'b', prefix: '10.1.0.0/24', eligible: true, since: 5 },
      { deviceId: 'c', prefix: '10.1.0.0/24', eligible: true, since: 5 },
      { deviceId: 'a', prefix: '10.1.0.0/24', eligible: false, since: 1 },
      { deviceId: 'd', prefix: '10.2.0.0/24', eligible: false, since: 1 },
    ]);
    expect([...p]).toEqual([['10.1.0.0/24', 'b']]);
  });
});
