/** Time (ms) of the first log line matching `pred`, from trellisd's pino JSON lines. */
export function firstLogTime(
  lines: readonly string[],
  pred: (o: Record<string, unknown>) => boolean,
): number | null {
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (pred(o) && typeof o.time === 'number') return o.time;
    } catch {
      // not a log line
    }
  }
  return null;
}
