import { capabilityRefusal } from '@trellis/proto';
import type { ZodType } from 'zod';
import { badRequest, DomainError } from '../domain/errors';

/** A device older than the broker serves is told which versions it speaks (newer ones are served). */
export function requireProtocol(version: number): void {
  const refusal = capabilityRefusal(version);
  if (refusal) throw new DomainError(400, 'protocol_mismatch', refusal);
}

/** Parses with a proto schema; the first problem becomes a 400 message naming the field. */
export function parseWith<T>(schema: ZodType<T>, value: unknown, what = 'request body'): T {
  if (value === undefined) throw badRequest(`${what} is required`);
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue?.path.length ? issue.path.join('.') : what;
  throw badRequest(`${where}: ${issue?.message ?? 'invalid'}`);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseUuid(value: string, what: string): string {
  if (!UUID_RE.test(value)) throw badRequest(`${what} must be a UUID`);
  return value.toLowerCase();
}
