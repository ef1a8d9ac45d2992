import type * as Koffi from 'koffi';

/**
 * A koffi type by name, declared only when it is not yet: koffi's names live as long as its native
 * module, which outlives the modules declaring them (a test runner reloading them; both
 * wireguard-nt's and WFP's declarations need GUID).
 */
export function namedType(
  koffi: typeof Koffi,
  name: string,
  declare: () => Koffi.IKoffiCType,
): Koffi.IKoffiCType {
  try {
    return koffi.resolve(name);
  } catch {
    return declare();
  }
}
