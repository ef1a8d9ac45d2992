import { API_PATHS } from '@trellis/proto';
import { parseDaemonOptions } from '../src/daemon-options';
import { localAddresses, localCandidates, localSubnets } from '../src/platform/candidates';
import { brokerEndpointUrl, controlUrl, parseBrokerUrl } from '../src/trust/broker-url';

/** Also run with process.platform forced to win32 (the agent@win32 jest project). */
const windows = process.platform === 'win32';
const PIPE = '\\\\.\\pipe\\trellisd';

describe('trellisd options', () => {
  it('defaults', () => {
    expect(parseDaemonOptions([], {})).toEqual({
      stateDir: windows ? `${process.env.ProgramData ?? 'C:\\ProgramData'}\\Trellis` : '/var/lib/trellis',
      socket: windows ? PIPE : '/var/lib/trellis/trellisd.sock',
      interfaceName: 'trellis0',
      listenPort: 51820,
      wireguard: 'auto',
      logLevel: 'info',
      portMapping: true,
      firewall: 'auto',
      metricsListen: null,
      dns: 'auto',
      resolvConf: '/etc/resolv.conf',
      uiListen: null,
      operator: null,
      uiTokenFile: '/run/trellis/ui-token',
    });
    expect(parseDaemonOptions(['--no-port-mapping'], {}).portMapping).toBe(false);
    expect(parseDaemonOptions([], { TRELLIS_DNS: 'stub' }).dns).toBe('stub');
    expect(() => parseDaemonOptions(['--dns', 'magic'], {})).toThrow(/magic/);
    expect(parseDaemonOptions(['--metrics-listen', '127.0.0.1:9101'], {}).metricsListen).toEqual({
      host: '127.0.0.1',
      port: 9101,
    });
    expect(parseDaemonOptions([], { TRELLIS_METRICS_LISTEN: '[::1]:9101' }).metricsListen).toEqual({
      host: '::1',
      port: 9101,
    });
  });

  it('takes environment variables, and flags over them', () => {
    const env = { TRELLIS_STATE_DIR: '/tmp/s', TRELLIS_INTERFACE: 'trl7', TRELLIS_LISTEN_PORT: '41000' };
    expect(parseDaemonOptions([], env)).toMatchObject({
      stateDir: '/tmp/s',
      socket: windows ? PIPE : '/tmp/s/trellisd.sock',
      interfaceName: 'trl7',
      listenPort: 41000,
    });
    expect(
      parseDaemonOptions(
        [
          '--interface',
          'trl8',
          '--listen-port',
          '42000',
          '--socket',
          '/run/t.sock',
          '--wireguard',
          'userspace',
        ],
        env,
      ),
    ).toMatchObject({
      interfaceName: 'trl8',
      listenPort: 42000,
      socket: '/run/t.sock',
      wireguard: 'userspace',
    });
  });

  it('rejects bad values', () => {
    expect(() => parseDaemonOptions(['--listen-port', '70000'], {})).toThrow(/bad port/);
    expect(() => parseDaemonOptions(['--interface', 'this-name-is-too-long'], {})).toThrow(/interface name/);
    expect(() => parseDaemonOptions(['--wireguard', 'magic'], {})).toThrow();
    expect(() => parseDaemonOptions(['--metrics-listen', '9101'], {})).toThrow(
      /--metrics-listen must be HOST:PORT/,
    );
  });
});

describe('broker URL', () => {
  it('accepts https origins and derives the API URLs', () => {
    expect(parseBrokerUrl('https://broker.example:8443').toString()).toBe('https://broker.example:8443/');
    expect(brokerEndpointUrl('https://10.0.0.1:8443/', API_PATHS.enroll)).toBe(
      'https://10.0.0.1:8443/api/v1/enroll',
    );
    expect(controlUrl('https://10.0.0.1:8443')).toBe('wss://10.0.0.1:8443/api/v1/control');
  });

  it('explains what is wrong with a bad one', () => {
    expect(() => parseBrokerUrl('broker:8443')).toThrow(/https:\/\//);
    expect(() => parseBrokerUrl('not a url')).toThrow(/bad broker URL/);
    expect(() => parseBrokerUrl('http://broker')).toThrow(/only reached over https/);
    expect(() => parseBrokerUrl('https://broker/api')).toThrow(/only https:\/\/HOST\[:PORT\]/);
  });
});

describe('local candidates', () => {
  const ifaces = {
    lo: [
      {
        address: '127.0.0.1',
        netmask: '255.0.0.0',
        family: 'IPv4',
        mac: '',
        internal: true,
        cidr: '127.0.0.1/8',
      },
    ],
    eth0: [
      {
        address: '192.168.1.20',
        netmask: '255.255.255.0',
        family: 'IPv4',
        mac: '',
        internal: false,
        cidr: null,
      },
      {
        address: 'fe80::1',
        netmask: 'ffff::',
        family: 'IPv6',
        mac: '',
        internal: false,
        cidr: null,
        scopeid: 2,
      },
    ],
    eth1: [
      { address: '10.0.0.5', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: null },
    ],
    trellis0: [
      {
        address: '100.64.0.1',
        netmask: '255.255.255.255',
        family: 'IPv4',
        mac: '',
        internal: false,
        cidr: null,
      },
    ],
    cgnat: [
      {
        address: '100.100.1.1',
        netmask: '255.255.0.0',
        family: 'IPv4',
        mac: '',
        internal: false,
        cidr: null,
      },
    ],
  } as unknown as Parameters<typeof localCandidates>[2];

  it('lists IPv4, non-loopback addresses outside the overlay, with the listen port', () => {
    expect(localCandidates('trellis0', 51820, ifaces)).toEqual(['10.0.0.5:51820', '192.168.1.20:51820']);
  });

  it("knows every address of the device (is the control connection's own one still ours?)", () => {
    expect([...localAddresses(ifaces)].sort()).toEqual([
      '10.0.0.5',
      '100.100.1.1',
      '100.64.0.1',
      '127.0.0.1',
      '192.168.1.20',
      'fe80::1',
    ]);
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
