export type SetupKeyState = 'valid' | 'revoked' | 'expired' | 'exhausted';

export interface SetupKeyFacts {
  reusable: boolean;
  usageLimit: number | null;
  usedCount: number;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

/** One-off keys allow one enrollment unless told otherwise; reusable keys are unlimited by default. */
export function effectiveUsageLimit(reusable: boolean, usageLimit: number | null | undefined): number | null {
  if (usageLimit !== undefined && usageLimit !== null) return usageLimit;
  return reusable ? null : 1;
}

export function setupKeyState(key: SetupKeyFacts, now: Date): SetupKeyState {
  if (key.revokedAt) return 'revoked';
  if (key.expiresAt && key.expiresAt.getTime() <= now.getTime()) return 'expired';
  const limit = effectiveUsageLimit(key.reusable, key.usageLimit);
  if (limit !== null && key.usedCount >= limit) return 'exhausted';
  return 'valid';
}

/** Parses `30m`, `24h`, `7d`, `90s` or plain seconds into seconds. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  const seconds = n * unit;
  return seconds > 0 ? seconds : null;
}
