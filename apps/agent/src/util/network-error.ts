const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ECONNRESET',
]);

/** Turns a socket error into a sentence about the broker; other errors keep their message. */
export function describeBrokerError(err: Error, brokerUrl: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code && UNREACHABLE.has(code)) return `broker unreachable at ${brokerUrl} (${code})`;
  return err.message;
}
