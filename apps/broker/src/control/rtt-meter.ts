import type { WebSocket } from 'ws';

/**
 * Smoothed WebSocket ping/pong round trip of one connection. One ping in flight at a time; the
 * peer's WebSocket library answers it, so no application support is needed.
 */
export class RttMeter {
  private smoothed: number | null = null;
  private sentAt: number | null = null;

  constructor(
    private readonly ws: WebSocket,
    private readonly now: () => number = () => performance.now(),
  ) {
    ws.on('pong', () => this.onPong());
  }

  /** Sends a ping unless one is outstanding. */
  measure(): void {
    if (this.sentAt !== null || this.ws.readyState !== this.ws.OPEN) return;
    this.sentAt = this.now();
    this.ws.ping();
  }

  rttMs(): number | null {
    return this.smoothed;
  }

  private onPong(): void {
    if (this.sentAt === null) return;
    const sample = this.now() - this.sentAt;
    this.sentAt = null;
    this.smoothed = this.smoothed === null ? sample : 0.7 * this.smoothed + 0.3 * sample;
  }
}
