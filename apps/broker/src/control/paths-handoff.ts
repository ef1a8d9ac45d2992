import type { Logger } from 'pino';
import type { BrokerEvent } from '../events/event-bus';
import type { PairPathDriver } from '../pair-paths/pair-path-driver';
import type { AccountHub } from './account-hub';
import type { ReflexiveForwarder } from './reflexive-forwarder';
import { RelayedPeers } from './relayed-peers';

/**
 * What a new owner of an account's pair paths learns from this instance about the devices connected
 * here: where this instance's reflectors saw them, and the peers they reach through a relay (the
 * owner takes those pairs up and claims their allocations; see RelayedPeers).
 */
export class PathsHandoff {
  readonly relayed = new RelayedPeers();

  constructor(
    private readonly instanceId: string,
    private readonly reflexive: ReflexiveForwarder,
    private readonly publish: (event: BrokerEvent) => void,
    private readonly logger: Logger,
  ) {}

  /** This instance became the owner: its new driver hears it directly. */
  ownerHere(accountId: string, hub: AccountHub, driver: PairPathDriver): void {
    let relayed = 0;
    for (const id of hub.sessions.keys()) {
      const seen = this.reflexive.seenHere(id);
      if (seen) driver.reflexiveSeen(id, seen);
      for (const want of this.wantsOf(hub, id)) {
        driver.want(want.from, want.peerId, true);
        relayed++;
      }
    }
    if (relayed > 0)
      this.logger.info({ accountId, relayed }, 'pair paths owner here: relayed pairs taken up');
  }

  /**
   * Another instance announced itself the owner. Every instance sees the bus's events in one order,
   * so one that sees another owner by now saw the change the announcer will see too: it answers the
   * owner that comes next (which announces itself), not this one.
   */
  ownerThere(accountId: string, hub: AccountHub, owner: string): void {
    if (hub.paths?.owner() !== owner) return;
    let relayed = 0;
    for (const id of hub.sessions.keys()) {
      this.reflexive.forward(id, true);
      for (const input of this.wantsOf(hub, id)) {
        this.publish({ kind: 'pair-input', accountId, input });
        relayed++;
      }
    }
    if (relayed > 0)
      this.logger.info({ accountId, owner, relayed }, 'relayed pairs sent to the pair paths owner');
  }

  /**
   * This instance's bus was away (and these accounts are reloaded): an owner's announcement, inputs
   * forwarded to the owner and its frames to devices here may be lost. The owner announces itself
   * again (every instance answers); any other instance sends the owner what an answer holds. Wants
   * for pairs the owner still has change nothing but a `relay` to both sides again.
   */
  resync(accountIds: readonly string[], hubs: ReadonlyMap<string, AccountHub>): void {
    for (const accountId of accountIds) {
      const hub = hubs.get(accountId);
      const owner = hub?.paths?.owner();
      if (!hub || !owner) continue;
      if (owner === this.instanceId) this.publish({ kind: 'paths-owner', accountId, instance: owner });
      else this.ownerThere(accountId, hub, owner);
    }
    this.logger.info({ accounts: accountIds.length }, 'event bus back: pair paths owners told again');
  }

  /** A device's relayed peers that its netmap still lets it see, as wants. */
  private wantsOf(hub: AccountHub, id: string) {
    return this.relayed.wants(id, (peer) => hub.netmap.canSee(id, peer));
  }
}
