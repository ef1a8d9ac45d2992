import {
  type AdvertiseMessage,
  BROKER_FEATURES,
  type ClientMessage,
  type NetinfoMessage,
  type PathReportMessage,
  type PathStateMessage,
  type PathWantMessage,
} from '@trellis/proto';

/** What this device tells every broker it connects to and keeps true: its latest of each is sent again on every connection. */
export type Announcement = Extract<ClientMessage, { type: 'endpoints' }> | NetinfoMessage | AdvertiseMessage;
/** Reports of the moment: dropped while disconnected (the path logic repeats what still matters). */
export type PathMessage = PathReportMessage | PathWantMessage | PathStateMessage;

/** Message types a broker takes only when its challenge lists the feature (an older one closes on them). */
const NEEDS_FEATURE: Partial<Record<ClientMessage['type'], string>> = {
  'path-state': BROKER_FEATURES.pathState,
  advertise: BROKER_FEATURES.routes,
};

/**
 * The control client's outgoing state messages: remembered, sent at once on a ready connection and
 * again after each authentication, never to a broker that does not take them.
 */
export class ControlAnnouncements {
  private readonly latest = new Map<Announcement['type'], Announcement>();

  constructor(
    private readonly send: (msg: ClientMessage) => void,
    /** The ready connection's broker features; null while not ready. */
    private readonly features: () => ReadonlySet<string> | null,
  ) {}

  set(msg: Announcement): void {
    this.latest.set(msg.type, msg);
    this.deliver(msg);
  }

  /** A path message goes out only now, if it can. */
  sendNow(msg: PathMessage): void {
    this.deliver(msg);
  }

  /** A connection became ready: everything remembered goes to it. */
  replay(): void {
    for (const msg of this.latest.values()) this.deliver(msg);
  }

  private deliver(msg: ClientMessage): void {
    const features = this.features();
    if (!features) return;
    const needs = NEEDS_FEATURE[msg.type];
    if (needs === undefined || features.has(needs)) this.send(msg);
  }
}
