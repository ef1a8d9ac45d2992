import pino, { type Logger } from 'pino';

/** JSON lines on stdout. */
export function createLogger(level = 'info'): Logger {
  return pino({ level, base: { service: 'trellis-relay' } }, pino.destination({ fd: 1, sync: true }));
}
