import { exitBypass } from '../../src/routes/route-driver';

const FP = Array.from({ length: 32 }, () => 'AB').join(':');

describe('exitBypass', () => {
  it('keeps every broker address, relay UDP and TCP hosts and reflectors off the exit node; names are left out', () => {
    const list = exitBypass(['192.0.2.3', '198.51.100.4', '2001:db8::5'], {
      relays: [
        {
          id: '00000000-0000-4000-8000-000000000001',
          name: 'r1',
          address: '203.0.113.1',
          tcp: { url: 'wss://203.0.113.2:443', fingerprint: FP },
        },
        {
          id: '00000000-0000-4000-8000-000000000002',
          name: 'r2',
          address: 'relay.example',
          tcp: { url: 'wss://[2001:db8::9]:8443', fingerprint: FP },
        },
      ],
      reflectors: [{ publicKey: `${'r'.repeat(43)}=`, endpoint: '203.0.113.7:3478' }],
    });
    expect(list).toEqual([
      '192.0.2.3',
      '198.51.100.4',
      '2001:db8::5',
      '2001:db8::9',
      '203.0.113.1',
      '203.0.113.2',
      '203.0.113.7',
    ]);
  });

  it('has only the brokers without a netmap', () => {
    expect(exitBypass(['192.0.2.3'], undefined)).toEqual(['192.0.2.3']);
  });
});
