import {
  CORE_GATEWAY,
  CORE_PREFIX_LEN,
  carrierSegment,
  type LanPlan,
  privateLan,
  publicLan,
  routerWanAddress,
  UNRESERVED_GATEWAY,
  UNRESERVED_PREFIX_LEN,
  unreservedWanAddress,
} from './addresses';
import { addBridge, disableBridgeNetfilter, type Internet } from './internet';
import type { Namespace } from './namespace';
import {
  LAN_IF,
  type RouterContext,
  type RouterKind,
  type RouterServiceHost,
  WAN_IF,
} from './router-kinds/router-kind';

/** What a site needs from its lab. */
export interface SiteLab {
  readonly internet: Internet;
  addNamespace(role: string): Promise<Namespace>;
}

/** A machine on a site's LAN: namespace with eth0 on the router's bridge. */
export class Device {
  constructor(
    readonly name: string,
    readonly ns: Namespace,
    /** LAN address (for routed sites this is public too). */
    readonly address: string,
    readonly site: Site,
  ) {}
}

/**
 * A site: router namespace (wan0 to the internet or to a carrier, br0 = LAN, forwarding on,
 * nftables per its RouterKind) and device namespaces behind it.
 */
export class Site {
  readonly devices = new Map<string, Device>();
  private servicesStarted = false;
  /** Devices moved here from other sites so far (their LAN addresses follow the own ones). */
  private adopted = 0;
  private wanAddress: string;
  private carrierWan: string | null;

  private constructor(
    private readonly lab: SiteLab,
    readonly name: string,
    public kind: RouterKind,
    readonly index: number,
    readonly router: Namespace,
    /** The CGNAT carrier's namespace, if the kind has one. */
    readonly carrier: Namespace | null,
    readonly lan: LanPlan,
    wanAddress: string,
    carrierWan: string | null,
  ) {
    this.wanAddress = wanAddress;
    this.carrierWan = carrierWan;
  }

  static async create(lab: SiteLab, name: string, kind: RouterKind, index: number): Promise<Site> {
    const lan = kind.lan === 'public' ? publicLan(index) : privateLan(index);
    const router = await lab.addNamespace(`${name}-r`);
    let carrier: Namespace | null = null;
    let wan = routerWanAddress(index);
    let carrierWan: string | null = null;
    if (kind.carrier) {
      carrier = await lab.addNamespace(`${name}-c`);
      carrierWan = wan;
      const seg = carrierSegment(index);
      await lab.internet.attach(carrier, WAN_IF);
      await carrier.exec(['ip', 'addr', 'add', `${carrierWan}/${CORE_PREFIX_LEN}`, 'dev', WAN_IF]);
      await carrier.exec(['ip', 'route', 'add', 'default', 'via', CORE_GATEWAY]);
      await carrier.exec([
        'ip',
        'link',
        'add',
        'cust0',
        'netns',
        carrier.name,
        'type',
        'veth',
        'peer',
        'name',
        WAN_IF,
        'netns',
        router.name,
      ]);
      await carrier.exec(['ip', 'addr', 'add', `${seg.carrier}/${seg.prefixLen}`, 'dev', 'cust0']);
      await carrier.exec(['ip', 'link', 'set', 'cust0', 'up']);
      await carrier.sysctl('net.ipv4.ip_forward', 1);
      await carrier.nft(`flush ruleset\n${kind.carrier.ruleset(carrierWan)}`);
      wan = seg.home;
      await router.exec(['ip', 'link', 'set', WAN_IF, 'up']);
      await router.exec(['ip', 'addr', 'add', `${wan}/${seg.prefixLen}`, 'dev', WAN_IF]);
      await router.exec(['ip', 'route', 'add', 'default', 'via', seg.carrier]);
    } else {
      await lab.internet.attach(router, WAN_IF);
      const unreserved = kind.wan === 'unreserved';
      if (unreserved) wan = unreservedWanAddress(index);
      const prefixLen = unreserved ? UNRESERVED_PREFIX_LEN : CORE_PREFIX_LEN;
      await router.exec(['ip', 'addr', 'add', `${wan}/${prefixLen}`, 'dev', WAN_IF]);
      await router.exec([
        'ip',
        'route',
        'add',
        'default',
        'via',
        unreserved ? UNRESERVED_GATEWAY : CORE_GATEWAY,
      ]);
    }
    await addBridge(router, LAN_IF);
    await router.exec(['ip', 'addr', 'add', `${lan.gateway}/${lan.prefixLen}`, 'dev', LAN_IF]);
    await router.exec(['ip', 'link', 'set', LAN_IF, 'up']);
    await router.sysctl('net.ipv4.ip_forward', 1);
    await disableBridgeNetfilter(router);
    if (kind.lan === 'public') await lab.internet.route(lan.prefix, wan);
    const site = new Site(lab, name, kind, index, router, carrier, lan, wan, carrierWan);
    await site.applyRules();
    return site;
  }

  /** The address the internet sees this site's traffic from (the carrier's, behind CGNAT). */
  get publicAddress(): string {
    return this.carrierWan ?? this.wanAddress;
  }

  /** The router's own WAN address (inside the carrier segment for CGNAT). */
  get routerWanAddress(): string {
    return this.wanAddress;
  }

