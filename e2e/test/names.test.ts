import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AgentRunner,
  BrokerRunner,
  type Device,
  type Host,
  LAB_ACCOUNT,
  Lab,
  NamespaceResolvConf,
  ResolvedDaemon,
  RoutedRouter,
  Steps,
  type TrellisBuild,
  trellisBuild,
  UnboundResolver,
  waitFor,
} from '../src';
import { labIt, requireRoot } from './support/lab-test';

/**
 * Names (issue 12), with resolvers no one here wrote: the broker answers the zone, Debian's
 * unbound resolves it for a LAN host without the agent (the zone delegated to the broker as a stub
 * zone), and on the devices the agent's stub answers the account's names from the netmap, with
 * systemd-resolved (rd) or a plain resolv.conf (pc) pointed at it.
 *  internet: broker brk, unbound ns (also the "ISP" resolver: www.example.net is its own name)
 *  site h (routed): rd (systemd-resolved), pc (plain resolv.conf), lan (no agent)
 */
const ZONE = 'trellis.internal';
const UNBOUND = '198.51.100.53';
const WWW = { name: 'www.example.net', address: '192.0.2.80' };
/** What a DHCP client would have written on pc and lan. */
const PC_RESOLV_CONF =
  '# written by the lab DHCP\nnameserver 198.51.100.53\nsearch lab.example\noptions timeout:1 attempts:2\n';
/** What it writes on pc when the lease is renewed while the mesh is up. */
const PC_RENEWED =
  '# renewed by the lab DHCP\nnameserver 198.51.100.53\nsearch lab.example\noptions timeout:1\n';

const dnsName = (device: string) => `${device}.${LAB_ACCOUNT}.${ZONE}`;

