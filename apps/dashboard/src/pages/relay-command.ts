/** The `trellis-relay` name for a token's name: a DNS label (as the relay's --name requires). */
export function relayLabel(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 63)
      .replace(/-+$/, '') || 'relay'
  );
}

/** Quotes a word for a POSIX shell when it needs it. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface RelayCommandInput {
  token: string;
  brokerUrl: string;
  fingerprint: string;
  name: string;
  /** What devices send UDP to: the relay host's public address or name. */
  publicAddress: string;
}

/**
 * The command that runs a private relay with this token. The token goes in the environment (not
 * the arguments, which any local user sees in `ps`); the broker is pinned by its certificate.
 */
export function relayCommand(input: RelayCommandInput): string {
  return [
    `TRELLIS_RELAY_TOKEN=${shellWord(input.token)}`,
    'trellis-relay',
    `--broker ${shellWord(input.brokerUrl)}`,
    `--fingerprint ${shellWord(input.fingerprint)}`,
    `--name ${relayLabel(input.name)}`,
    `--public-address ${shellWord(input.publicAddress.trim())}`,
  ].join(' ');
}
