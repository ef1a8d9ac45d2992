import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from './exec';
import { addBridge, disableBridgeNetfilter } from './internet';
import type { Lab } from './lab';
import type { LabProcess } from './lab-process';
import { checkIfName } from './names';
import type { Namespace } from './namespace';
import type { Device } from './site';

/**
 * Gateways in the lab (issue 14): a LAN segment behind one or more site devices (where agents run)
 * with hosts that run no agent, and a "whoami" HTTP server on the lab internet for exit nodes.
 */

/** The interface a gateway device gets on a LAN segment (its eth0 stays on the site's LAN). */
export const GATEWAY_LAN_IF = 'lan0';
/** The mesh's address space: a LAN host routes it via a gateway when the gateway does not masquerade. */
export const OVERLAY_CIDR = '100.64.0.0/10';

/** A machine on a LAN segment without an agent: its namespace, eth0 on the segment's switch. */
export class LanHost {
  constructor(
    readonly name: string,
    readonly ns: Namespace,
    readonly address: string,
    readonly segment: LanSegment,
  ) {}

  /** For a gateway that does not masquerade (site-to-site): mesh addresses are reached through it. */
  async routeOverlayVia(gateway: Device): Promise<void> {
    await this.ns.exec(['ip', 'route', 'replace', OVERLAY_CIDR, 'via', this.segment.gatewayAddress(gateway)]);
  }
}

/**
 * One LAN segment, 192.168.N.0/24: a switch namespace whose bridge joins the gateways' `lan0`
 * (addresses .1, .2, … in attach order) and the LAN hosts (from .100, default route via the first
 * gateway, so replies come back). Several gateways on one segment serve the same prefix (failover).
 * Segments are separate switches, so two of them may use the same N: two sites whose LANs overlap.
 */
export class LanSegment {
  readonly prefix: string;
  private readonly gateways = new Map<Device, string>();
  private readonly hosts = new Map<string, LanHost>();
  private ports = 0;

  private constructor(
    private readonly lab: Lab,
    readonly name: string,
    readonly index: number,
    readonly switchNs: Namespace,
  ) {
    this.prefix = `192.168.${index}.0/24`;
  }

  /**
   * `index` picks the /24 (192.168.index.0/24). Segments of one lab may share it (overlapping LANs
   * of two sites); `name` must be unique, it names the namespaces.
   */
  static async create(lab: Lab, name: string, index: number): Promise<LanSegment> {
    if (!Number.isInteger(index) || index < 1 || index > 254)
      throw new Error(`LAN index ${index} outside 1..254`);
    const sw = await lab.addNamespace(`${name}-sw`);
    await addBridge(sw, 'br0');
    await sw.exec(['ip', 'link', 'set', 'br0', 'up']);
    await disableBridgeNetfilter(sw);
    return new LanSegment(lab, name, index, sw);
  }

  /** Address `n` of the segment (192.168.index.n). */
  address(n: number): string {
    return `192.168.${this.index}.${n}`;
  }

  /**
   * Plugs `device` into the segment as a gateway: `lan0` with the next gateway address. IP
   * forwarding is left as it is: turning it on is the agent's job once it serves a route.
   */
  async attachGateway(device: Device): Promise<string> {
    if (this.gateways.has(device)) throw new Error(`${device.name} is already on LAN ${this.name}`);
    const address = this.address(this.gateways.size + 1);
    await this.plug(device.ns, GATEWAY_LAN_IF, address);
    this.gateways.set(device, address);
    return address;
  }

  /** The gateway's address on this segment. */
  gatewayAddress(device: Device): string {
    const a = this.gateways.get(device);
    if (!a) throw new Error(`${device.name} is not a gateway of LAN ${this.name}`);
    return a;
  }

