import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from './lab';
import type { LabProcess } from './lab-process';
import type { Namespace } from './namespace';

/**
 * A steady UDP probe for failover: one datagram every `intervalMs` to a `startUdpEcho` server,
 * each reply logged with the source address the server saw. Behind a masquerading gateway that is
 * the gateway's LAN address, so the replies tell which gateway carried each probe.
 */
const PROBE_JS = `
const dgram = require('node:dgram');
const [host, port, everyMs] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const s = dgram.createSocket('udp4');
let seq = 0;
s.on('message', (msg) => {
  let r;
  try { r = JSON.parse(msg.toString()); } catch { return; }
  console.log('rx ' + r.id + ' ' + Date.now() + ' ' + String(r.observed).split(':')[0]);
});
s.bind(0, () => {
  console.log('probing ' + host + ':' + port);
  setInterval(() => {
    seq += 1;
    const now = Date.now();
    const id = seq + '/' + now;
    console.log('tx ' + seq + ' ' + now);
    s.send(JSON.stringify({ op: 'echo', id }), port, host, () => {});
  }, everyMs);
});
`;

export interface ProbeReply {
  seq: number;
  sentAt: number;
  receivedAt: number;
  /** The source address the echo server saw. */
  via: string;
}

export interface ProbeSent {
  seq: number;
  sentAt: number;
}

/** The probe's `tx SEQ TIME` and `rx SEQ/TIME TIME VIA` lines. */
export function parseProbeLines(lines: readonly string[]): { sent: ProbeSent[]; replies: ProbeReply[] } {
  const sent: ProbeSent[] = [];
  const replies: ProbeReply[] = [];
  for (const l of lines) {
    const t = /^tx (\d+) (\d+)$/.exec(l);
    if (t) sent.push({ seq: Number(t[1]), sentAt: Number(t[2]) });
    const m = /^rx (\d+)\/(\d+) (\d+) (\S+)$/.exec(l);
    if (m) replies.push({ seq: Number(m[1]), sentAt: Number(m[2]), receivedAt: Number(m[3]), via: m[4]! });
  }
  return { sent, replies };
}

export interface FailoverFigures {
  /** Probes sent after the event that got no answer. */
  lost: number;
  /** From the first unanswered probe after the event to the next answered one (0: none lost). */
  outageMs: number;
  /** From the event to the first probe sent after it that `to` carried (null: none yet). */
  switchMs: number | null;
}

/**
 * What the probe saw around `eventAt`: lost probes and the longest outage they span, and when the
 * traffic first went through `to`. Probes sent after `until` are left out (answers may be on the way).
 */
export function failoverFigures(
  sent: readonly ProbeSent[],
  replies: readonly ProbeReply[],
  eventAt: number,
  to: string,
  until: number,
): FailoverFigures {
  const answered = new Set(replies.map((r) => r.seq));
  const firstVia = replies
    .filter((r) => r.sentAt >= eventAt && r.via === to)
    .sort((a, b) => a.seq - b.seq)[0];
  let lost = 0;
  let outageStart: number | null = null;
  let outageMs = 0;
  for (const p of [...sent].sort((a, b) => a.seq - b.seq)) {
    if (p.sentAt < eventAt || p.sentAt > until) continue;
    if (!answered.has(p.seq)) {
      lost += 1;
      outageStart ??= p.sentAt;
    } else if (outageStart !== null) {
      outageMs = Math.max(outageMs, p.sentAt - outageStart);
      outageStart = null;
    }
  }
  if (outageStart !== null) outageMs = Math.max(outageMs, until - outageStart);
  return { lost, outageMs, switchMs: firstVia ? firstVia.sentAt - eventAt : null };
}

export class UdpProbe {
  private constructor(
    readonly process: LabProcess,
    readonly intervalMs: number,
  ) {}

  static async start(
    lab: Lab,
    ns: Namespace,
    target: { address: string; port: number },
    intervalMs = 100,
  ): Promise<UdpProbe> {
    const path = join(lab.runDir, 'udp-probe.js');
    writeFileSync(path, PROBE_JS);
    const p = ns.spawn('node', [path, target.address, String(target.port), String(intervalMs)], {
      logName: `udp-probe-${ns.name}-${Date.now()}`,
    });
    await p.waitForLine(/^probing /, 15_000);
    return new UdpProbe(p, intervalMs);
  }

  replies(): ProbeReply[] {
    return parseProbeLines(this.process.lines).replies;
  }

  /** The gateway (source address) that carried the last answered probe, or null. */
  lastVia(): string | null {
    const r = this.replies();
    return r.length > 0 ? r[r.length - 1]!.via : null;
  }

  /** True once a probe sent at or after `since` was answered through `via`. */
  carriedBy(via: string, since: number): boolean {
    return this.replies().some((r) => r.sentAt >= since && r.via === via);
  }

  /** Figures around `eventAt` (see failoverFigures) for the probes sent up to `until`. */
  figures(eventAt: number, to: string, until: number): FailoverFigures {
    const { sent, replies } = parseProbeLines(this.process.lines);
    return failoverFigures(sent, replies, eventAt, to, until);
  }

  stop(): Promise<void> {
    return this.process.stop(2_000);
  }
}
