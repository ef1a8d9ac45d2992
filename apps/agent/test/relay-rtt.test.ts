import type { NetmapRelay, RelayTcpInfo } from '@trellis/proto';
import pino from 'pino';
import { probeRelay, RelayRttProber, relayProbeUrl, settleRtts } from '../src/relay/relay-rtt';
import { FakeTimers } from './helpers/fake-timers';
import { makeSelfSignedCert } from './helpers/self-signed-cert';
import { TlsRelayDouble } from './helpers/tls-relay-double';

const FP = `${'AB:'.repeat(31)}AB`;
const R1 = '11111111-0000-4000-8000-000000000001';
const R2 = '22222222-0000-4000-8000-000000000002';
const R3 = '33333333-0000-4000-8000-000000000003';

describe('relay RTT probe over HTTPS with a pinned certificate', () => {
  const cert = makeSelfSignedCert('trellis-test-relay');
  const other = makeSelfSignedCert('someone-else');
  const relay = new TlsRelayDouble(cert);
  beforeAll(() => relay.start());
  afterAll(() => relay.stop());

  it('builds the probe URL from the wss URL', () => {
    expect(relayProbeUrl({ url: 'wss://relay.example:8443', fingerprint: FP })).toBe(
      'https://relay.example:8443/v1/probe',
    );
  });

  it('times a 204 from the probe path', async () => {
    const ms = await probeRelay({ url: relay.url, fingerprint: cert.fingerprint });
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(relay.requests).toBeGreaterThan(0);
  });

  it('refuses a certificate that does not match the pin, before any request', async () => {
    const before = relay.requests;
    await expect(probeRelay({ url: relay.url, fingerprint: other.fingerprint })).rejects.toThrow(
      /pin mismatch/i,
    );
    expect(relay.requests).toBe(before);
  });

  it('rejects an answer other than 204', async () => {
    relay.probeStatus = 200;
    try {
      await expect(probeRelay({ url: relay.url, fingerprint: cert.fingerprint })).rejects.toThrow(/204/);
    } finally {
      relay.probeStatus = 204;
    }
  });
});

describe('settleRtts', () => {
  it('keeps a figure through jitter, takes a real change, drops relays that did not answer', () => {
    expect(settleRtts({}, { [R1]: 40.4 })).toEqual({ [R1]: 40 });
    expect(settleRtts({ [R1]: 40, [R2]: 10 }, { [R1]: 44.9, [R2]: 14.2 })).toEqual({ [R1]: 40, [R2]: 10 });
    expect(settleRtts({ [R1]: 40 }, { [R1]: 49 })).toEqual({ [R1]: 49 });
    expect(settleRtts({ [R1]: 40, [R2]: 10 }, { [R2]: 30 })).toEqual({ [R2]: 30 });
  });
});

describe('RelayRttProber', () => {
  const tcp = (n: number): RelayTcpInfo => ({ url: `wss://relay${n}.example:443`, fingerprint: FP });
  const relays: NetmapRelay[] = [
    { id: R1, name: 'one', address: '192.0.2.1', tcp: tcp(1) },
    { id: R2, name: 'two', address: '192.0.2.2', tcp: tcp(2) },
    { id: R3, name: 'udp-only', address: '192.0.2.3' },
  ];

  function setup() {
    const timers = new FakeTimers();
    const probed: string[] = [];
    const rounds: Array<Record<string, number>> = [];
    let rtt: Record<string, number> = { [tcp(1).url]: 20, [tcp(2).url]: 80 };
    const prober = new RelayRttProber({
      logger: pino({ level: 'silent' }),
      timers,
      onRtts: (r) => rounds.push(r),
      probe: async (t) => {
        probed.push(t.url);
        const ms = rtt[t.url];
        if (ms === undefined) throw new Error('unreachable');
        return ms;
      },
    });
    return { timers, probed, rounds, prober, setRtt: (r: typeof rtt) => (rtt = r) };
  }

  it('probes the TCP relays when the list arrives (UDP-only ones skipped), not again for the same list', async () => {
    const { probed, rounds, prober } = setup();
    prober.setRelays(relays);
    await prober.probeNow(); // joins the round setRelays started (and runs one more)
    expect(probed.slice(0, 2).sort()).toEqual([tcp(1).url, tcp(2).url]);
    expect(rounds[0]).toEqual({ [R1]: 20, [R2]: 80 });
    const before = probed.length;
    prober.setRelays([...relays]);
    expect(probed.length).toBe(before);
  });

  it('probes again every 5 minutes and on demand (network change), reporting what answered', async () => {
    const { timers, rounds, prober, setRtt } = setup();
    prober.start();
    prober.setRelays(relays);
    await prober.probeNow();
    const interval = [...timers.pending.values()].find((p) => p.repeat)!;
    expect(interval.ms).toBe(300_000);
    setRtt({ [tcp(1).url]: 35 });
    interval.fn();
    await prober.probeNow();
    expect(rounds.at(-1)).toEqual({ [R1]: 35 });
    prober.stop();
    expect(timers.pending.size).toBe(0);
    const count = rounds.length;
    await prober.probeNow();
    expect(rounds.length).toBe(count);
  });
});
