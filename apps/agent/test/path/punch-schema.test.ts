import { NetinfoMessage, PathReportMessage, PunchMessage } from '@trellis/proto';
import { PEER_ID, punchMessage } from './scenario';

describe('punch, path and netinfo schemas', () => {
  it('accepts a punch and rejects one without candidates or with an absurd deadline', () => {
    expect(PunchMessage.safeParse(punchMessage()).success).toBe(true);
    expect(PunchMessage.safeParse(punchMessage({ candidates: [] })).success).toBe(false);
    expect(PunchMessage.safeParse(punchMessage({ deadlineMs: 60_000 })).success).toBe(false);
    const badKind = {
      ...punchMessage(),
      candidates: [{ endpoint: '192.0.2.1:1', kind: 'relay', priority: 1 }],
    };
    expect(PunchMessage.safeParse(badKind).success).toBe(false);
  });

  it('path reports are strict and carry endpoint and kind only as valid values', () => {
    const ok = {
      type: 'path',
      peerId: PEER_ID,
      attemptId: 'local:3',
      result: 'direct',
      endpoint: '[2001:db8::1]:51820',
      kind: 'reflexive',
      elapsedMs: 12,
    };
    expect(PathReportMessage.parse(ok)).toEqual(ok);
    expect(PathReportMessage.safeParse({ ...ok, endpoint: 'nope' }).success).toBe(false);
    expect(PathReportMessage.safeParse({ ...ok, extra: 1 }).success).toBe(false);
    expect(PathReportMessage.safeParse({ ...ok, result: 'relayed' }).success).toBe(false);
  });

  it('netinfo carries only the port mapping and relay round trips, both optional', () => {
    expect(NetinfoMessage.safeParse({ type: 'netinfo' }).success).toBe(true);
    const full = {
      type: 'netinfo',
      portMapped: '192.0.2.1:61000',
      relayRttMs: { '9d8c7b6a-5f4e-4d3c-8b2a-1a0b9c8d7e6f': 12 },
    };
    expect(NetinfoMessage.safeParse(full).success).toBe(true);
    expect(NetinfoMessage.safeParse({ ...full, portMapped: 'not an endpoint' }).success).toBe(false);
    // What the broker learns from its reflectors is not echoed back (a strict schema refuses it).
    expect(NetinfoMessage.safeParse({ type: 'netinfo', reflexive: ['192.0.2.1:4000'] }).success).toBe(false);
    expect(NetinfoMessage.safeParse({ type: 'netinfo', mappingType: 'endpoint-dependent' }).success).toBe(
      false,
    );
  });
});
