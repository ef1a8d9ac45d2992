import type { ChildProcess } from 'node:child_process';
import { next } from '../child-ipc';
import type { ClientReply } from './messages';

export interface FanOut {
  /** Per receiving device and round: ms from the changer sending `endpoints` to the delta carrying it. */
  times: number[];
  /** The same, only devices on another instance than the changer. */
  remote: number[];
  missing: number;
}

let seq = 0;

/**
 * `rounds` endpoint changes, each by the next of `changers` (device indexes, on `brokerOf`'s
 * instance): the time until every other connected device has the delta with the new endpoint.
 */
export async function measureFanOut(
  clients: ChildProcess,
  changers: Array<{ index: number; broker: number }>,
  rounds: number,
): Promise<FanOut> {
  const out: FanOut = { times: [], remote: [], missing: 0 };
  for (let r = 0; r < rounds; r++) {
    const changer = changers[r % changers.length]!;
    seq++;
    // A documentation address (TEST-NET-2) and port no other round uses: the marker to look for.
    const marker = `198.51.100.${(seq % 250) + 1}:${20000 + seq}`;
    clients.send({ cmd: 'expect', id: seq, marker, exclude: changer.index, timeoutMs: 30_000 });
    await next<ClientReply, 'armed'>(clients, 'armed');
    const arrivals = next<ClientReply, 'arrivals'>(clients, 'arrivals');
    // Handled below; this keeps its rejection (a child's error) from counting as unhandled meanwhile.
    arrivals.catch(() => {});
    const sent = next<ClientReply, 'sent'>(clients, 'sent');
    clients.send({ cmd: 'endpoints', index: changer.index, endpoints: [marker] });
    const { at } = await sent;
    const got = await arrivals;
    for (const t of got.times) {
      out.times.push(t.at - at);
      if (t.broker !== changer.broker) out.remote.push(t.at - at);
    }
    out.missing += got.missing;
    // Rounds apart, so one round's delta is not coalesced with the next one's.
    await new Promise((r) => setTimeout(r, 300));
  }
  return out;
}
