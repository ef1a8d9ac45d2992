import type { NetinfoMessage } from '@trellis/proto';

/** What the broker hears of this device's NAT: its port mapping and relay round trips, sent when they changed. */
export class NetinfoReport {
  /** The gateway's mapping of our listen port (UPnP-IGD / NAT-PMP / PCP), if any. */
  portMapped: string | null = null;
  /** Round trip to each relay with a TCP listener (relay id → ms). */
  private relayRtts: Record<string, number> = {};
  private last = '';

  constructor(private readonly send: (msg: NetinfoMessage) => void) {}

  setPortMapped(endpoint: string | null): void {
    this.portMapped = endpoint;
    this.flush();
  }

  setRelayRtts(rtts: Record<string, number>): void {
    this.relayRtts = rtts;
    this.flush();
  }

  /** Sends the report unless the broker already has this one. */
  flush(): void {
    const msg: NetinfoMessage = { type: 'netinfo' };
    if (this.portMapped) msg.portMapped = this.portMapped;
    if (Object.keys(this.relayRtts).length > 0) msg.relayRttMs = this.relayRtts;
    const key = JSON.stringify(msg);
    if (key === this.last) return;
    this.last = key;
    this.send(msg);
  }

  /** The session ended: nothing is known any more. */
  reset(): void {
    this.portMapped = null;
    this.relayRtts = {};
    this.last = '';
  }
}
