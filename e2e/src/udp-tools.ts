import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from './lab';
import type { LabProcess } from './lab-process';
import type { Namespace } from './namespace';

/**
 * Tiny node UDP programs for probing NAT behaviour: an echo server on the internet that reports
 * the source ip:port it saw (and can answer from another of its sockets), and a peer that sends
 * from one fixed local port and prints everything it receives.
 */
const ECHO_JS = `
const dgram = require('node:dgram');
const binds = JSON.parse(process.argv[2]);
const socks = new Map();
let ready = 0;
for (const b of binds) {
  const i = b.lastIndexOf(':');
  const s = dgram.createSocket('udp4');
  socks.set(b, s);
  s.on('message', (msg, r) => {
    let req;
    try { req = JSON.parse(msg.toString()); } catch { return; }
    const observed = r.address + ':' + r.port;
    console.log('rx ' + observed + ' ' + b + ' ' + req.op);
    if (req.op === 'echo') s.send(JSON.stringify({ id: req.id, observed, via: b }), r.port, r.address);
    if (req.op === 'reflect') {
      const o = socks.get(req.from);
      if (o) o.send(JSON.stringify({ id: req.id, observed, via: req.from }), r.port, r.address);
    }
  });
  s.bind(Number(b.slice(i + 1)), b.slice(0, i), () => { if (++ready === binds.length) console.log('echo ready'); });
}
`;

const PEER_JS = `
const dgram = require('node:dgram');
const plan = JSON.parse(process.argv[2]);
const s = dgram.createSocket('udp4');
s.on('message', (msg, r) => console.log('recv ' + r.address + ':' + r.port + ' ' + msg.toString()));
s.bind(plan.bind, async () => {
  console.log('bound ' + s.address().port);
  for (const st of plan.steps) {
    const i = st.to.lastIndexOf(':');
    s.send(JSON.stringify(st.msg), Number(st.to.slice(i + 1)), st.to.slice(0, i));
    await new Promise((res) => setTimeout(res, plan.gapMs));
  }
  console.log('sent');
  setTimeout(() => { console.log('done'); s.close(); }, plan.lingerMs);
});
`;

export interface EchoMessage {
  op: 'echo' | 'reflect' | 'hello';
  id: string;
  /** For `reflect`: which of the echo server's sockets answers. */
  from?: string;
}

export interface PeerPlan {
  /** Local UDP port (0: any). */
  bind: number;
  steps: { to: string; msg: EchoMessage }[];
  gapMs?: number;
  /** How long to keep listening after the last send. */
  lingerMs?: number;
}

export interface Received {
  from: string;
  data: { id?: string; observed?: string; via?: string; op?: string };
}

function script(lab: Lab, name: string, text: string): string {
  const path = join(lab.runDir, name);
  writeFileSync(path, text);
  return path;
}

/** Starts the echo server in `ns` on every `ip:port` of `binds`; resolves once all are bound. */
export async function startUdpEcho(lab: Lab, ns: Namespace, binds: string[]): Promise<LabProcess> {
  const p = ns.spawn('node', [script(lab, 'udp-echo.js', ECHO_JS), JSON.stringify(binds)], {
    logName: 'udp-echo',
  });
  await p.waitForLine(/^echo ready$/, 10_000);
  return p;
}

/** Starts a UDP peer; use `received(p)` after its `done` line. */
export function startUdpPeer(lab: Lab, ns: Namespace, plan: PeerPlan): LabProcess {
  const full = { gapMs: 100, lingerMs: 1_500, ...plan };
  return ns.spawn('node', [script(lab, 'udp-peer.js', PEER_JS), JSON.stringify(full)], {
    logName: `udp-peer-${ns.name}-${Date.now()}`,
  });
}

/** Runs a UDP peer to completion and returns what it received. */
export async function udpPeer(lab: Lab, ns: Namespace, plan: PeerPlan): Promise<Received[]> {
  const p = startUdpPeer(lab, ns, plan);
  await p.waitForLine(/^done$/, 30_000);
  return received(p);
}

export function received(p: LabProcess): Received[] {
  const out: Received[] = [];
  for (const line of p.lines) {
    const m = /^recv (\S+) (.*)$/.exec(line);
    if (!m) continue;
    try {
      out.push({ from: m[1]!, data: JSON.parse(m[2]!) as Received['data'] });
    } catch {
      out.push({ from: m[1]!, data: {} });
    }
  }
  return out;
}
