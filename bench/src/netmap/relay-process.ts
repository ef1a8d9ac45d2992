/**
 * A fake relay, in its own process so its work never counts as the broker's: registers on the
 * broker's relay control channel as a real relay does (apps/relay BrokerLink), answers every
 * `allocate` with `allocated` (ports counted up through its range), takes `release` silently and
 * pings at the heartbeat the welcome gives (the broker answers pongs; a silent relay is dropped).
 * It forwards nothing: the benchmark measures the broker's decisions, not packets.
 * argv: brokerUrl relayToken; the broker's certificate PEM comes in env BENCH_BROKER_CERT.
 */
import {
  API_PATHS,
  CAPABILITY_VERSION,
  type PortRange,
  RelayClientMessage,
  RelayServerMessage,
} from '@trellis/proto';
import WebSocket from 'ws';
import type { RelayCommand, RelayReply } from './messages';

const send = (m: RelayReply) => process.send?.(m);
const PORTS: PortRange = { first: 20_000, last: 60_000 };

let allocated = 0;
let released = 0;
let pongs = 0;
let nextPort = PORTS.first;

function main(): void {
  const [url, token] = process.argv.slice(2);
  const ca = process.env.BENCH_BROKER_CERT;
  if (!url || !token || !ca)
    throw new Error('usage: relay-process BROKER_URL RELAY_TOKEN (cert in BENCH_BROKER_CERT)');
  const ws = new WebSocket(`${url.replace(/^https/, 'wss')}${API_PATHS.relayControl}`, {
    ca,
    perMessageDeflate: false,
  });
  // Validated with the proto schema before sending: a message the broker would refuse fails here.
  const reply = (m: RelayClientMessage) => ws.send(JSON.stringify(RelayClientMessage.parse(m)));
  ws.on('open', () =>
    reply({
      type: 'relay-hello',
      protocolVersion: CAPABILITY_VERSION,
      token,
      name: 'bench-relay',
      publicAddress: '127.0.0.1',
      ports: PORTS,
      version: 'bench',
    }),
  );
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) return fail('broker sent a binary frame');
    const parsed = RelayServerMessage.safeParse(JSON.parse(data.toString('utf8')));
    if (!parsed.success) return fail(`broker sent an invalid relay message: ${parsed.error.message}`);
    const m = parsed.data;
    switch (m.type) {
      case 'relay-welcome':
        // Nothing is held yet: a welcome listing allocations would mean a stale relay row.
        for (const a of m.allocations)
          reply({ type: 'allocated', allocationId: a.allocationId, port: port() });
        setInterval(() => reply({ type: 'ping', t: Date.now() }), m.heartbeatIntervalMs).unref();
        send({ kind: 'ready', relayId: m.relayId });
        return;
      case 'allocate':
        allocated++;
        reply({ type: 'allocated', allocationId: m.allocation.allocationId, port: port() });
        return;
      case 'release':
        released++;
        return;
      case 'pong':
        pongs++;
        return;
    }
  });
  ws.on('close', (code, reason) => fail(`relay control channel closed: ${code} ${reason.toString()}`));
  ws.on('error', (err) => fail(`relay control channel: ${err.message}`));
  process.on('message', (m: RelayCommand) => {
    if (m.cmd === 'stats') send({ kind: 'stats', allocated, released, pongs });
    else if (m.cmd === 'stop') {
      ws.terminate();
      process.exit(0);
    }
  });
}

/** Ports counted up, wrapping within the range (released ones are not tracked: nothing listens). */
function port(): number {
  const p = nextPort;
  nextPort = p >= PORTS.last ? PORTS.first : p + 1;
  return p;
}

/** The benchmark's figures mean nothing without the relay: report and stop. */
function fail(message: string): void {
  send({ kind: 'error', message });
  process.exit(1);
}

try {
  main();
} catch (err: unknown) {
  fail(err instanceof Error ? (err.stack ?? err.message) : String(err));
}