  /** A host without an agent; its default route goes via the first attached gateway. */
  async addHost(name: string): Promise<LanHost> {
    if (this.hosts.has(name)) throw new Error(`LAN ${this.name} already has a host ${name}`);
    const first = [...this.gateways.values()][0];
    if (!first) throw new Error(`LAN ${this.name}: attach a gateway before adding hosts`);
    const address = this.address(100 + this.hosts.size);
    const ns = await this.lab.addNamespace(`${this.name}-${name}`);
    await this.plug(ns, 'eth0', address);
    await ns.exec(['ip', 'route', 'add', 'default', 'via', first]);
    const host = new LanHost(name, ns, address, this);
    this.hosts.set(name, host);
    return host;
  }

  host(name: string): LanHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`LAN ${this.name} has no host ${name}`);
    return h;
  }

  /** Takes the gateway's LAN interface down or up (a pulled cable, from the gateway's side). */
  async setGatewayLink(device: Device, up: boolean): Promise<void> {
    this.gatewayAddress(device);
    await device.ns.exec(['ip', 'link', 'set', GATEWAY_LAN_IF, up ? 'up' : 'down']);
  }

  private async plug(ns: Namespace, ifname: string, address: string): Promise<void> {
    this.ports += 1;
    const port = checkIfName(`p${this.ports}`);
    await this.switchNs.exec([
      ...['ip', 'link', 'add', port, 'netns', this.switchNs.name, 'type', 'veth'],
      ...['peer', 'name', checkIfName(ifname), 'netns', ns.name],
    ]);
    await this.switchNs.exec(['ip', 'link', 'set', port, 'master', 'br0']);
    await this.switchNs.exec(['ip', 'link', 'set', port, 'up']);
    await ns.exec(['ip', 'addr', 'add', `${address}/24`, 'dev', ifname]);
    await ns.exec(['ip', 'link', 'set', ifname, 'up']);
  }
}

/**
 * An HTTP server that answers every request with the source address it saw (`{"from": IP}`) and
 * logs `req IP TIME` per request, so a test can tell which address a client's traffic left from.
 */
const WHOAMI_JS = `
const http = require('node:http');
const [host, port] = [process.argv[2], Number(process.argv[3])];
const srv = http.createServer((req, res) => {
  const from = req.socket.remoteAddress.replace(/^::ffff:/, '');
  console.log('req ' + from + ' ' + Date.now());
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ from }));
});
srv.listen(port, host, () => console.log('whoami listening ' + host + ':' + port));
`;

export class WhoamiServer {
  constructor(
    readonly process: LabProcess,
    readonly address: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://${this.address}:${this.port}/`;
  }

  /** Sources of the requests it received at or after `since` (ms since the epoch). */
  requestsFrom(since = 0): string[] {
    const out: string[] = [];
    for (const l of this.process.lines) {
      const m = /^req (\S+) (\d+)$/.exec(l);
      if (m && Number(m[2]) >= since) out.push(m[1]!);
    }
    return out;
  }
}

export async function startWhoami(
  lab: Lab,
  ns: Namespace,
  address: string,
  port = 80,
): Promise<WhoamiServer> {
  const path = join(lab.runDir, 'whoami.js');
  writeFileSync(path, WHOAMI_JS);
  const p = ns.spawn('node', [path, address, String(port)], { logName: `whoami-${address}-${port}` });
  await p.waitForLine(/^whoami listening /, 15_000);
  return new WhoamiServer(p, address, port);
}

/**
 * `curl` from `ns`: the address the whoami server saw, or null when the request failed. A URL with
 * a name resolves through the namespace's resolver (as any program's would).
 */
export async function whoami(ns: Namespace, url: string, timeoutS = 3): Promise<string | null> {
  try {
    const { stdout } = await exec(ns.name, ['curl', '-s', '--noproxy', '*', '-m', String(timeoutS), url], {
      timeoutMs: (timeoutS + 10) * 1000,
    });
    const body = JSON.parse(stdout) as { from?: unknown };
    return typeof body.from === 'string' ? body.from : null;
  } catch {
    return null;
  }
}
