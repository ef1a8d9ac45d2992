import { type DeviceState, isVirtual, type PairInput } from '@trellis/proto';
import type { AccountNetmap } from '../domain/netmap-builder';
import type { PairPathDriver } from '../pair-paths/pair-path-driver';

export interface AccountPathsIo {
  instanceId: string;
  /** A driver for this account's pair paths (made when this instance becomes the owner). */
  makeDriver(): PairPathDriver;
  /** Sends an input of one of this instance's devices to the owner (cluster-events `pair-input`). */
  forward(input: PairInput): void;
  /**
   * This instance became the owner: its driver knows the online devices, not what reflectors saw
   * (the ControlHub tells it what this instance's saw and asks the others: `paths-owner`).
   */
  ownerHere(driver: PairPathDriver): void;
}

/** The instance part of a control connection id (`<instance>:<uuid>`). */
export function instanceOf(connection: string): string {
  const colon = connection.indexOf(':');
  return colon < 0 ? connection : connection.slice(0, colon);
}

/**
 * Who decides one account's pair paths, and, while that is this instance, its driver. The owner is
 * the lowest instance id among those holding a connected device of the account: every instance
 * computes the same from the netmap, and the owner always holds the account's hub. The driver is
 * fed from the netmap (devices online on any instance), so a pair split across instances is one
 * pair; inputs of devices held elsewhere arrive forwarded.
 */
export class AccountPaths {
  private driver: PairPathDriver | null = null;
  /** Online devices per holding instance (kept per change, so finding the owner scans no devices). */
  private readonly onlineAt = new Map<string, number>();

  constructor(
    private readonly netmap: AccountNetmap,
    private readonly io: AccountPathsIo,
  ) {
    for (const state of netmap.states()) this.count(state, 1);
    this.sync();
  }

  /** The owner's driver when this instance is the owner. */
  get active(): PairPathDriver | null {
    return this.driver;
  }

  owner(): string | null {
    let min: string | null = null;
    for (const instance of this.onlineAt.keys()) if (min === null || instance < min) min = instance;
    return min;
  }

  /** A device changed in the netmap (already applied): `before` is its previous state. */
  changed(before: DeviceState | undefined, beforeView: string | undefined): void {
    const after = before && this.netmap.get(before.id);
    if (!after) return;
    this.count(before, -1);
    this.count(after, 1);
    const d = this.driver;
    const view = this.netmap.punchView(after.id);
    if (d && view) {
      const again = after.connection && after.connection !== before.connection;
      if (after.online && (!before.online || again)) d.online(view);
      else if (before.online && !after.online) d.offline(after.id);
      else if (after.online && beforeView !== JSON.stringify(view)) d.changed(view);
    }
    this.sync();
  }

  /** A device new to the netmap (already applied). */
  added(state: DeviceState): void {
    this.count(state, 1);
    const view = this.netmap.punchView(state.id);
    if (this.driver && state.online && view) this.driver.online(view);
    this.sync();
  }

  /** A device left the account (`before`: its last state). */
  removed(before: DeviceState): void {
    // A virtual device is in no pair: nothing to forget.
    if (isVirtual(before)) return;
    this.count(before, -1);
    this.driver?.removed(before.id);
    this.sync();
  }

  /** An input about paths: applied by the owner; a local device's is forwarded to it otherwise. */
  input(input: PairInput, local: boolean): void {
    const d = this.driver;
    if (!d) {
      if (local && this.owner() !== null) this.io.forward(input);
      return;
    }
    if (input.kind === 'want') d.want(input.from, input.peerId, input.relayed);
    else if (input.kind === 'path-report') d.pathReport(input.from, input.report);
    else d.reflexiveSeen(input.id, input.endpoints);
  }

  dispose(): void {
    this.driver?.dispose();
    this.driver = null;
  }

  private count(state: DeviceState, by: 1 | -1): void {
    if (!state.online || !state.connection) return;
    const instance = instanceOf(state.connection);
    const n = (this.onlineAt.get(instance) ?? 0) + by;
    if (n > 0) this.onlineAt.set(instance, n);
    else this.onlineAt.delete(instance);
  }

  /** Takes up or gives up the driver when the owner changed. */
  private sync(): void {
    const mine = this.owner() === this.io.instanceId;
    if (mine && !this.driver) {
      const d = this.io.makeDriver();
      this.driver = d;
      for (const state of this.netmap.states()) {
        const view = state.online ? this.netmap.punchView(state.id) : undefined;
        if (view) d.online(view);
      }
      this.io.ownerHere(d);
    } else if (!mine && this.driver) {
      this.dispose();
    }
  }
}
