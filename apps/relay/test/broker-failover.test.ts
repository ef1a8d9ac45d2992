import pino from 'pino';
import { BrokerLink } from '../src/broker/broker-link';
import { brokerTlsOptions, relayControlUrl } from '../src/broker/broker-url';
import { ReconnectBackoff } from '../src/broker/reconnect-backoff';
import { Relay } from '../src/relay';
import { FakeBroker } from './support/fake-broker';

const TOKEN = `trl_${'A'.repeat(43)}`;
const relayPorts = { first: 49000, last: 49999 };

/** A backoff far longer than any test, recording when it is asked: a failover must not ask it. */
class RecordingBackoff extends ReconnectBackoff {
  asked = 0;
  private waiters: Array<() => void> = [];
  override next(): number {
    this.asked++;
    for (const w of this.waiters.splice(0)) w();
    return 600_000;
  }
  whenAsked(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

describe('broker link with several broker instances', () => {
  let a: FakeBroker;
  let b: FakeBroker;
  let relay: Relay;
  let link: BrokerLink;
  let backoff: RecordingBackoff;

  beforeEach(async () => {
    a = new FakeBroker();
    b = new FakeBroker();
    await a.start();
    await b.start();
    a.onHello = () => a.welcome();
    b.onHello = () => b.welcome();
    relay = new Relay({ host: '127.0.0.1', ports: relayPorts });
    backoff = new RecordingBackoff();
    link = new BrokerLink({
      urls: [relayControlUrl(a.url), relayControlUrl(b.url)],
      // Each instance has its own certificate: both pinned, either accepted on either URL.
      tls: brokerTlsOptions({ fingerprints: [a.fingerprint, b.fingerprint] }),
      hello: {
        token: TOKEN,
        name: 'relay-1',
        publicAddress: '127.0.0.1',
        ports: relayPorts,
        version: 'test',
      },
      relay,
      log: pino({ level: 'silent' }),
      onFatal: () => undefined,
      backoff,
    });
  });
  afterEach(async () => {
    link.stop();
    await relay.closeAll();
    await a.stop().catch(() => undefined);
    await b.stop().catch(() => undefined);
  });

  it('moves to the next instance at once when its broker dies, and backs off only when all are down', async () => {
    link.start();
    await a.waitFor('relay-hello');
    expect(link.broker?.url).toBe(relayControlUrl(a.url));
    expect(b.connections).toBe(0);

    await a.stop();
    await b.waitFor('relay-hello');
    expect(link.broker?.url).toBe(relayControlUrl(b.url));
    expect(backoff.asked).toBe(0);

    const asked = backoff.whenAsked();
    await b.stop();
    await asked; // A (refused) then B (refused): a whole round, then the backoff
    expect(backoff.asked).toBe(1);
    expect(link.broker?.url).toBe(relayControlUrl(b.url));
    expect(link.connected).toBe(false);
  });

  it('starts on the first URL and skips a dead one at once', async () => {
    await a.stop();
    link.start();
    await b.waitFor('relay-hello');
    expect(backoff.asked).toBe(0);
    expect(b.connections).toBe(1);
  });
});
