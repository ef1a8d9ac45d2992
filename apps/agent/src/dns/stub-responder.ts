import {
  type DnsHandler,
  DnsResponder,
  questionName,
  type Response,
  type Transport,
  type Unanswered,
  ZoneAnswerer,
} from '@trellis/dns';
import type { MeshZone } from './mesh-zone';
import type { UpstreamForwarder } from './upstream-forwarder';

/**
 * The agent's stub: the account's names answered from the netmap (they work with the broker
 * down), anything else passed to the nameservers the device had before when there is a forwarder
 * (resolv.conf mode, where every query comes here), else answered as the zone's answerer does
 * (REFUSED outside the zone: with systemd-resolved only the account's domain is routed here).
 */
export class StubResponder implements DnsHandler {
  private responder: DnsResponder;
  private suffix: string;

  constructor(
    private zone: MeshZone,
    private forwarder: UpstreamForwarder | null,
    /** Whether a query comes from this device: only its own are passed upstream, never a peer's. */
    private readonly isLocal: (source: string) => boolean = () => true,
  ) {
    this.responder = new DnsResponder(new ZoneAnswerer(zone.answerer, zone.view));
    this.suffix = `.${zone.domain}`;
  }

  get domain(): string {
    return this.zone.domain;
  }

  /** A new netmap: answers change at once. */
  setZone(zone: MeshZone): void {
    this.zone = zone;
    this.responder = new DnsResponder(new ZoneAnswerer(zone.answerer, zone.view));
    this.suffix = `.${zone.domain}`;
  }

  /** The nameservers other names go to changed (the original resolv.conf was rewritten). */
  setForwarder(forwarder: UpstreamForwarder | null): void {
    this.forwarder = forwarder;
  }

  respond(msg: Buffer, source: string, transport: Transport): Response | Unanswered | Promise<Response> {
    const query = msg.length >= 12 && !(msg.readUInt16BE(2) & 0x8000); // never forward a response
    if (this.forwarder && query && this.isLocal(source) && !this.isOurs(msg)) {
      return this.forwarder.forward(msg, transport);
    }
    return this.responder.respond(msg, source, transport);
  }

  /** Whether the query asks about the account's domain (or cannot be read: the responder says why). */
  private isOurs(msg: Buffer): boolean {
    const name = questionName(msg);
    if (name === undefined) return true;
    const n = name.toLowerCase().replace(/\.$/, '');
    return n === this.zone.domain || n.endsWith(this.suffix);
  }
}