describe('names: the broker, unbound, systemd-resolved and resolv.conf devices (real broker + agents)', () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let broker: BrokerRunner;
  let brokerHost: Host;
  let unbound: UnboundResolver | undefined;
  let resolved: ResolvedDaemon | undefined;
  const agents = new Map<string, AgentRunner>();
  const resolvConfs: NamespaceResolvConf[] = [];
  const overlay = new Map<string, string>();
  let lan: Device;
  const steps = new Steps();
  const L = () => lab;
  const agent = (name: string) => agents.get(name)!;

  /**
   * `getent hosts NAME` on a device: the address glibc resolves, through whatever the device uses.
   * A short name is looked up for IPv4 only (`ahostsv4`, as ping does): `hosts` asks AAAA first, and
   * glibc then tries the bare single label, which resolved sends to LLMNR on the LAN (seconds).
   */
  async function lookup(device: Device, name: string): Promise<string | null> {
    const db = name.includes('.') ? 'hosts' : 'ahostsv4';
    const r = await device.ns.exec(['getent', db, name], { timeoutMs: 15_000 }).catch(() => null);
    return r?.stdout.trim().split(/\s+/)[0] || null;
  }

  async function expectLookup(device: Device, name: string, address: string): Promise<void> {
    const since = Date.now();
    let last: string | null = null;
    await waitFor(
      async () => {
        last = await lookup(device, name);
        return last === address;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: `${device.name}: ${name} -> ${address}` },
    ).catch((err: Error) => {
      throw new Error(`${err.message} (last answer: ${last})`);
    });
    process.stdout.write(`${device.name}: ${name} -> ${address} in ${Date.now() - since} ms\n`);
  }

  /** resolved's per-link DNS servers and domains, the part a Trellis link would change. */
  async function resolvedConfig(): Promise<string> {
    return `${await resolved!.resolvectl(['dns'])}${await resolved!.resolvectl(['domain'])}`;
  }

  beforeAll(async () => {
    requireRoot();
    build = trellisBuild();
    lab = await Lab.create();
    brokerHost = await lab.addHost('brk', '198.51.100.10');
    const nsHost = await lab.addHost('ns', UNBOUND);
    const site = await lab.addSite('h', new RoutedRouter(), ['rd', 'pc', 'lan']);
    lan = site.device('lan');
    for (const device of ['pc', 'lan']) {
      const file = new NamespaceResolvConf(site.device(device).ns);
      file.write(PC_RESOLV_CONF);
      resolvConfs.push(file);
    }
    broker = new BrokerRunner(lab, brokerHost, build, ['--dns-listen', '0.0.0.0:53', '--zone', ZONE]);
    unbound = await UnboundResolver.start(nsHost, join(lab.runDir, 'unbound'), {
      stubZone: ZONE,
      stubAddress: brokerHost.address,
      localData: { [WWW.name]: WWW.address },
      localZones: ['lab.example'],
    });
    // rd as a desktop: resolved, with the LAN's resolver from "DHCP" on eth0 for every domain.
    resolved = await ResolvedDaemon.start(site.device('rd').ns, join(lab.runDir, 'resolved-rd'));
    const rdFile = new NamespaceResolvConf(site.device('rd').ns);
    rdFile.linkTo(resolved.stubResolvConf);
    resolvConfs.push(rdFile);
    await resolved.resolvectl(['dns', 'eth0', UNBOUND]);
    await resolved.resolvectl(['domain', 'eth0', '~.']);
    for (const name of ['rd', 'pc']) {
      const a = new AgentRunner(lab, site.device(name), 51820, build);
      a.dnsMode = 'auto';
      agents.set(name, a);
    }
    agent('rd').extraEnv = resolved.env;
  }, 120_000);

  afterAll(async () => {
    await resolved?.stop();
    await unbound?.stop();
    for (const f of resolvConfs) f.remove();
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  labIt(
    L,
    'every device resolves the account by name; other names still go where they went; a LAN host resolves through unbound',
    async () => {
      const rdBefore = await resolvedConfig();
      await broker.start();
      const setupKey = await broker.createSetupKey();
      for (const a of agents.values()) {
        await a.start();
        await a.up({ broker: broker.url, setupKey, caFile: broker.certFile });
        overlay.set(a.name, (await a.waitConnected()).self.address);
      }
      const rd = agent('rd').device;
      const pc = agent('pc').device;
      // Each device picked its resolver by itself (--dns auto).
      await waitFor(async () => (await agent('pc').status()).dns?.resolver === 'resolv-conf', {
        timeoutMs: 30_000,
        what: 'pc: dns through resolv.conf',
      });
      await waitFor(async () => (await agent('rd').status()).dns?.resolver === 'resolved', {
        timeoutMs: 30_000,
        what: 'rd: dns through systemd-resolved',
      });

      for (const [from, to] of [
        [pc, 'rd'],
        [pc, 'pc'],
        [rd, 'pc'],
        [rd, 'rd'],
      ] as const) {
        await expectLookup(from, dnsName(to), overlay.get(to)!);
        await expectLookup(from, to, overlay.get(to)!); // the account's domain is searched
      }
      // Anything else goes to the resolver the device had: the stub forwards (pc), resolved routes (rd).
      await expectLookup(pc, WWW.name, WWW.address);
      await expectLookup(rd, WWW.name, WWW.address);
      expect(await resolved!.resolvectl(['domain'])).toContain(`${LAB_ACCOUNT}.${ZONE}`);
      expect(rdBefore).not.toContain(`${LAB_ACCOUNT}.${ZONE}`);
      const pcStatus = await agent('pc').cli(['status']);
      expect(pcStatus).toContain(
        `dns:        ${LAB_ACCOUNT}.${ZONE} answered at ${overlay.get('pc')}:53 via resolv.conf`,
      );
      expect(pcStatus).toContain(dnsName('rd'));
      expect(await agent('pc').cli(['ping', 'rd', '--count', '1'])).toContain(
        `reply from ${overlay.get('rd')}`,
      );

      // A LAN host without the agent: its resolver (unbound) follows the delegation to the broker.
      await expectLookup(lan, dnsName('pc'), overlay.get('pc')!);
      const soa = await lan.ns.exec(['dig', '+short', `@${UNBOUND}`, `${LAB_ACCOUNT}.${ZONE}`, 'SOA']);
      expect(soa.stdout).toMatch(/^\S+ hostmaster\.trellis\.internal\. \d+ /);
      // The DHCP client renews its lease and rewrites resolv.conf: the agent manages it again.
      const pcFile = join('/etc/netns', pc.ns.name, 'resolv.conf');
      writeFileSync(pcFile, PC_RENEWED);
      await waitFor(() => readFileSync(pcFile, 'utf8').includes('Managed by trellisd'), {
        timeoutMs: 30_000,
        what: "pc's rewritten resolv.conf managed again",
      });
      expect(readFileSync(pcFile, 'utf8')).toContain('# renewed by the lab DHCP');
      await expectLookup(pc, dnsName('rd'), overlay.get('rd')!);
      await expectLookup(pc, WWW.name, WWW.address);
      steps.complete('names');
    },
    300_000,
  );

  labIt(
    L,
    'a rename is answered by the broker at once and by every device with its next netmap',
    async () => {
      steps.needs('names');
      const since = Date.now();
      await broker.admin([
        'devices',
        'rename',
        'pc',
        'pc2',
        '--data-dir',
        broker.dataDir,
        '--account',
        LAB_ACCOUNT,
      ]);
      const returned = Date.now() - since;
      const asked = async () => {
        const r = await lan.ns.exec([
          'dig',
          '+short',
          '+time=1',
          '+tries=1',
          `@${brokerHost.address}`,
          dnsName('pc2'),
        ]);
        return r.stdout.trim() === overlay.get('pc');
      };
      await waitFor(asked, { timeoutMs: 10_000, intervalMs: 50, what: 'the broker to answer the new name' });
      const atBroker = Date.now() - since;
      await expectLookup(agent('rd').device, dnsName('pc2'), overlay.get('pc')!);
      await expectLookup(agent('pc').device, 'pc2', overlay.get('pc')!);
      expect(await lookup(agent('rd').device, dnsName('pc'))).toBeNull();
      process.stdout.write(
        `\nrename: admin returned after ${returned} ms, broker answered ${atBroker} ms, devices ${Date.now() - since} ms\n`,
      );
      overlay.set('pc2', overlay.get('pc')!);
      steps.complete('renamed');
    },
    120_000,
  );

  labIt(
    L,
    'with the broker stopped, names still resolve on every device, also after an agent restart',
    async () => {
      steps.needs('renamed');
      await broker.stop();
      await agent('pc').stop();
      // A clean exit puts the resolver back as it found it.
      expect(readFileSync(join('/etc/netns', agent('pc').device.ns.name, 'resolv.conf'), 'utf8')).toBe(
        PC_RENEWED,
      );
      await agent('pc').start(); // the netmap saved on disk is all it has now
      await expectLookup(agent('pc').device, dnsName('rd'), overlay.get('rd')!);
      await expectLookup(agent('rd').device, dnsName('pc2'), overlay.get('pc2')!);
      await expectLookup(agent('pc').device, WWW.name, WWW.address);
      expect((await agent('pc').status()).netmapSource).toBe('disk');
      await broker.start();
      await agent('pc').waitConnected();
      steps.complete('offline');
    },
    180_000,
  );

  labIt(
    L,
    'trellis down, and a start after kill -9, leave each resolver exactly as it was',
    async () => {
      steps.needs('offline');
      const pcFile = join('/etc/netns', agent('pc').device.ns.name, 'resolv.conf');
      // Crash: the managed file stays behind, naming a stub that is gone.
      await agent('pc').kill();
      expect(readFileSync(pcFile, 'utf8')).toContain('Managed by trellisd');
      await agent('pc').start();
      expect(
        agent('pc')
          .logLines()
          .some((l) => l.includes('resolv.conf restored')),
      ).toBe(true);
      await expectLookup(agent('pc').device, dnsName('rd'), overlay.get('rd')!); // and managed again
      await agent('pc').cli(['down']);
      expect(readFileSync(pcFile, 'utf8')).toBe(PC_RENEWED); // the original as it last was, byte for byte
      await expectLookup(agent('pc').device, WWW.name, WWW.address);

      await agent('rd').kill();
      await agent('rd').start();
      await expectLookup(agent('rd').device, dnsName('rd'), overlay.get('rd')!);
      await agent('rd').cli(['down']);
      const after = await resolvedConfig();
      expect(after).not.toContain(`${LAB_ACCOUNT}.${ZONE}`);
      expect(after).toContain(UNBOUND);
      // Still a name: the public one, through the LAN's resolver (unbound, then the broker).
      await expectLookup(agent('rd').device, dnsName('rd'), overlay.get('rd')!);
      await expectLookup(agent('rd').device, WWW.name, WWW.address);
    },
    180_000,
  );
});
