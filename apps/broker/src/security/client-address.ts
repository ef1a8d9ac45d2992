import { isIPv6 } from 'node:net';

/** An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4) as plain IPv4. */
export function unmapped(address: string): string {
  return /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? address;
}

/**
 * What per-client limits count by: an IPv4 address as it is (an IPv4-mapped IPv6 one too), an IPv6
 * address by its /64, which one client usually holds whole (counting by address would let it pick
 * a new one per attempt).
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const plain = unmapped(address);
  if (plain !== address || !isIPv6(address)) return plain;
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