  device(name: string): Device {
    const d = this.devices.get(name);
    if (!d) throw new Error(`site ${this.name} has no device ${name}`);
    return d;
  }

  async addDevice(name: string): Promise<Device> {
    // Re-applying the ruleset would wipe what a router daemon (miniupnpd) added to it.
    if (this.servicesStarted) throw new Error(`site ${this.name}: add devices before its services start`);
    if (this.devices.has(name)) throw new Error(`site ${this.name} already has a device ${name}`);
    const index = this.devices.size;
    const address = this.lan.device(index);
    const ns = await this.lab.addNamespace(`${this.name}-${name}`);
    await this.plugIn(ns, index, address);
    const device = new Device(name, ns, address, this);
    this.devices.set(name, device);
    await this.applyRules();
    return device;
  }

  /** A veth from the router's LAN bridge (port lanN) to the device's eth0, addressed, default route. */
  private async plugIn(ns: Namespace, index: number, address: string): Promise<void> {
    const port = `lan${index}`;
    await this.router.exec([
      'ip',
      'link',
      'add',
      port,
      'netns',
      this.router.name,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      ns.name,
    ]);
    await this.router.exec(['ip', 'link', 'set', port, 'master', LAN_IF]);
    await this.router.exec(['ip', 'link', 'set', port, 'up']);
    await ns.exec(['ip', 'addr', 'add', `${address}/${this.lan.prefixLen}`, 'dev', 'eth0']);
    await ns.exec(['ip', 'link', 'set', 'eth0', 'up']);
    await ns.exec(['ip', 'route', 'add', 'default', 'via', this.lan.gateway]);
  }

  /**
   * Gives the router another NAT kind in place (e.g. a network that stops blocking UDP): same
   * addresses, new ruleset. Only between kinds without a carrier or router daemons.
   */
  async changeKind(kind: RouterKind): Promise<void> {
    if (this.carrier || kind.carrier || this.servicesStarted || kind.startServices)
      throw new Error(`site ${this.name}: only plain NAT kinds can be swapped`);
    if (kind.lan !== this.kind.lan) throw new Error(`site ${this.name}: ${kind.name} needs another LAN plan`);
    this.kind = kind;
    await this.applyRules();
  }

  /**
   * Moves a device of another site onto this site's LAN (roaming between networks): its old link
   * goes away (as when a laptop leaves a Wi-Fi), then a new eth0 on this LAN gets the next address
   * and the default route. Returns the device as it is now (same namespace, new address and site).
   */
  async adoptDevice(device: Device): Promise<Device> {
    if (device.site === this) throw new Error(`${device.name} is already on site ${this.name}`);
    if (this.devices.has(device.name))
      throw new Error(`site ${this.name} already has a device ${device.name}`);
    const index = this.devices.size + this.adopted++;
    const address = this.lan.device(index);
    await device.ns.exec(['ip', 'link', 'del', 'eth0']);
    device.site.devices.delete(device.name);
    await this.plugIn(device.ns, index, address);
    const moved = new Device(device.name, device.ns, address, this);
    this.devices.set(device.name, moved);
    if (!this.servicesStarted) await this.applyRules();
    return moved;
  }

  /**
   * Moves the site to a new public address (roaming). Changes the carrier's WAN behind CGNAT,
   * else the router's. Removing the old address flushes its masquerade conntrack entries.
   */
  async setPublicAddress(address: string): Promise<void> {
    const ns = this.carrier ?? this.router;
    const old = this.publicAddress;
    // Without promotion, deleting the old (primary) address would take the new one with it.
    await ns.sysctl(`net.ipv4.conf.${WAN_IF}.promote_secondaries`, 1);
    await ns.exec(['ip', 'addr', 'add', `${address}/${CORE_PREFIX_LEN}`, 'dev', WAN_IF]);
    await ns.exec(['ip', 'addr', 'del', `${old}/${CORE_PREFIX_LEN}`, 'dev', WAN_IF]);
    await ns.exec(['ip', 'route', 'replace', 'default', 'via', CORE_GATEWAY]);
    if (this.carrier && this.kind.carrier) {
      this.carrierWan = address;
      await this.carrier.nft(`flush ruleset\n${this.kind.carrier.ruleset(address)}`);
    } else {
      this.wanAddress = address;
    }
    if (this.kind.lan === 'public') await this.lab.internet.route(this.lan.prefix, address);
    await this.applyRules();
  }

  /** Starts the router kind's daemons (once, after the initial devices). */
  async startServices(host: RouterServiceHost): Promise<void> {
    if (!this.kind.startServices || this.servicesStarted) return;
    this.servicesStarted = true;
    await this.kind.startServices(this.router, host, this.context());
  }

  private context(): RouterContext {
    const devices = new Map([...this.devices].map(([n, d]) => [n, d.address]));
    return { wanAddress: this.wanAddress, lanPrefix: this.lan.prefix, devices };
  }

  /** Replaces the router's whole ruleset atomically. */
  async applyRules(): Promise<void> {
    const rules = this.kind.ruleset(this.context());
    try {
      await this.router.nft(`flush ruleset\n${rules}`);
    } catch (err) {
      throw new Error(
        `nftables rules of ${this.kind.name} router ${this.name} rejected:\n${rules}\n${String(err)}`,
      );
    }
  }
}
