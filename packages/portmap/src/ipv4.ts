// IPv4 text <-> bytes, strict: four decimal octets without leading zeros.

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

export function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!OCTET.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes[i] = value;
  }
  return bytes;
}

export function isIpv4(text: string): boolean {
  return parseIpv4(text) !== undefined;
}

export function formatIpv4(bytes: Uint8Array): string {
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/** True for addresses that cannot be a usable public mapping (unspecified, loopback, multicast...). */
export function isUnusableExternal(bytes: Uint8Array): boolean {
  const first = bytes[0]!;
  return first === 0 || first === 127 || first >= 224;
}
