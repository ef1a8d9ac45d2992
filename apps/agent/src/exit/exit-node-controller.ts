import type { GatewayStatus } from '@trellis/proto';
import type { Logger } from 'pino';
import type { WireGuardBackend } from '../wireguard/backend';
import { EXIT_FWMARK, type ExitRouting, type ExitRoutingPlan } from './exit-routing';

export interface ExitNodeInput {
  interfaceName: string;
  /** prefs.exitNode as the user wrote it; null: no exit node. */
  wanted: string | null;
  /** The peer it resolved to; null when not found, not an exit node, or not allowed by policy. */
  chosen: { id: string; name: string; address: string } | null;
  /** The route selector gave the chosen peer EXIT_ROUTE and its tunnel is alive. */
  active: boolean;
  allowLan: boolean;
  /** Addresses that must stay outside the tunnel: broker IPs, relays, reflectors. */
  bypass: string[];
  /** Why `chosen` is null, for the status line (absent: "is not an exit node"). */
  unavailable?: 'not-found' | 'not-exit-node' | 'not-allowed' | 'replaced' | 'key-changed';
}

/** Where names outside the mesh go while an exit node is wanted (MeshDns implements it). */
export interface ExitDnsHook {
  /**
   * null: no exit node (the device's own resolvers); `{ address: null }`: wanted but unusable, so
   * other names fail instead of leaking; else they are resolved by the exit node at `address`.
   */
  followExitNode(exit: { address: string | null } | null): Promise<void>;
}

export interface ExitNodeControllerDeps {
  routing: ExitRouting;
  /** For the mark on its own UDP, and to re-mark a WireGuard that was re-created. */
  wireguard: Pick<WireGuardBackend, 'getState' | 'apply' | 'onRecreated'>;
  dns: ExitDnsHook | null;
  logger: Logger;
}

type ExitState =
  | { kind: 'none' }
  | { kind: 'active'; name: string; allowLan: boolean }
  | { kind: 'blocked'; name: string; allowLan: boolean; reason: string };

const HOW_TO_STOP = "you run `trellis set --exit-node ''`";

/**
 * The client side of an exit node: while one is wanted, internet traffic goes into the mesh
 * interface and names outside the mesh to the exit node, whether or not the node is up (fail
 * closed: with it gone, nothing reaches the ISP in clear). `apply` never throws: a failure shows in
 * `status` and the next `apply` tries again.
 */
export class ExitNodeController {
  private state: ExitState = { kind: 'none' };
  /** Routing, mark or DNS may be in place (or a crashed run's): `remove` has work to do. */
  private dirty = true;
  private markSet = false;
  private last: ExitNodeInput | null = null;
  private queue: Promise<void> = Promise.resolve();
  private lastError: string | null = null;
  private readonly log: Logger;

  constructor(private readonly deps: ExitNodeControllerDeps) {
    this.log = deps.logger.child({ part: 'exit-node' });
    // A re-created WireGuard has lost its mark: its own packets would loop into the tunnel.
    deps.wireguard.onRecreated(() => {
      const last = this.last;
      if (last) void this.apply(last);
    });
  }

  apply(input: ExitNodeInput): Promise<void> {
    this.last = input;
    return this.serial(() => (input.wanted === null ? this.clear() : this.route(input, input.wanted)));
  }

  remove(): Promise<void> {
    this.last = null;
    return this.serial(() => this.clear());
  }

  status(): GatewayStatus['exitNode'] {
    const s = this.state;
    if (s.kind === 'none') return null;
    if (s.kind === 'active') return { name: s.name, state: 'active', allowLan: s.allowLan };
    return { name: s.name, state: 'blocked', allowLan: s.allowLan, reason: s.reason };
  }

  private serial(job: () => Promise<void>): Promise<void> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async route(input: ExitNodeInput, wanted: string): Promise<void> {
    const plan: ExitRoutingPlan = {
      interfaceName: input.interfaceName,
      fwmark: EXIT_FWMARK,
      allowLan: input.allowLan,
      bypass: [...new Set(input.bypass)].sort(),
    };
    this.dirty = true;
    try {
      // Names first (MeshDns never throws): they stop going to the LAN even if routing fails.
      await this.deps.dns?.followExitNode({ address: input.chosen?.address ?? null });
      // The mark before the rules: WireGuard's own packets must never be sent into itself.
      await this.setMark(EXIT_FWMARK);
      await this.deps.routing.apply(plan);
      this.state = stateOf(input, wanted);
      this.reportError(null);
    } catch (err) {
      const message = (err as Error).message;
      this.reportError(message);
      this.state = {
        kind: 'blocked',
        name: input.chosen?.name ?? wanted,
        allowLan: input.allowLan,
        reason: `routing through exit node ${input.chosen?.name ?? wanted} could not be set up (${message}); trellisd tries again at the next change; to stop using it, ${HOW_TO_STOP.slice(4)}`,
      };
    }
  }

  private async clear(): Promise<void> {
    this.state = { kind: 'none' };
    if (!this.dirty) return;
    try {
      await this.deps.dns?.followExitNode(null);
      await this.deps.routing.remove();
      // A mark without our rules changes nothing, and a WireGuard that is gone has none left.
      if (this.markSet) await this.setMark(0).catch(() => undefined);
      this.markSet = false;
      this.dirty = false;
      this.reportError(null);
    } catch (err) {
      this.reportError((err as Error).message);
    }
  }

  private async setMark(mark: number): Promise<void> {
    const state = await this.deps.wireguard.getState();
    if ((state.fwmark ?? 0) !== mark) await this.deps.wireguard.apply({ fwmark: mark, peers: [] });
    this.markSet = mark !== 0;
  }

  private reportError(message: string | null): void {
    if (message !== null && message !== this.lastError) {
      this.log.error({ err: message }, 'exit node routing failed');
    } else if (message === null && this.lastError !== null) {
      this.log.info('exit node routing restored');
    }
    this.lastError = message;
  }
}

/** What the user sees: which node, and when blocked, why and how to get out of it. */
function stateOf(input: ExitNodeInput, wanted: string): ExitState {
  const { chosen, allowLan } = input;
  if (chosen && input.active) return { kind: 'active', name: chosen.name, allowLan };
  const until = `internet traffic is blocked until it returns or ${HOW_TO_STOP}`;
  if (chosen) {
    return {
      kind: 'blocked',
      name: chosen.name,
      allowLan,
      reason: `exit node ${chosen.name} is offline: ${until}`,
    };
  }
  if (input.unavailable === 'replaced' || input.unavailable === 'key-changed') {
    const what =
      input.unavailable === 'replaced'
        ? `it left the mesh and another device is now ${wanted}`
        : 'its key changed without a proof this device accepts';
    return {
      kind: 'blocked',
      name: wanted,
      allowLan,
      reason: `exit node ${wanted} is not the device you chose (${what}): internet traffic is blocked until you choose it again with \`trellis set --exit-node ${wanted}\` or ${HOW_TO_STOP}`,
    };
  }
  const why =
    input.unavailable === 'not-allowed'
      ? `the policy does not let this device use ${wanted}`
      : input.unavailable === 'not-found'
        ? `no device named ${wanted} is in this mesh`
        : `no device named ${wanted} is an exit node`;
  return {
    kind: 'blocked',
    name: wanted,
    allowLan,
    reason: `${why}: internet traffic is blocked until it is one you may use or ${HOW_TO_STOP}`,
  };
}
