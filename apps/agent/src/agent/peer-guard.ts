import type { FirewallBackend, FirewallCounters, InboundPolicy } from '@trellis/firewall';
import type { GuardStatus, NetmapPeer } from '@trellis/proto';
import type { Logger } from 'pino';
import { type Netmap, rulesOf } from '../control/netmap-tracker';
import type { KeyChangeRecord, PeerPins, Refusal } from '../trust/peer-pins';
import type { GuardEvents } from './agent-metrics';
import type { ReachableVirtual } from './virtual-devices';

type LastApply = NonNullable<GuardStatus['firewall']>['lastApply'];

/**
 * The agent's own checks on what the broker says: peers whose key contradicts a pin are left out
 * (of WireGuard, the path logic and the firewall), and the firewall lets in from each remaining
 * peer only what the policy opens. Outlives sessions: pins and the firewall belong to the device.
 */
export class PeerGuard {
  private lastApply: LastApply = null;
  private lastError: string | null = null;
  private reported = new Map<string, string>();

  constructor(
    private readonly pins: PeerPins | null,
    private readonly firewall: FirewallBackend | null,
    private readonly log: Logger,
    private readonly events?: GuardEvents,
    /** The OS's name of the mesh interface (macOS: the utun WireGuard got); default: the same. */
    private readonly interfaceOf: (name: string) => string = (name) => name,
  ) {}

  /** The netmap's peers this device trusts: new ones pinned, proven key changes accepted. */
  trusted(peers: readonly NetmapPeer[]): NetmapPeer[] {
    const pins = this.pins;
    if (!pins) return [...peers];
    const out: NetmapPeer[] = [];
    for (const peer of peers) {
      const verdict = pins.check(peer);
      if (verdict.kind === 'refused') continue;
      pins.accept(peer, verdict);
      if (verdict.kind === 'rotated' || verdict.kind === 'rekeyed') {
        this.events?.keyChanged(verdict.kind);
        this.log.warn(
          { peer: peer.name, address: peer.address, previousKey: verdict.previousKey, key: peer.publicKey },
          verdict.kind === 'rotated'
            ? 'peer rotated its key (signed by the old one)'
            : 'peer re-keyed by an admin',
        );
      }
      out.push(peer);
    }
    pins.pruneRefusals(peers.map((p) => p.address));
    this.reportRefusals(pins.refusals());
    return out;
  }

  /** Each new refusal is logged once, as an error: the broker (or someone in between) swapped a key. */
  private reportRefusals(refusals: readonly Refusal[]): void {
    const now = new Map(refusals.map((r) => [r.address, r.offeredKey]));
    for (const r of refusals) {
      if (this.reported.get(r.address) === r.offeredKey) continue;
      this.events?.refused();
      this.log.error(
        {
          peer: r.name,
          address: r.address,
          pinnedKey: r.pinnedKey,
          offeredKey: r.offeredKey,
          reason: r.reason,
        },
        'REFUSED a peer whose key does not match its pin: it is left out of the mesh',
      );
    }
    this.reported = now;
  }

  /** Writes the pins accepted since the last call. */
  flush(): Promise<void> {
    return this.pins?.flush() ?? Promise.resolve();
  }

  /**
   * Makes the firewall let in from each trusted peer, and each virtual device reached through one
   * (its gateway forwards it under its own address), what the policy opens, nothing else. Throws
   * when the ruleset cannot be loaded: the caller must then not add peers to WireGuard.
   */
  async enforce(
    interfaceName: string,
    netmap: Netmap,
    trusted: readonly NetmapPeer[],
    /** Peers that use this device as their exit node: they may ask its DNS stub too. */
    dnsFrom: readonly string[] = [],
    virtual: readonly ReachableVirtual[] = [],
  ): Promise<void> {
    const firewall = this.firewall;
    if (!firewall) return;
    const policy: InboundPolicy = {
      interfaceName: this.interfaceOf(interfaceName),
      selfAddress: netmap.self.address,
      peers: [
        ...trusted.map((p) => ({ address: p.address, allow: rulesOf(netmap, p.id).in })),
        ...virtual.map((v) => ({ address: v.address, allow: rulesOf(netmap, v.id).in })),
      ],
      ...(dnsFrom.length > 0 ? { dnsFrom } : {}),
    };
    const started = performance.now();
    try {
      const result = await firewall.apply(policy);
      this.events?.firewallApplied(result.mode, (performance.now() - started) / 1000, result.cut);
      this.lastError = null;
      if (result.changed || this.lastApply === null) {
        this.lastApply = {
          at: new Date().toISOString(),
          mode: result.mode,
          cut: result.cut,
          ...(result.cutError ? { cutError: result.cutError } : {}),
        };
      }
      if (result.cutError) this.log.warn({ err: result.cutError }, 'cutting forbidden flows failed');
      if (result.changed) {
        this.log.info({ mode: result.mode, peers: policy.peers.length, cut: result.cut }, 'firewall applied');
      }
    } catch (err) {
      this.events?.firewallFailed();
      this.lastError = (err as Error).message;
      throw new Error(`firewall: ${this.lastError}`);
    }
  }

  /** What the firewall counted on the mesh interface (null with no firewall). */
  firewallCounters(): Promise<FirewallCounters | null> {
    return this.firewall?.counters() ?? Promise.resolve(null);
  }

  /** Takes the firewall's rules away (the mesh interface is gone). */
  async remove(): Promise<void> {
    await this.firewall?.remove();
    this.lastApply = null;
  }

  status(): GuardStatus {
    return {
      refused: this.pins?.refusals() ?? [],
      keyChanges: (this.pins?.keyChanges() ?? []).map(keyChangeStatus),
      firewall: this.firewall
        ? { backend: this.firewall.name, lastApply: this.lastApply, lastError: this.lastError }
        : null,
    };
  }
}

function keyChangeStatus(c: KeyChangeRecord): GuardStatus['keyChanges'][number] {
  return { ...c };
}
