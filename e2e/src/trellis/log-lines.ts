type LogObject = Record<string, unknown>;

function* parsed(lines: readonly string[]): Generator<LogObject> {
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      yield JSON.parse(line) as LogObject;
    } catch {
      // not a log line
    }
  }
}

/** Time (ms) of the first log line matching `pred`, from trellisd's pino JSON lines. */
export function firstLogTime(lines: readonly string[], pred: (o: LogObject) => boolean): number | null {
  for (const o of parsed(lines)) if (pred(o) && typeof o.time === 'number') return o.time;
  return null;
}

/** Fields every line has, or that name who the line is about: left out of an excerpt. */
const NOISE = new Set(['level', 'time', 'service', 'iface', 'pid', 'hostname', 'msg']);

/**
 * The last `max` lines matching `pred`, one short line each: milliseconds since `since`, the
 * message and its other fields (for a failure message: what each side did about a pair).
 */
export function logExcerpt(
  lines: readonly string[],
  pred: (o: LogObject) => boolean,
  since: number,
  max = 12,
): string[] {
  const out: string[] = [];
  for (const o of parsed(lines)) {
    if (!pred(o)) continue;
    const at = typeof o.time === 'number' ? `${o.time - since >= 0 ? '+' : ''}${o.time - since} ms` : '?';
    const rest = Object.fromEntries(Object.entries(o).filter(([k]) => !NOISE.has(k)));
    out.push(`${at} ${String(o.msg)} ${JSON.stringify(rest).slice(0, 220)}`);
  }
  return out.slice(-max);
}
