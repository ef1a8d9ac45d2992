import { relayCommand, relayLabel } from '../src/pages/relay-command';

const TOKEN = `trl_${'A'.repeat(43)}`;
const FP = `${'ab:'.repeat(31)}ab`;

/** Splits a command as a shell would (the page quotes only with single quotes). */
function words(command: string): string[] {
  return [...command.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)].map((m) =>
    m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : m[2]!,
  );
}

// That trellis-relay accepts it and registers is tested by running it: dashboard-relays.test.ts.
describe('the private relay command line the relays page shows', () => {
  it('has the token in the environment, the broker pinned, a DNS-label name and the public address', () => {
    const command = relayCommand({
      token: TOKEN,
      brokerUrl: 'https://broker.example:8443',
      fingerprint: FP,
      name: 'Home Office #2',
      publicAddress: ' 203.0.113.7 ',
    });
    expect(command).toBe(
      `TRELLIS_RELAY_TOKEN=${TOKEN} trellis-relay --broker https://broker.example:8443 --fingerprint ${FP} --name home-office-2 --public-address 203.0.113.7`,
    );
  });

  it('quotes what a shell would split and always names the relay with a DNS label', () => {
    expect(relayLabel('!!!')).toBe('relay');
    expect(relayLabel('x'.repeat(80))).toHaveLength(63);
    expect(relayLabel('-Edge_1-')).toBe('edge-1');
    const command = relayCommand({
      token: TOKEN,
      brokerUrl: "https://it's.odd",
      fingerprint: FP,
      name: 'r',
      publicAddress: 'relay one; rm -rf /',
    });
    expect(words(command)).toEqual([
      `TRELLIS_RELAY_TOKEN=${TOKEN}`,
      'trellis-relay',
      '--broker',
      "https://it's.odd",
      '--fingerprint',
      FP,
      '--name',
      'r',
      '--public-address',
      'relay one; rm -rf /',
    ]);
  });
});
