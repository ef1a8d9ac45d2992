/** Reading `ping -n -D` output: reply times (ms since epoch) and sequence numbers. */
const REPLY = /^\[(\d+\.\d+)\] \d+ bytes from .* icmp_seq=(\d+) /;

export function replyTimes(lines: readonly string[]): number[] {
  const out: number[] = [];
  for (const line of lines) {
    const m = REPLY.exec(line);
    if (m) out.push(Math.round(Number(m[1]) * 1000));
  }
  return out;
}

export function replySeqs(lines: readonly string[]): number[] {
  const out: number[] = [];
  for (const line of lines) {
    const m = REPLY.exec(line);
    if (m) out.push(Number(m[2]));
  }
  return out;
}
