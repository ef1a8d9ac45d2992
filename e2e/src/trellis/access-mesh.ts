import type { Namespace } from '../namespace';
import { waitFor } from '../wait';
import {
  type DeviceSample,
  DeviceWatcher,
  droppedPackets,
  firstSampleTimes,
  meshAppliedAt,
  trellisTable,
} from './access';
import type { AgentRunner } from './agent';
import type { BrokerRunner } from './broker';

/** An enrolled device as the access tests know it. */
export interface AccessMember {
  agent: AgentRunner;
  overlay: string;
  /** Its WireGuard public key (base64, as `wg show` prints it). */
  key: string;
}

/** A timed expectation: on `viewer`'s samples, `check` must come to hold. */
export interface ViewerCheck {
  viewer: string;
  check: (s: DeviceSample) => boolean;
}

/**
 * The devices of an access-control scenario and what the tests ask of them: probes that must pass
 * (retried while a path is made), probes that must be dropped by the destination's own nftables,
 * and changes timed on every affected device. Failures throw errors that describe every device's
 * WireGuard peers and firewall sets (by device name).
 */
export class AccessMesh {
  readonly agents = new Map<string, AgentRunner>();
  readonly members = new Map<string, AccessMember>();

  constructor(
    private readonly broker: () => BrokerRunner,
    /** How long an allowed probe may take: the first one of a pair waits for its path. */
    private readonly pathTimeoutMs = 90_000,
  ) {}

  add(agent: AgentRunner): void {
    this.agents.set(agent.name, agent);
  }

  agent(name: string): AgentRunner {
    const a = this.agents.get(name);
    if (!a) throw new Error(`no device ${name}`);
    return a;
  }

  ns(name: string): Namespace {
    return this.agent(name).device.ns;
  }

  member(name: string): AccessMember {
    const m = this.members.get(name);
    if (!m) throw new Error(`${name} is not enrolled`);
    return m;
  }

  /** `trellis up` with `setupKey`, then waits until it is connected. */
  async enroll(name: string, setupKey: string): Promise<AccessMember> {
    const a = this.agent(name);
    const broker = this.broker();
    await a.up({ broker: broker.url, setupKey, caFile: broker.certFile });
    const st = await a.waitConnected();
    const m = { agent: a, overlay: st.self.address, key: st.interface.publicKey! };
    this.members.set(name, m);
    return m;
  }

  /** `wg show IF peers` in the device's namespace. */
  async wgPeers(name: string): Promise<string[]> {
    const a = this.agent(name);
    const { stdout } = await a.device.ns.exec(['wg', 'show', a.ifname, 'peers']);
    return stdout.split('\n').filter((l) => l.trim() !== '');
  }

  /** Every enrolled device's WireGuard peers and firewall sets, by device name. */
  async describe(): Promise<string> {
    const byKey = new Map([...this.members].map(([n, x]) => [x.key, n]));
    const byIp = new Map([...this.members].map(([n, x]) => [x.overlay, n]));
    const one = async (name: string) => {
      const peers = await this.wgPeers(name).catch((e: Error) => [
        `(wg failed: ${e.message.split('\n')[0]})`,
      ]);
      const t = await trellisTable(this.ns(name)).catch(() => null);
      const sets = t
        ? Object.entries(t.sets)
            .filter(([s]) => s !== 'state')
            .map(
              ([s, els]) =>
                `${s}={${els.map((e) => e.replace(/^\S+/, (ip) => byIp.get(ip) ?? ip)).join(', ')}}`,
            )
            .join(' ')
        : '(no table inet trellis)';
      return `  ${name}: wg [${peers.map((k) => byKey.get(k) ?? k.slice(0, 8)).join(', ')}] ${sets}`;
    };
    return (await Promise.all([...this.members.keys()].map(one))).join('\n');
  }

  /** The probe succeeds, retried (bounded) while the pair's path is made. */
  async expectAllowed(what: string, probe: () => Promise<boolean>): Promise<void> {
    await waitFor(probe, { timeoutMs: this.pathTimeoutMs, intervalMs: 250, what }).catch(
      async (err: Error) => {
        throw new Error(`${err.message}\n${await this.describe()}`);
      },
    );
  }

  /**
   * The probe fails and `dst`'s own `dropped` counter (table inet trellis) moved meanwhile: the
   * packets crossed the tunnel and the destination's nftables threw them away. Returns how many.
   */
  async expectDropped(dst: string, what: string, probe: () => Promise<boolean>): Promise<number> {
    const before = await droppedPackets(this.ns(dst));
    const passed = await probe();
    const after = await droppedPackets(this.ns(dst));
    if (passed || after <= before) {
      throw new Error(
        `${what}: expected it dropped by ${dst}'s nftables, got ${passed ? 'through' : 'no answer'} and ` +
          `${dst}'s dropped counter ${before} → ${after}\n${await this.describe()}`,
      );
    }
    return after - before;
  }

  /**
   * Runs `change` while a DeviceWatcher samples every viewer from inside its namespace. Each check
   * must be false before and hold within `limitMs` after; the figure is the first sample that
   * passed, in ms from the change's return (negative: in place before it returned). Prints the
   * figures; throws naming every late one. With `conntrackFrom`, samples carry that source's
   * conntrack entries.
   */
  async timeChange(
    what: string,
    limitMs: number,
    change: () => Promise<unknown>,
    checks: Record<string, ViewerCheck>,
    opts: { conntrackFrom?: string } = {},
  ): Promise<Record<string, number>> {
    const viewers = [...new Set(Object.values(checks).map((c) => c.viewer))];
    const started = await Promise.all(
      viewers.map((v) =>
        DeviceWatcher.start(this.ns(v), this.agent(v).ifname, {
          ...(opts.conntrackFrom ? { conntrackFrom: opts.conntrackFrom } : {}),
          logName: `watch-${v}-${Date.now()}`,
        }),
      ),
    );
    const byViewer = new Map(viewers.map((v, i) => [v, started[i]!]));
    try {
      const already = Object.entries(checks).filter(([, c]) => c.check(byViewer.get(c.viewer)!.latest()!));
      if (already.length > 0) {
        throw new Error(
          `${what}: already true before the change: ${already.map(([n]) => n).join(', ')}\n${await this.describe()}`,
        );
      }
      const t0 = Date.now();
      await change();
      const t1 = Date.now();
      const times = await firstSampleTimes(
        Object.fromEntries(Object.entries(checks).map(([n, c]) => [n, byViewer.get(c.viewer)!])),
        Object.fromEntries(Object.entries(checks).map(([n, c]) => [n, c.check])),
        { after: t0, from: t1, limitMs: Math.max(limitMs * 5, 30_000) },
      );
      const figures = Object.entries(times)
        .map(([n, t]) => `${n} ${t === null ? 'never' : `${t} ms`}`)
        .join(', ');
      process.stdout.write(`\n${what}: ${figures} (the command itself ran ${t1 - t0} ms)\n`);
      const late = Object.values(times).filter((t) => t === null || t > limitMs);
      if (late.length > 0) {
        throw new Error(
          `${what}: not within ${limitMs} ms everywhere (${figures})\n${await this.describe()}`,
        );
      }
      const agentTimes = viewers.map((v) => {
        const t = meshAppliedAt(this.agent(v).logLines(), t0);
        return `${v} ${t === null ? '-' : `${t - t1} ms`}`;
      });
      process.stdout.write(`  the agents' own "mesh applied" log lines: ${agentTimes.join(', ')}\n`);
      return times as Record<string, number>;
    } finally {
      await Promise.all(started.map((w) => w.stop()));
    }
  }
}
