/** Turns a wanted name or hostname into a DNS label: lower case, a-z 0-9 and inner hyphens. */
export function toDnsLabel(input: string, maxLength = 63): string {
  const label = input
    .toLowerCase()
    .split('.')[0]!
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .slice(0, maxLength)
    .replace(/^-+|-+$/g, '');
  return label || 'device';
}

/**
 * `base` if free, else `base-2`, `base-3`… (the base shortened so the suffix still fits 63 chars).
 * `taken` answers whether a label is already used in the account.
 */
export function uniqueLabel(base: string, taken: (label: string) => boolean): string {
  if (!taken(base)) return base;
  for (let n = 2; ; n++) {
    const suffix = `-${n}`;
    const stem = base.slice(0, 63 - suffix.length).replace(/-+$/, '');
    const candidate = `${stem}${suffix}`;
    if (!taken(candidate)) return candidate;
  }
}
