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

  it('netinfo needs the reflexive list; mapping type and port mapping are optional', () => {
    expect(NetinfoMessage.safeParse({ type: 'netinfo', reflexive: [] }).success).toBe(true);
    expect(
      NetinfoMessage.safeParse({
        type: 'netinfo',
        mappingType: 'endpoint-dependent',
        reflexive: ['192.0.2.1:4000', '192.0.2.1:4001'],
        portMapped: '192.0.2.1:61000',
      }).success,
    ).toBe(true);
    expect(NetinfoMessage.safeParse({ type: 'netinfo', mappingType: 'cone', reflexive: [] }).success).toBe(
      false,
    );
  });
});
