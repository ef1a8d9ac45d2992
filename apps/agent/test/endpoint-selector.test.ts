import { localSubnets } from '../src/platform/candidates';
import { FirstCandidateSelector, OnLinkFirstSelector } from '../src/wireguard/endpoint-selector';

describe('FirstCandidateSelector', () => {
  const s = new FirstCandidateSelector();
  it('keeps a current endpoint that is still a candidate', () => {
    expect(s.select('k', ['192.0.2.1:1', '10.0.0.2:1'], '10.0.0.2:1')).toBeNull();
  });
  it('otherwise takes the first candidate, or leaves WireGuard alone without any', () => {
    expect(s.select('k', ['192.0.2.1:1', '10.0.0.2:1'], '198.51.100.9:5')).toBe('192.0.2.1:1');
    expect(s.select('k', [], null)).toBeNull();
  });
});

describe('OnLinkFirstSelector', () => {
  const s = new OnLinkFirstSelector(() => ['10.1.0.10/24']);

  it('prefers a candidate on one of our subnets over the public one listed first', () => {
    expect(s.select('k', ['192.0.2.11:51821', '10.1.0.11:51821'], null)).toBe('10.1.0.11:51821');
    expect(s.select('k', ['192.0.2.11:51821', '10.1.0.11:51821'], '192.0.2.11:51821')).toBe(
      '10.1.0.11:51821',
    );
  });

  it('changes nothing when already on the on-link candidate', () => {
    expect(s.select('k', ['192.0.2.11:51821', '10.1.0.11:51821'], '10.1.0.11:51821')).toBeNull();
  });

  it('falls back to the first candidate for peers at other sites', () => {
    expect(s.select('k', ['192.0.2.13:51820', '10.3.0.10:51820'], null)).toBe('192.0.2.13:51820');
  });
});

describe('localSubnets', () => {
  it('lists IPv4 subnets except loopback, the WireGuard interface and overlay addresses', () => {
    const iface = (address: string, cidr: string, internal = false) => ({
      address,
      cidr,
      internal,
      family: 'IPv4' as const,
      netmask: '',
      mac: '00:00:00:00:00:00',
    });
    const subnets = localSubnets('wg0', {
      lo: [iface('127.0.0.1', '127.0.0.1/8', true)],
      eth0: [iface('10.1.0.10', '10.1.0.10/24')],
      wg0: [iface('100.64.0.5', '100.64.0.5/32')],
      other: [iface('100.64.0.9', '100.64.0.9/32')],
    });
    expect(subnets).toEqual(['10.1.0.10/24']);
  });
});
