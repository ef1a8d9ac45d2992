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

/**
 * Pings that got no reply, from the last reply at or before `after` (ms since epoch; by default the
 * first reply) to the last reply: `of` is how many were sent in that span.
 */
export function lostReplies(
  lines: readonly string[],
  after = Number.NEGATIVE_INFINITY,
): { lost: number; of: number } {
  const times = replyTimes(lines);
  const seqs = replySeqs(lines);
  if (seqs.length === 0) return { lost: 0, of: 0 };
  const before = seqs.filter((_, i) => times[i]! <= after);
  const first = before.length > 0 ? Math.max(...before) : Math.min(...seqs);
  const last = Math.max(...seqs);
  const replied = new Set(seqs.filter((s) => s >= first));
  return { lost: last - first + 1 - replied.size, of: last - first + 1 };
}
