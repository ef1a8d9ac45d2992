import { NRPT_COMMENT, NrptConfigurator, selectWindowsResolver } from '../../src/platform/resolver-windows';
import {
  capturingLogger,
  IFACE,
  laptop,
  OTHER_VPN_INDEX,
  parts,
  removeStateDirs,
  routeLines,
} from './scenario';

afterAll(removeStateDirs);

const ours = (w: ReturnType<typeof laptop>) => w.nrpt.filter((r) => r.comment === NRPT_COMMENT);

describe('NRPT split DNS', () => {
  it('refuses a domain, server or interface that is not one, before running anything', async () => {
    const w = laptop();
    const { dns } = parts(w);
    const base = { interfaceName: IFACE, server: '100.64.0.7', domain: 'acme.ts.example' };
    await expect(dns.apply({ ...base, domain: "x'; Remove-DnsClientNrptRule -Force; '" })).rejects.toThrow(
      /refusing DNS domain/,
    );
    await expect(dns.apply({ ...base, domain: 'a..b' })).rejects.toThrow(/refusing DNS domain/);
    await expect(dns.apply({ ...base, server: '100.64.0.7; calc' })).rejects.toThrow(/not an IP address/);
    await expect(dns.apply({ ...base, interfaceName: "t'0" })).rejects.toThrow(/refusing interface name/);
    expect(w.calls).toEqual([]);
  });

  it('takes a domain with a trailing dot, and compares rules without regard to case', async () => {
    const w = laptop();
    const { dns } = parts(w);
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.7', domain: 'Acme.TS.example.' });
    expect(ours(w).map((r) => r.namespaces)).toEqual([['.Acme.TS.example', 'Acme.TS.example']]);
    const changes = w.changes().length;
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.7', domain: 'acme.ts.example' });
    expect(w.changes().length).toBe(changes);
  });

  it('adds the `.` rule before the domain rule changes, so an exit node never leaks a name', async () => {
    const w = laptop();
    const { dns } = parts(w);
    await dns.apply({
      interfaceName: IFACE,
      server: '100.64.0.7',
      domain: 'acme.ts.example',
      defaultRoute: true,
    });
    w.calls.length = 0;
    await dns.apply({
      interfaceName: IFACE,
      server: '100.64.0.9',
      domain: 'acme.ts.example',
      defaultRoute: true,
    });
    const script = w.changes()[0]!.split('\n');
    expect(script.map((l) => l.split(' ')[0])).toEqual([
      'Add-DnsClientNrptRule',
      'Add-DnsClientNrptRule',
      'Remove-DnsClientNrptRule',
      'Remove-DnsClientNrptRule',
      'Clear-DnsClientCache',
      '',
    ]);
    expect(ours(w).map((r) => r.servers)).toEqual([['100.64.0.9'], ['100.64.0.9']]);
  });

  it('still routes the domain when the adapter is gone (no suffix to set then)', async () => {
    const w = laptop();
    w.removeIface(IFACE);
    const { dns } = parts(w);
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.7', domain: 'acme.ts.example' });
    expect(ours(w)).toHaveLength(1);
    expect(w.changes().join('\n')).not.toMatch(/Set-DnsClient /);
  });

  it('warns once that Group Policy NRPT rules make Windows ignore ours', async () => {
    const w = laptop();
    w.gpoNrpt = true;
    const logs: string[] = [];
    const dns = new NrptConfigurator(IFACE, w, capturingLogger(logs));
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.7', domain: 'acme.ts.example' });
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.8', domain: 'acme.ts.example' });
    expect(logs.filter((l) => l.includes('Group Policy'))).toHaveLength(1);
  });

  it("names the other adapters' servers as upstreams, without Windows' placeholders or scoped ones", async () => {
    const w = laptop();
    w.iface(IFACE)!.dns = ['100.64.0.7'];
    w.addIface('Wi-Fi', 12, { dns: ['192.168.1.53', '2001:db8::53', 'fe80::1%12', 'fec0:0:0:ffff::2'] });
    expect(await parts(w).dns.upstreams()).toEqual([
      { address: '192.168.1.53', port: 53 },
      { address: '2001:db8::53', port: 53 },
    ]);
  });

  it('picks NRPT for auto, nothing for stub and off, and refuses the Linux modes', () => {
    const w = laptop();
    const log = capturingLogger([]);
    expect(selectWindowsResolver('auto', IFACE, w, log).resolver?.kind).toBe('nrpt');
    expect(selectWindowsResolver('stub', IFACE, w, log).resolver).toBeNull();
    expect(selectWindowsResolver('off', IFACE, w, log).resolver).toBeNull();
    expect(() => selectWindowsResolver('resolved', IFACE, w, log)).toThrow(/for Linux/);
    expect(() => selectWindowsResolver('resolv-conf', IFACE, w, log)).toThrow(/for Linux/);
  });
});

describe('WindowsNetworkConfigurator edge cases', () => {
  it('fails when the adapter is missing, with what PowerShell said', async () => {
    const w = laptop();
    w.removeIface(IFACE);
    const { net } = parts(w);
    await expect(net.apply(IFACE, '100.64.0.7', '100.64.0.0/10')).rejects.toThrow(/No MSFT_NetIPInterface/);
    await expect(net.setRoutes(IFACE, ['10.9.0.0/16'])).rejects.toThrow(/trellis0 does not exist/);
    await net.setRoutes(IFACE, []);
  });

  it('refuses a prefix that is not one before running anything', async () => {
    const w = laptop();
    await expect(parts(w).net.setRoutes(IFACE, ["10.0.0.0/8'; calc; '"])).rejects.toThrow(/not an IP prefix/);
    expect(w.calls).toEqual([]);
  });

  it("leaves our metric on another adapter alone (another program's route), and fails loudly on a refusal", async () => {
    const w = laptop();
    w.routes.push(
      { prefix: '10.9.0.0/16', nextHop: '0.0.0.0', metric: 116, ifIndex: OTHER_VPN_INDEX },
      { prefix: '10.8.0.0/16', nextHop: '0.0.0.0', metric: 116, ifIndex: OTHER_VPN_INDEX },
    );
    const { net } = parts(w);
    // 10.9/16 is routed by it already: left to it, not doubled; 10.8/16 is not ours to remove.
    await net.setRoutes(IFACE, ['10.9.0.0/16', '10.20.0.0/16']);
    await net.setRoutes(IFACE, ['10.9.0.0/16']);
    await net.remove(IFACE, null);
    expect(routeLines(w, 116)).toEqual([
      '10.8.0.0/16 via 0.0.0.0 if 9 metric 116',
      '10.9.0.0/16 via 0.0.0.0 if 9 metric 116',
    ]);
    expect(w.changes()).toEqual([
      "New-NetRoute -InterfaceIndex 17 -DestinationPrefix '10.20.0.0/16' -NextHop '0.0.0.0' -RouteMetric 116 -PolicyStore ActiveStore | Out-Null\n",
      "Remove-NetRoute -InterfaceIndex 17 -DestinationPrefix '10.20.0.0/16' -NextHop '0.0.0.0' -PolicyStore ActiveStore -Confirm:$false -ErrorAction SilentlyContinue\n",
      expect.stringContaining('if (-not $if) { exit 0 }'),
    ]);

    w.failOn = /New-NetRoute .*10\.10\.0\.0/;
    await expect(parts(w).net.setRoutes(IFACE, ['10.10.0.0/16'])).rejects.toThrow(/parameter is incorrect/);
  });
});
