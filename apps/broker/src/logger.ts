import pino, { type DestinationStream, type Logger } from 'pino';

/** Secrets never written to the log, wherever a log call puts them (up to two levels down). */
const SECRET_FIELDS = [
  'password',
  'ownerPassword',
  'generatedPassword',
  'passwordHash',
  'token',
  'tokenHash',
  'sessionToken',
  'key',
  'secret',
  'clientSecret',
  'client_secret',
  'mac',
  'setupKey',
  'deviceCode',
  'userCode',
  'privateKey',
  'csrfToken',
  'authorization',
  'cookie',
];
export const REDACTED_PATHS = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  ...SECRET_FIELDS.map((f) => `*.*.${f}`),
  ...['authorization', 'cookie', 'set-cookie'].map((h) => `*.headers["${h}"]`),
];

/**
 * A failed query's error carries its bound parameters (drizzle: "Failed query: …\nparams: …"):
 * passwords' hashes, keys, emails. Whatever text of it reaches the log keeps the query, not them.
 */
export function withoutQueryParams(text: string): string {
  return text.replace(/\nparams: [\s\S]*?(?=\n {4}at |$)/, '\nparams: [redacted]');
}

function scrubbed(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return withoutQueryParams(value);
  if (value instanceof Error) {
    return {
      type: value.name,
      message: withoutQueryParams(value.message),
      stack: withoutQueryParams(value.stack ?? ''),
    };
  }
  if (depth > 2 || value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubbed(v, depth + 1)]));
}

/** JSON lines on stdout (or `destination`); secrets redacted, failed queries without their parameters. */
export function createLogger(
  level = 'info',
  destination: DestinationStream = pino.destination({ fd: 1, sync: true }),
): Logger {
  return pino(
    {
      level,
      base: { service: 'trellis-broker' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      formatters: { log: (o) => scrubbed(o) as Record<string, unknown> },
      hooks: {
        logMethod(args, method) {
          method.apply(
            this,
            args.map((a) => (typeof a === 'string' ? withoutQueryParams(a) : a)) as typeof args,
          );
        },
      },
    },
    destination,
  );
}
