/**
 * The NAT kinds of the matrix test (e2e/test/nat-matrix.test.ts) that a punch can be timed on, and
 * which pairs issue 3 expects to go direct (UDP-blocked never does, so it is not benched).
 */
export type KindName = 'fc' | 'ar' | 'pr' | 'sym' | 'cgnat' | 'upnp';

export const PUNCH_KINDS: readonly KindName[] = ['fc', 'ar', 'pr', 'sym', 'cgnat', 'upnp'];

/** Endpoint-independent mapping with filtering that lets a punch through. */
const EIM: ReadonlySet<KindName> = new Set(['fc', 'ar', 'pr', 'cgnat']);

/**
 * Both sides map endpoint-independently, or symmetric with full cone / address-restricted, or one
 * side behind a router that maps a port (miniupnpd).
 */
export function expectDirect(a: KindName, b: KindName): boolean {
  if (a === 'upnp' || b === 'upnp') return true; // the router forwards a port to the device
  if (EIM.has(a) && EIM.has(b)) return true;
  const other = a === 'sym' ? b : b === 'sym' ? a : null;
  return other === 'fc' || other === 'ar';
}
