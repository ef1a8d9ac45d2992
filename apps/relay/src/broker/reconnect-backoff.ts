import { Backoff } from '@trellis/proto';

/** The broker link's backoff: proto's jittered Backoff, 0.5 s doubling to 30 s by default. */
export class ReconnectBackoff extends Backoff {
  constructor(initialMs = 500, maxMs = 30_000, random: () => number = Math.random) {
    super({ initialMs, maxMs, random });
  }
}
