import { capabilityRefusal } from '@trellis/proto';
import type { ZodType } from 'zod';

export type ParsedFrame<T> =
  | { ok: true; msg: T }
  | { ok: false; kind: 'bad_json' | 'bad_message'; error: string };

/** One text frame of a control channel (device or relay), strictly parsed with its proto schema. */
export function parseFrame<T>(schema: ZodType<T>, text: string | null): ParsedFrame<T> {
  if (text === null) return { ok: false, kind: 'bad_message', error: 'binary frames are not accepted' };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, kind: 'bad_json', error: 'frame is not valid JSON' };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, msg: parsed.data };
  const issue = parsed.error.issues[0];
  return {
    ok: false,
    kind: 'bad_message',
    error: `invalid message: ${issue?.path.join('.')} ${issue?.message}`,
  };
}

/**
 * Why a hello's capability version is refused (older than MIN_CAPABILITY_VERSION), or undefined.
 * A newer peer is served: it adapts to the version the broker announces.
 */
export function protocolMismatch(version: number): string | undefined {
  return capabilityRefusal(version);
}
